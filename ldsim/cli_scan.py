"""`ldsim scan [--root DIR] [run options] [PATH...]`: every ELF file under PATHs (default: the usual bin and
lib dirs of the root) resolved as the loader would, plus a security audit of set-ID programs and RPATHs.

Exit status: 0 nothing found, 1 problems found (including files that could not be read), 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from ldsim.cli import positive_int as _jobs
from ldsim.fanout import usable_cpus

EXIT_CLEAN, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ldsim.cli import _common
    p = subparsers.add_parser("scan", help="resolve every ELF file of a root and audit it")
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--flat", action="store_true", help="do not descend into subdirectories of PATHs")
    p.add_argument("--no-symbols", action="store_true",
                   help="skip the undefined-symbol check under immediate binding (the slow part)")
    p.add_argument("-j", "--jobs", type=_jobs, default=0, metavar="N",
                   help="processes checking undefined symbols (default: one per CPU; 1: all in this process)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories inside the root")
    p.set_defaults(func=run)
    return p


def _progress(stream):
    """A one-line bar on a terminal, redrawn at most ~50 times."""
    state = {"last": -1}

    def show(done: int, total: int, path: str) -> None:
        step = max(1, total // 50)
        if done != total and done // step == state["last"]:
            return
        state["last"] = done // step
        width = 30
        fill = width * done // total if total else width
        text = f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {path[-40:]:<40}"
        stream.write(text if done != total else "\r" + " " * len(text) + "\r")
        stream.flush()
    return show


def run(args: argparse.Namespace) -> int:
    from ldsim.cli import _invocation
    from ldsim.linkmap import FileCache
    from ldsim.render import scan as render
    from ldsim.scan import ScanOptions, scan
    from ldsim.world import make_world
    if args.root is not None and not os.path.isdir(args.root):
        print(f"ldsim: {args.root}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    inv = _invocation(args)
    world = make_world(args.root, inv.cwd)
    rooted = args.root is not None and os.path.abspath(args.root) != "/"
    opts = ScanOptions(paths=list(args.paths), recursive=False if args.flat else None, rooted=rooted,
                       check_symbols=not args.no_symbols, jobs=args.jobs or usable_cpus())
    progress = _progress(sys.stderr) if sys.stderr.isatty() and not args.no_progress else None
    res = scan(world, inv, opts, FileCache(), progress)
    sys.stderr.writelines(render.input_lines(res))
    if args.json:
        sys.stdout.write(render.json_text(res))
    else:
        sys.stdout.writelines(render.text_lines(res))
    return EXIT_PROBLEMS if res.problems else EXIT_CLEAN
