"""`ldsim why [run options] PROGRAM LIB`: every chain that leads to LIB, the step that found it, what was
tried before and what it shadows; or, when LIB is not found, every directory searched and near misses.

Exit status: 0 LIB is loaded (or is the program, ld.so or the vDSO), 1 LIB is requested but not found (or the startup fails), 4 nothing needs LIB,
3 PROGRAM cannot be read (cli.EXIT_INPUT), 2 usage."""

from __future__ import annotations

import argparse
import json
import sys

EXIT_MISSING, EXIT_UNUSED = 1, 4


def add_run_options(p: argparse.ArgumentParser) -> None:
    """cli._common plus the ld.so options that change a search."""
    from ldsim import cli
    cli._common(p)
    p.add_argument("--ldd", action="store_true",
                   help="simulate `ld.so PROGRAM` as ldd runs it (default: exec of PROGRAM)")
    p.add_argument("--library-path", metavar="PATH", help="as ld.so --library-path (replaces LD_LIBRARY_PATH)")
    p.add_argument("--inhibit-cache", action="store_true", help="as ld.so --inhibit-cache")
    p.add_argument("--preload", metavar="LIST", help="as ld.so --preload")
    p.add_argument("--scenario", metavar="FILE",
                   help="run inside this scenario's virtual world (PROGRAM defaults to its program)")


def start(args: argparse.Namespace):
    """The simulated process, or a one-line error (ldsim: FILE: reason) and cli.EXIT_INPUT."""
    from ldsim import cli
    from ldsim.elf import ElfError
    from ldsim.linkmap import FileCache
    from ldsim.why import simulate
    from ldsim.world import make_world
    inv = cli._invocation(args)
    world = make_world(args.root, inv.cwd)
    if args.scenario:
        from ldsim.scenario import VROOT, ScenarioError, fmt, load, virtual_world
        try:
            sc = load(args.scenario)
        except ScenarioError as e:
            print(f"ldsim: {args.scenario}: {e}", file=sys.stderr)
            return None
        world = virtual_world(sc)
        env = tuple((k, fmt(v, VROOT)) for k, v in sc.env.items()) if args.empty_env or not args.env else inv.env
        inv = inv.replace(env=env, cwd=world.cwd)
        args.program = args.program or fmt(sc.program, VROOT)
        args.ldd = args.ldd or sc.mode == "ldd"
    if not args.program:
        print("ldsim: missing PROGRAM", file=sys.stderr)
        return None
    if not args.ldd and not args.scenario:
        from ldsim.profiles import exec_error
        failure = exec_error(world, args.program, inv.abis)
        if failure is not None:  # execve fails before any loader runs
            print(f"ldsim: {args.program}: {failure}", file=sys.stderr)
            return None
    files = FileCache()
    try:
        files.parse(world.open(args.program))
    except OSError as e:
        print(f"ldsim: {args.program}: {e.strerror or e}", file=sys.stderr)
        return None
    except ElfError as e:
        print(f"ldsim: {args.program}: {e}", file=sys.stderr)
        return None
    return simulate(world, inv, files, args.program, direct=args.ldd, library_path=args.library_path,
                    inhibit_cache=args.inhibit_cache, preload=args.preload)


def cmd_why(args: argparse.Namespace) -> int:
    from ldsim import cli
    from ldsim.render import explain
    from ldsim.why import explain as analyse
    if not args.lib:
        print("ldsim why: LIB is empty: give a soname, file name or path", file=sys.stderr)
        return cli.EXIT_USAGE
    proc = start(args)
    if proc is None:
        return cli.EXIT_INPUT
    rep = analyse(proc, args.lib)
    if args.json:
        json.dump(explain.as_dict(proc, rep), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for line in explain.lines(proc, rep):
            print(line)
    if rep.missing:
        return EXIT_MISSING
    return 0 if rep.found or rep.implicit else EXIT_UNUSED


def add_parser(sub) -> None:
    p = sub.add_parser("why", help="why (or why not) a program loads a library, step by step")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.add_argument("program", metavar="PROGRAM")
    p.add_argument("lib", metavar="LIB", help="a soname, file name or path")
    p.set_defaults(func=cmd_why)
