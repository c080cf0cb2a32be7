"""`ldsim ldconfig`: the ldconfig 2.36 emulation as a subcommand (wired into ldsim/cli.py).

Exit status: 0 success; 1 where ldconfig exits 1 (relative dir while building a cache, relative include
under path translation, unreadable or invalid cache with -p: ldconfig's own messages) and for ldsim's own
write failures;
134 where glibc 2.36 ldconfig aborts after writing an old/compat cache with legacy-hwcap entries; killed by
SIGSEGV where `ldconfig -p` reads outside its mapping of a corrupt cache.
Emulated ldconfig messages keep their `ldconfig: ` prefix; ldsim's own errors are one line
`ldsim: FILE: reason`.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat as S
import sys

from ldsim import ldcache
from ldsim.ldconfig import (LD_SO_CACHE, LD_SO_CONF, HWCAP_IMPORTANT, Options, apply_plan, error_lines,
                            plan_ldconfig)
from ldsim.render.ldconfig import print_cache_lines, render_lines
from ldsim.world import make_world

EXIT_ABORT = 134
# print_version (elf/ldconfig.c) of the simulated build
VERSION_TEXT = """ldconfig (Debian GLIBC 2.36-9+deb12u14) 2.36
Copyright (C) 2022 Free Software Foundation, Inc.
This is free software; see the source for copying conditions.  There is NO
warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.
Written by Andreas Jaeger."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ldconfig", help="emulate glibc 2.36 ldconfig (cache, links, -p)")
    p.add_argument("-r", dest="root", metavar="ROOT", help="operate inside ROOT (as ldconfig -r as root)")
    p.add_argument("-f", dest="conf", metavar="CONF", default=LD_SO_CONF)
    p.add_argument("-C", dest="cache", metavar="CACHE", default=None)
    p.add_argument("-c", "--format", dest="format", metavar="FORMAT", default="new",
                   help="new|compat|old (other words are ignored, as by ldconfig)")
    p.add_argument("-n", dest="only_cline", action="store_true", help="only command-line dirs, no cache")
    p.add_argument("-N", dest="no_cache", action="store_true", help="do not build the cache")
    p.add_argument("-X", dest="no_links", action="store_true", help="do not update links")
    p.add_argument("-l", dest="manual_link", action="store_true", help="link the given library files")
    p.add_argument("-p", "--print-cache", dest="print_cache", action="store_true", help="print the cache")
    p.add_argument("-v", "--verbose", dest="verbose", action="store_true")
    p.add_argument("-i", "--ignore-aux-cache", dest="ignore_aux", action="store_true",
                   help="do not load the auxiliary cache (it is still written)")
    p.add_argument("-V", "--version", dest="version", action="store_true", help="print ldconfig's version")
    p.add_argument("--dry-run", action="store_true", help="report links and cache instead of writing")
    p.add_argument("dirs", nargs="*", metavar="DIR")
    p.set_defaults(func=run)
    return p


def _hwcap_mask() -> int:
    """LD_HWCAP_MASK as ldconfig's `set_hwcap` reads it (strtoul base 0, garbage gives 0)."""
    text = os.environ.get("LD_HWCAP_MASK")
    if text is None:
        return HWCAP_IMPORTANT
    try:
        return int(text.strip(), 0) & ((1 << 64) - 1)
    except ValueError:
        return 0


def _print_cache(args: argparse.Namespace, world) -> int:
    """Mirrors `print_cache` (elf/cache.c): its messages are ldconfig's own, all fatal (exit 1)."""
    name = args.cache or LD_SO_CACHE
    try:
        st = world.stat(name)
        # open(O_RDONLY) succeeds on a directory; mapping it fails
        data = world.read(name) if not S.S_ISDIR(st.st_mode) else None
    except OSError as e:
        sys.stderr.write(render_lines(error_lines(f"Can't open cache file {name}\n", e)))
        return 1
    if data is None:
        sys.stderr.write(render_lines(error_lines("mmap of cache file failed.\n", errno.ENODEV)))
        return 1
    if not data:
        return 0
    try:
        cache, err = ldcache.print_cache_view(data)
        lines = print_cache_lines(cache, name) if cache is not None else []
    except ldcache.PrintFault:  # the real ldconfig dies, its buffered listing unwritten
        return -signal.SIGSEGV
    if cache is None:
        sys.stderr.write(render_lines(error_lines(err.format(name=name))))
        return 1
    sys.stdout.write(render_lines(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.version:  # argp answers it while parsing, before anything else
        print(VERSION_TEXT)
        return 0
    world = make_world(args.root)
    if args.print_cache:
        return _print_cache(args, world)
    fmt = args.format if args.format in ("new", "compat", "old") else "new"
    opts = Options(
        config_file=args.conf, cache_file=args.cache or LD_SO_CACHE, fmt=fmt, dirs=tuple(args.dirs),
        build_cache=not (args.no_cache or args.only_cline), only_cline=args.only_cline,
        link=not args.no_links, manual_link=args.manual_link, verbose=args.verbose,
        hwcap_mask=_hwcap_mask(), ignore_aux_cache=args.ignore_aux or args.cache is not None,
    )
    plan = plan_ldconfig(world, opts)
    for stream, line in plan.output:
        (sys.stdout if stream == 1 else sys.stderr).write(line + "\n")
        sys.stdout.flush()
    if plan.exit_status:
        return plan.exit_status
    if args.dry_run:
        for act in plan.actions:
            what = f"symlink {act.path} -> {act.target}" if act.kind == "symlink" else f"unlink {act.path}"
            print(f"ldsim: dry-run: {what}")
        if opts.build_cache and not opts.manual_link:
            size = len(plan.cache_bytes(opts))
            print(f"ldsim: dry-run: write {opts.cache_file} ({len(plan.entries)} entries, {size} bytes)")
        return 0
    errors = apply_plan(world, opts, plan)
    sys.stderr.write(render_lines(errors))
    if errors:
        return 1
    if plan.aborts:
        print(f"ldsim: {opts.cache_file}: glibc 2.36 ldconfig aborts here (legacy-hwcap entries in a "
              f"{fmt} cache corrupt its heap); the cache was written", file=sys.stderr)
        return EXIT_ABORT
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point for tests: `python -m ldsim.cli_ldconfig ARGS`."""
    from ldsim.cli import byte_faithful_streams
    byte_faithful_streams()
    parser = argparse.ArgumentParser(prog="ldsim")
    sub = parser.add_subparsers()
    add_parser(sub)
    args = parser.parse_args(["ldconfig", *(sys.argv[1:] if argv is None else argv)])
    status = run(args)
    if status < 0:  # ends as the real ldconfig did
        from ldsim.cli import _die_by_signal
        _die_by_signal(-status)
    return status


if __name__ == "__main__":
    sys.exit(main())
