"""`ldsim scenario run|build|verify PATH...`: declarative worlds (scenarios/*.toml, or directories of them).

run     checks each scenario's expectations in-process, on a virtual filesystem (no compiler needed);
        a scenario about symbols (bindings, versions, init order: `real_only`) is skipped there;
build   materialises each world with gcc under `--out DIR/NAME`;
verify  builds each world in a temporary directory and checks the expectations against the real loader,
        and, for a `real_only` scenario, against ldsim run in-process on the built files.
Exit status: 0 every claim holds, 1 some expectation failed, 3 a scenario file is unreadable, 2 usage."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile


def _paths(items: list[str]) -> list[str]:
    out: list[str] = []
    for p in items:
        out += sorted(glob.glob(os.path.join(p, "*.toml"))) if os.path.isdir(p) else [p]
    return out


def _load_all(items: list[str]):
    from ldsim.scenario import ScenarioError, load
    scs, bad = [], 0
    for p in _paths(items):
        try:
            scs.append(load(p))
        except ScenarioError as e:
            print(f"ldsim: {p}: {e}", file=sys.stderr)
            bad += 1
    return scs, bad


def _report(name: str, problems: list[str], quiet: bool) -> None:
    if problems:
        print(f"FAIL {name}")
        for p in problems:
            print(f"     {p}")
    elif not quiet:
        print(f"ok   {name}")


def cmd_scenario(args: argparse.Namespace) -> int:
    from ldsim import cli
    from ldsim.scenario import ScenarioError, build, check, run_ldsim_on, run_real, run_virtual
    scs, unreadable = _load_all(args.paths)
    failed = 0
    for sc in scs:
        try:
            if args.action == "run":
                if sc.real_only:
                    if not args.quiet:
                        print(f"skip {sc.name} (real only: gcc-built symbols; see verify)")
                    continue
                problems = check(sc, run_virtual(sc))
            elif args.action == "build":
                out = os.path.join(args.out, sc.name)
                build(sc, os.path.abspath(out))
                print(f"built {sc.name} in {out}")
                continue
            else:
                if sc.virtual_only:
                    print(f"skip {sc.name} (virtual only)")
                    continue
                with tempfile.TemporaryDirectory(prefix="ldsim-scenario-") as root:
                    build(sc, root)
                    problems = [f"real loader: {p}" for p in check(sc, run_real(sc, root), root)]
                    if sc.real_only:
                        problems += [f"ldsim: {p}" for p in check(sc, run_ldsim_on(sc, root), root)]
        except ScenarioError as e:
            print(f"ldsim: {sc.file}: {e}", file=sys.stderr)
            unreadable += 1
            continue
        failed += bool(problems)
        _report(sc.name, problems, args.quiet)
    if unreadable:
        return cli.EXIT_INPUT
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("scenario", help="declarative loader worlds: run virtually, build with gcc, verify")
    p.add_argument("action", choices=("run", "build", "verify"))
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or directories of them")
    p.add_argument("--out", metavar="DIR", help="where `build` puts the worlds")
    p.add_argument("-q", "--quiet", action="store_true", help="report failures only")
    p.set_defaults(func=_checked)


def _checked(args: argparse.Namespace) -> int:
    if args.action == "build" and not args.out:
        print("ldsim scenario build: --out DIR is required", file=sys.stderr)
        return 2
    return cmd_scenario(args)
