"""`ldsim tree [run options] PROGRAM`: the dependency tree, each edge with the search step that resolved it.

Exit status: 0, 1 when something is not found or the startup fails, 3 PROGRAM unreadable, 2 usage."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or "NO_COLOR" in os.environ:
        return False
    return sys.stdout.isatty()


def cmd_tree(args: argparse.Namespace) -> int:
    from ldsim import cli
    from ldsim.cli_why import start
    from ldsim.render import tree
    musl = _musl_run(args)
    if musl is not None:
        root = tree.build_musl(musl)
        proc = None
    else:
        proc = start(args)
        if proc is None:
            return cli.EXIT_INPUT
        root = tree.build(proc)
    if args.json:
        json.dump(tree.as_dict(root), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.dot:
        print("\n".join(tree.dot(root)))
    else:
        print("\n".join(tree.text(root, _color(args.color))))
        for e in proc.result.events if proc is not None else ():
            if getattr(e, "stream", 0) == 2:
                print(f"loader: {e.text.rstrip()}", file=sys.stderr)
    if musl is not None:
        return 1 if musl.status else 0
    bad = any(r.result is None or r.result.faked for r in proc.result.requests)
    return 1 if bad or proc.result.status not in (None, 0) else 0


def _musl_run(args: argparse.Namespace):
    """A program whose PT_INTERP is musl's loader (present in the root) is resolved by musl's rules."""
    from ldsim import cli
    from ldsim.musl import MuslLoader
    from ldsim.profiles import is_musl_interp, program_interp
    from ldsim.world import make_world
    if getattr(args, "scenario", None) or not args.program:  # scenario worlds are glibc worlds
        return None
    inv = cli._host_invocation(args)
    world = make_world(args.root, inv.cwd)
    interp = program_interp(world, args.program)
    if not is_musl_interp(interp):
        return None
    env = dict(inv.env)
    if args.library_path is not None:
        env["LD_LIBRARY_PATH"] = args.library_path
    if args.preload is not None:
        env["LD_PRELOAD"] = args.preload
    return MuslLoader(world, env, inv.cwd, interp).run(args.program)


def add_parser(sub) -> None:
    from ldsim.cli_why import add_run_options
    p = sub.add_parser("tree", help="the dependency tree with the search step of each edge")
    add_run_options(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="the tree as JSON")
    g.add_argument("--dot", action="store_true", help="the graph in Graphviz dot")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour (auto: only on a terminal, and never with NO_COLOR set)")
    p.add_argument("program", metavar="PROGRAM", nargs="?")
    p.set_defaults(func=cmd_tree)
