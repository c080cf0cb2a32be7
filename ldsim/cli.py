"""The shell: argparse subcommands, each a few lines; the only place that writes to stdout/stderr."""

from __future__ import annotations

import os
import sys
TYPE_CHECKING = False

from ldsim.config import Credentials, Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import cpu_for_level, detect_host_cpu
from ldsim.kernelabi import KernelAbis
from ldsim.linkmap import FileCache
from ldsim.vm import read_host_memory
from ldsim.world import make_world

if TYPE_CHECKING:
    import argparse

EXTRA_COMMANDS = ("cli_ldconfig", "cli_why", "cli_tree", "cli_scenario", "cli_scan")
EXIT_USAGE = 2
EXIT_INPUT = 3  # a file ldsim could not read or understand


def _env(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    base = [] if args.empty_env else list(os.environ.items())
    env = dict(base)
    order = [k for k, _ in base]
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"ldsim: -e {item}: expected NAME=VALUE")
        if key not in env:
            order.append(key)
        env[key] = value
    return tuple((k, env[k]) for k in order)


def _invocation(args: argparse.Namespace) -> Invocation:
    """The host facts, then the loader's rules: --profile, else those of the root's own loader."""
    from ldsim.hwcaps import cpu_for_profile
    from ldsim.profiles import detect_root, profile_by_name
    inv = _host_invocation(args)
    try:
        profile = (profile_by_name(args.profile) if getattr(args, "profile", None)
                   else detect_root(make_world(args.root, inv.cwd)) if args.root is not None else inv.profile)
        if not getattr(args, "profile", None):
            profile = _interp_profile(args, inv) or profile
    except ValueError as e:
        print(f"ldsim: {e}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    return inv.replace(profile=profile, cpu=cpu_for_profile(profile, inv.cpu))


def _interp_profile(args: argparse.Namespace, inv: Invocation):
    """Where the kernel would map the program (`run`, `why`, `tree`), its PT_INTERP is the loader whose
    rules apply: the profile that loader identifies as."""
    from ldsim.profiles import identify_loader, program_interp
    command = getattr(args, "command", None)
    if command == "run":
        rest = _rest(args)
        program = rest[0] if rest else None
    elif command in ("why", "tree"):  # with --ldd too: ldd's RTLDLIST loop picks the program's own loader
        program = getattr(args, "program", None)
    else:
        return None
    if not program:
        return None
    world = make_world(args.root, inv.cwd)
    interp = program_interp(world, program)
    if not interp:  # run without one: ld.so itself (`exec /lib/ld-linux.so.2 PROG`) runs by its own rules
        return _own_loader_profile(world, program, inv) if command == "run" else None
    if interp == inv.profile.rtld:  # the default loader itself: nothing to identify
        return None
    return identify_loader(world, interp)


def _own_loader_profile(world, program: str, inv: Invocation):
    """The profile of a file without PT_INTERP that is a loader of another ABI than the default one."""
    from ldsim.elf import read_ident
    from ldsim.profiles import identify_loader
    try:
        ident = read_ident(world.read(program, 64))
    except OSError:
        return None
    if ident is None or not ident.magic_ok or (ident.ei_class, ident.e_machine) == (
            inv.profile.ei_class, inv.profile.e_machine):
        return None
    return identify_loader(world, program)


def _host_invocation(args: argparse.Namespace) -> Invocation:
    cpu = cpu_for_level(args.cpu) if getattr(args, "cpu", None) else detect_host_cpu()
    cwd = os.getcwd() if args.root is None else "/"
    env = _env(args)
    kernel = None
    if any(k == "LD_SHOW_AUXV" for k, _ in env):  # the running kernel's vector, as this process got it
        from ldsim.auxv import read_host_auxv
        kernel = read_host_auxv()
    return Invocation(env=env, cwd=cwd, pid=args.pid or os.getpid(), cpu=cpu, profile=DEBIAN_X86_64,
                      secure=bool(getattr(args, "secure", False)), credentials=_credentials(args), kernel=kernel,
                      abis=KernelAbis(), memory=read_host_memory())


def _credentials(args: argparse.Namespace) -> Credentials | None:
    """The caller's ids before execve (each defaults to this process's own).  ldd's bash resets its
    effective ids to the real ones before it runs ld.so, so ldd is never secure unless forced: its
    process has the real ids --uid and --gid give (None, ldsim's own, without them)."""
    if getattr(args, "command", None) == "ldd":
        if getattr(args, "uid", None) is None and getattr(args, "gid", None) is None:
            return None
        uid = os.getuid() if args.uid is None else args.uid
        gid = os.getgid() if args.gid is None else args.gid
        return Credentials(uid, uid, gid, gid)
    own = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid()}
    return Credentials(**{k: own[k] if getattr(args, k, None) is None else getattr(args, k) for k in own},
                       no_new_privs=bool(getattr(args, "no_new_privs", False)))


def _common(p: argparse.ArgumentParser) -> None:
    import argparse
    p.add_argument("-i", dest="empty_env", action="store_true", help="start from an empty environment")
    p.add_argument("-e", dest="env", action="append", metavar="NAME=VALUE", help="set a variable")
    p.add_argument("--root", metavar="DIR", help="resolve everything inside this sysroot")
    p.add_argument("--profile", metavar="NAME|FILE.toml",
                   help="the loader build to simulate (default: the root's own loader, detected)")
    p.add_argument("--pid", type=int, help="the PID shown in LD_DEBUG lines")
    p.add_argument("--cpu", choices=list(_CPUS),
                   help="simulate this CPU instead of the host's")
    for ident in ("uid", "euid", "gid", "egid"):
        p.add_argument(f"--{ident}", type=int, metavar="N",
                       help=f"the caller's {ident} before exec (default: ldsim's own); with the program's "
                            "set-user/group-ID bits and file capabilities it decides AT_SECURE"
                       if ident == "uid" else argparse.SUPPRESS)
    p.add_argument("--secure", action="store_true", help="force AT_SECURE=1 (secure-execution mode)")
    p.add_argument("--no-new-privs", action="store_true",
                   help="the caller has no_new_privs set (setpriv --no-new-privs): set-ID bits and file "
                        "capabilities grant nothing")


def positive_int(text: str) -> int:
    """argparse type of --jobs."""
    import argparse
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _emit(run) -> int:
    for stream, text in run.chunks:
        (sys.stdout if stream == 1 else sys.stderr).write(text)
    return run.status  # < 0: killed by that signal; main() ends this process the same way


def _rest(args: argparse.Namespace) -> list[str]:
    return args.rest[1:] if args.rest[:1] == ["--"] else args.rest


def cmd_ldd(args: argparse.Namespace) -> int:
    from ldsim.lddscript import run_ldd
    inv = _invocation(args)
    from ldsim.fanout import usable_cpus
    jobs = args.jobs or usable_cpus()
    return _emit(run_ldd(make_world(args.root, inv.cwd), inv, _rest(args), FileCache(snapshot=True), jobs))


def cmd_ldso(args: argparse.Namespace) -> int:
    from ldsim.ldso import run_ldso
    inv = _invocation(args)
    world = make_world(args.root, inv.cwd)
    if args.root is not None and not getattr(args, "profile", None):
        from ldsim.profiles import musl_root_loader
        musl = musl_root_loader(world)
        if musl is not None:  # the root's loader is musl's: its own command line and rules
            from ldsim.musl import run_ldso as musl_ldso
            chunks, status = musl_ldso(world, dict(inv.env), inv.cwd, musl, _rest(args))
            if status is None:
                print(f"ldsim: {musl}: only --list is simulated for musl's loader", file=sys.stderr)
                return EXIT_USAGE
            for stream, text in chunks:
                (sys.stdout if stream == 1 else sys.stderr).write(text)
            return status
    return _emit(run_ldso(world, inv, _rest(args), FileCache(snapshot=True), inv.profile.rtld))


def cmd_run(args: argparse.Namespace) -> int:
    from ldsim.ldso import run_exec
    inv = _invocation(args)
    rest = _rest(args)
    if not rest:
        print("ldsim run: missing program", file=sys.stderr)
        return EXIT_USAGE
    world = make_world(args.root, inv.cwd)
    from ldsim.profiles import exec_error
    failure = exec_error(world, rest[0], inv.abis)
    if failure is not None:  # execve itself fails before any loader runs
        print(f"ldsim: {rest[0]}: {failure}", file=sys.stderr)
        return EXIT_INPUT
    musl = _musl_interp(world, rest[0])
    if musl is not None:  # musl's loader: its own rules (ldsim.musl), nothing to explain
        from ldsim.musl import run_exec as musl_exec
        chunks, status = musl_exec(world, dict(inv.env), inv.cwd, musl, rest[0])
        for stream, text in chunks:
            (sys.stdout if stream == 1 else sys.stderr).write(text)
        return status
    files = FileCache(snapshot=True)  # both runs of --explain read the same files: parsed once
    status = _emit(run_exec(world, inv, rest, files))
    if args.explain:  # after the trace: loaded objects, their first requester, search step, bindings
        from ldsim.render.explain import run_table
        from ldsim.runexplain import explain_run
        sys.stdout.writelines(run_table(explain_run(world, inv, rest, files)))
    return status


def _musl_interp(world, program: str) -> str | None:
    """The program's PT_INTERP when that is musl's loader (`ld-musl-ARCH.so.1`), else None."""
    from ldsim.profiles import is_musl_interp, program_interp
    interp = program_interp(world, program)
    return interp if is_musl_interp(interp) else None


def build_parser(extras: bool = True) -> argparse.ArgumentParser:
    """extras=False leaves out the subcommands of their own modules (ldd, ld.so and run start faster)."""
    import argparse
    parser = argparse.ArgumentParser(prog="ldsim", description="Simulate the glibc 2.36 dynamic loader.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ldd", help="what ldd prints, without running anything", add_help=False)
    _common(p)
    p.add_argument("--jobs", type=positive_int, default=0, metavar="N",
                   help="simulate the FILEs in N processes (default: one per CPU; the output is the same)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ldd)
    p = sub.add_parser("ld.so", help="invoke the simulated loader explicitly", add_help=False)
    _common(p)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ldso)
    p = sub.add_parser("run", help="simulate exec of a program under the loader", add_help=False)
    _common(p)
    p.add_argument("--explain", action="store_true", help="after the trace, a table of the loaded objects")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)
    import importlib
    for mod in EXTRA_COMMANDS if extras else ():  # each module owns one subcommand: add_parser(sub) sets func
        try:
            importlib.import_module(f"ldsim.{mod}").add_parser(sub)
        except ModuleNotFoundError as e:
            if e.name != f"ldsim.{mod}":
                raise
    return parser


_OWN_WITH_VALUE = {"-e", "--root", "--profile", "--pid", "--cpu", "--uid", "--euid", "--gid", "--egid", "--jobs"}
_OWN_FLAGS = {"-i", "--secure", "--no-new-privs"}


def _split_own(argv: list[str]) -> list[str]:
    """For ldd/ld.so, ldsim's own options come first; everything after belongs to the simulated tool
    (so that `--inhibit-rpath X` or `-v` are never taken by argparse).  '--' may separate them when some
    of ldsim's own options come first; right after the tool's name it is the tool's (`ldd -- -v` names
    a file "-v", and so does `ldsim ldd -- -v`)."""
    if argv[:1] == ["ldconfig"]:  # all of it is ldconfig's command line (ldsim's own is --dry-run)
        return ["ldconfig", "--", *argv[1:]]
    if not argv or argv[0] not in ("ldd", "ld.so", "run"):
        return argv
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in _OWN_FLAGS or (a == "--explain" and argv[0] == "run"):
            i += 1
        elif a in _OWN_WITH_VALUE and i + 1 < len(argv):
            i += 2
        elif any(a.startswith(o + "=") for o in _OWN_WITH_VALUE if o.startswith("--")):
            i += 1
        else:
            break
    rest = argv[i:]
    if rest[:1] == ["--"] and i > 1:
        rest = rest[1:]
    return argv[:i] + ["--"] + rest


_CPUS = ("baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")  # --cpu's choices
_INT_OPTIONS = {"--pid", "--uid", "--euid", "--gid", "--egid", "--jobs"}


def _fast_ldd_args(argv: list[str]):
    """`ldsim ldd ...` parsed without argparse (importing it and building the parsers was ~10 ms of a
    ~40 ms command): the namespace argparse would return for `_split_own(argv)`, or None for anything
    argparse itself must answer (a value it could take for an option, a bad int or --cpu choice)."""
    split = _split_own(argv)
    if split[:1] != ["ldd"]:
        return None
    from types import SimpleNamespace
    ns = SimpleNamespace(command="ldd", empty_env=False, env=None, root=None, profile=None, pid=None, cpu=None,
                         uid=None, euid=None, gid=None, egid=None, secure=False, no_new_privs=False, jobs=0)
    i = 1
    while split[i] != "--":  # _split_own ends ldsim's own options with "--"
        opt = split[i]
        if opt in _OWN_FLAGS:
            setattr(ns, {"-i": "empty_env", "--secure": "secure", "--no-new-privs": "no_new_privs"}[opt], True)
            i += 1
            continue
        if "=" in opt and opt.startswith("--"):
            opt, value = opt.split("=", 1)
            i += 1
        else:
            value = split[i + 1]
            i += 2
        if value.startswith("-"):
            return None
        if opt == "-e":
            ns.env = (ns.env or []) + [value]
            continue
        if opt in _INT_OPTIONS:
            try:
                value = int(value)
            except ValueError:
                return None
            if opt == "--jobs" and value < 1:
                return None
        elif opt == "--cpu" and value not in _CPUS:
            return None
        setattr(ns, opt[2:], value)
    ns.rest = split[i:]
    ns.func = cmd_ldd
    return ns


def _die_by_signal(signum: int) -> None:
    """End this process the way the simulated one ended (a crash of ld.so): by that signal, no core."""
    import resource
    import signal
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def byte_faithful_streams() -> None:
    """Write names as the C tools do, byte for byte: paths are decoded with surrogateescape, and Python's
    stderr would print an undecodable byte as `\\udcXX` (stdout fails outside a C/POSIX locale)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # absent on a replaced stream (tests)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="surrogateescape")


def main(argv: list[str] | None = None) -> int:
    byte_faithful_streams()
    if argv is None:  # the process's own command: what the imports made lives as long as the process,
        import gc     # so no full collection need scan it again (a batch of ldd spent ~0.06 s doing so)
        gc.freeze()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _fast_ldd_args(argv) if argv[:1] == ["ldd"] else None
    if args is None:
        args = build_parser(extras=argv[:1] not in (["ldd"], ["ld.so"], ["run"])).parse_args(_split_own(argv))
    try:
        status = args.func(args)
        if isinstance(status, int) and status < 0:  # the simulated loader was killed by signal -status
            _die_by_signal(-status)
        return status
    except BrokenPipeError:
        return 1
    except NotImplementedError as e:
        print(f"ldsim: {e}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
