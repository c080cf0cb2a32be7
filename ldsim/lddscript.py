"""glibc's ldd (elf/ldd.bash.in as Debian installs it), run against the simulated loader: the same
options, messages, per-file checks, RTLD choice through `--verify`, and the traced run's merged output."""

from __future__ import annotations

import stat as stat_mod

from ldsim.access import caller_view
from ldsim.config import Invocation
from ldsim.elf import EIClass, EMachine, read_ident
from ldsim.fanout import ordered_map
from ldsim.linkmap import FileCache
from ldsim import lddlocale
from ldsim.lddlocale import Messages
from ldsim.lddeval import EvalSyntaxError, debug_assignment, shell_lookup
from ldsim.hwcaps import cpu_for_profile
from ldsim.ldso import Run, run_ldso
from ldsim.profiles import identify_loader, is_musl_interp, program_interp
from ldsim.world import FifoWouldBlock, World

_LONG = {"--help": "help", "--version": "version", "--data-relocs": "d", "--function-relocs": "r",
         "--verbose": "v", "--unused": "u"}
_AMBIGUOUS = {"--v", "--ve", "--ver"}


class LddOptions:
    """The script's option variables, and `single_file` (whether it lists one FILE)."""
    __slots__ = ("warn", "bind_now", "verbose", "unused", "single")

    def __init__(self) -> None:
        self.warn = self.bind_now = self.verbose = self.unused = self.single = False


def _option(arg: str) -> str | None:
    """ldd's case patterns: short options and accepted abbreviations of the long ones."""
    if arg in ("-d",):
        return "d"
    if arg in ("-r",):
        return "r"
    if arg in ("-v",):
        return "v"
    if arg in ("-u",):
        return "u"
    for long, what in _LONG.items():
        shortest = {"help": 4, "version": 6, "d": 3, "r": 3, "v": 6, "u": 3}[what]
        if len(arg) >= shortest and long.startswith(arg):
            return what
    return None


# the script's $"..." strings as written there (their msgids in libc.mo)
USAGE = """Usage: ldd [OPTION]... FILE...
      --help              print this help and exit
      --version           print version information and exit
  -d, --data-relocs       process data relocations
  -r, --function-relocs   process data and function relocations
  -u, --unused            print unused direct dependencies
  -v, --verbose           print all information
"""
BUGS = "For bug reporting instructions, please see:\\\\n%s.\\\\n"
COPYRIGHT = ("Copyright (C) %s Free Software Foundation, Inc.\n"
             "This is free software; see the source for copying conditions.  There is NO\n"
             "warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.\n")
TRY_HELP = "Try \\`ldd --help' for more information."


def help_text(msgs: Messages) -> str:
    return msgs.say(USAGE) + "\n" + msgs.printf(BUGS, "<http://www.debian.org/Bugs/>")


def version_text(inv: Invocation, msgs: Messages) -> str:
    return (f"ldd ({inv.profile.version}) 2.36\n" + msgs.printf(COPYRIGHT, "2022")
            + msgs.printf("Written by %s and %s.\n", "Roland McGrath", "Ulrich Drepper"))


def messages(world: World, inv: Invocation, files: FileCache) -> Messages:
    """The script's messages in the locale bash set up (the same for every FILE: made once)."""
    return _bash_locale(world, inv, files)[1]


def _bash_locale(world: World, inv: Invocation, files: FileCache) -> tuple[str | None, Messages]:
    """bash's setlocale at its start: its warning (or None) and the script's messages, once per world."""
    memo = files.memo.setdefault("ldd messages", {})
    key = (id(world), inv)
    hit = memo.get(key)
    if hit is None or hit[0] is not world:
        env = dict(inv.env)
        warning, locale = lddlocale.startup(world, env)
        hit = memo[key] = (world, warning, Messages(lddlocale.translator(world, env, locale)))
    return hit[1], hit[2]


LDD_SHELL = "/bin/bash"  # the script's `#! /bin/bash`


def run_ldd(world: World, inv: Invocation, argv: list[str], files: FileCache, jobs: int = 1) -> Run:
    """`jobs` > 1: the FILEs are simulated in that many forked processes (the output is the same).
    The script's tests (`test -e`, `-r`, `-x`) and the loaders it runs see files as the caller does."""
    world = caller_view(world, inv.credentials)
    out = Run()
    status, shell_exit = _shell_start(world, inv, files, out)
    if status is not None:  # the shell's own loader ended it (LD_DEBUG=help, a preload's missing
        out.status = status  # dependency or version): the script never runs
        return out
    if _executable(world, LDD_SHELL):
        warning = _bash_locale(world, inv, files)[0]
        if warning:  # set_default_locale, before the startup files
            out.write(2, warning)
        _bash_startup(world, inv, out)
    _script(world, inv, argv, files, out, shell_exit, jobs)
    if shell_exit is not None:  # the script's own exit
        out.chunks.extend(shell_exit.chunks)
    return out


# bash 5.2's defaults for a script (`set -o`, `shopt`): an environment that names others changes how the
# script runs (SHELLOPTS=xtrace traces every line), which is not simulated
_DEFAULT_SHELLOPTS = frozenset({"braceexpand", "hashall", "interactive-comments"})
_DEFAULT_BASHOPTS = frozenset(
    "checkwinsize cmdhist complete_fullquote extquote force_fignore globasciiranges globskipdots hostcomplete "
    "interactive_comments patsub_replacement progcomp promptvars sourcepath".split())
_OWN_FUNCTIONS = ("nonelf", "try_trace")  # the script defines these before it calls them


def _bash_startup(world: World, inv: Invocation, out: Run) -> None:
    """What bash does with its environment before the script's first line (shell.c): SHELLOPTS and
    BASHOPTS turn options on, BASH_FUNC_NAME%% imports functions, and a non-interactive shell not in
    POSIX mode sources $BASH_ENV (run_startup_files, maybe_execute_file: a missing file is skipped
    silently, a directory is reported)."""
    env = dict(inv.env)
    if not set(filter(None, env.get("SHELLOPTS", "").split(":"))) <= _DEFAULT_SHELLOPTS \
            or not set(filter(None, env.get("BASHOPTS", "").split(":"))) <= _DEFAULT_BASHOPTS:
        raise NotImplementedError("ldd with shell options from SHELLOPTS or BASHOPTS: not simulated")
    if any(k.startswith("BASH_FUNC_") and k.endswith("%%") and k[10:-2] not in _OWN_FUNCTIONS for k in env):
        raise NotImplementedError("ldd with shell functions imported from the environment: not simulated")
    target = env.get("BASH_ENV", "")
    if not target or "POSIXLY_CORRECT" in env:
        return
    if any(c in target for c in "$`") or target.startswith("~"):
        raise NotImplementedError("ldd: a BASH_ENV that bash expands is not simulated")
    path = target if target.startswith("/") else f"{inv.cwd.rstrip('/')}/{target}"
    try:
        st = world.stat(path)
    except OSError:
        return
    if stat_mod.S_ISDIR(st.st_mode):
        out.write(2, f"{_script_path(world, inv)}: {target}: is a directory\n")
    elif st.st_size or not world.readable(path):
        raise NotImplementedError(f"ldd: BASH_ENV={target}: bash would run that file, which is not simulated")


def _script(world: World, inv: Invocation, argv: list[str], files: FileCache, out: Run,
            shell_exit: Run | None, jobs: int) -> None:
    """The script after the shell started; `shell_exit` is what each subshell prints when it exits."""
    opts = LddOptions()
    msgs = messages(world, inv, files)
    # the script sets warn=, bind_now= and verbose= but never unused=: an `unused` the caller exported
    # reaches `test "$unused" = yes` as it is
    opts.unused = dict(inv.env).get("unused") == "yes"
    args = list(argv)
    while args:
        arg = args[0]
        if arg in _AMBIGUOUS:
            out.write(2, msgs.say("ldd: option \\`$1' is ambiguous", arg) + "\n")
            out.status = 1
            return
        what = _option(arg)
        if what == "help":
            out.write(1, help_text(msgs))
            return
        if what == "version":
            out.write(1, version_text(inv, msgs))
            return
        if what is not None:
            opts.warn |= what in "dr"
            opts.bind_now |= what == "r"
            opts.verbose |= what == "v"
            opts.unused |= what == "u"
            args.pop(0)
            continue
        if arg == "--":
            args.pop(0)
            break
        if arg.startswith("-"):
            out.write(2, f"ldd: {msgs.say('unrecognized option')} `{arg}'\n{msgs.say(TRY_HELP)}\n")
            out.status = 1
            return
        break
    if not args:
        out.write(2, f"ldd: {msgs.say('missing file arguments')}\n{msgs.say(TRY_HELP)}\n")
        out.status = 1
        return
    single = opts.single = len(args) == 1

    def one(given: str) -> tuple[list[tuple[int, str]], bool, int | None, int]:
        """The script's loop body for one FILE: what it printed, whether it failed, the status of the
        script's `exit` when it ended there, and a status it set (musl's ldd: its loader's)."""
        part = Run()
        if not single:
            part.write(1, f"{given}:\n")
        path = given if "/" in given else "./" + given
        try:
            failed = _one_file(world, inv, opts, path, files, part, shell_exit) != 0
            return part.chunks, failed, None, part.status
        except _LddExit as e:  # the script's `exit`: the remaining FILEs are not looked at
            return part.chunks, False, e.status, part.status
        except FifoWouldBlock as e:  # ldd hangs there: what it printed before, then ldsim's one line, exit 3
            part.write(2, f"ldsim: {e}\n")
            return part.chunks, False, EXIT_NOT_SIMULATED, part.status

    for chunks, failed, exit_status, status in ordered_map(one, args, jobs, stop=lambda r: r[2] is not None,
                                                                 min_share=_MIN_SHARE):
        out.chunks.extend(chunks)
        if status:
            out.status = status
        if failed:
            out.status = 1
        if exit_status is not None:
            out.status = exit_status


EXIT_NOT_SIMULATED = 3  # the CLI's status for what ldsim does not simulate (cli.EXIT_INPUT)
# a FILE takes ~0.8 ms; a forked worker ~1 ms to start and ~3 ms to parse libc and the like again
_MIN_SHARE = 16


class _LddExit(Exception):
    """The ldd script exits in the middle of its loop over FILEs."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_SHELL_START_VARS = ("LD_PRELOAD", "LD_AUDIT", "LD_PROFILE", "LD_DEBUG", "LD_LIBRARY_PATH", "LD_SHOW_AUXV",
                     "LD_TRACE_LOADED_OBJECTS")


def _shell_start(world: World, inv: Invocation, files: FileCache, out: Run) -> tuple[int | None, Run | None]:
    """`_bash_start`, worked out once per world and invocation: the same for every ldd run of a process
    (the conformance tests run ldd per file; bash's start under LD_LIBRARY_PATH is ~20 ms)."""
    memo = files.memo.setdefault("ldd shell start", {})
    key = (id(world), inv)
    hit = memo.get(key)
    if hit is None or hit[0] is not world:
        printed = Run()
        hit = memo[key] = (world, printed.chunks, _bash_start(world, inv, files, printed))
    out.chunks.extend(hit[1])
    return hit[2]


def _bash_start(world: World, inv: Invocation, files: FileCache, out: Run) -> tuple[int | None, Run | None]:
    """The kernel first execs the script's shell with the same environment, and its own loader prints
    before the script runs: LD_PRELOAD entries and LD_AUDIT objects it cannot load, an LD_PROFILE file
    it cannot open, LD_DEBUG's warnings and trace of bash's start, LD_SHOW_AUXV's vector, and what
    LD_LIBRARY_PATH gives bash in place of its own libraries (another libc: missing versions, a symbol
    lookup error).  When a preload it
    did load cannot be completed (its dependency or a version it needs is missing: fatal, 127 or 1), or
    bash's own libraries cannot, the script never runs; under LD_TRACE_LOADED_OBJECTS (any value, even
    0: rtld.c's process_envvars) bash's loader lists bash and exits 0, so the script never runs either.
    Simulated only when one of those seven is set or
    the root has an /etc/ld.so.preload (dl_main reads it for bash too: its ignored entries are printed once
    more, before the script runs); nothing else makes bash's startup print.  Returns the shell's status
    when its loader ended it, else None, and what bash's loader prints when a bash process exits
    (LD_DEBUG: calling fini ...), or None when that is nothing."""
    from ldsim.config import Debug, Mode, read_environment
    from ldsim.credentials import secure_for_exec
    from ldsim.ldso import exec_in_parts
    if (not (any(k in _SHELL_START_VARS for k, _ in inv.env)
             or world.readable(inv.profile.preload_file))
            or not _executable(world, LDD_SHELL)):
        return None, None
    cfg = read_environment(inv.env, secure_for_exec(world, LDD_SHELL, inv.credentials, inv.secure))
    if cfg.debug_to_file:
        cfg.debug = 0  # bash's debug lines go to LD_DEBUG_OUTPUT.PID files, not to ldd's output
    if cfg.debug & (Debug.BINDINGS | Debug.SYMBOLS | Debug.STATISTICS) and cfg.lazy:
        raise NotImplementedError("ldd under LD_DEBUG=bindings, symbols or statistics: the lazy bindings "
                                  "bash's loader makes while bash runs the script are not simulated")
    shell, shell_exit = exec_in_parts(world, inv, [LDD_SHELL], files, cfg, execfn=_script_path(world, inv))
    for stream, text in shell.chunks:
        out.write(stream, text)
    if shell.status or cfg.debug_help or cfg.mode is Mode.TRACE:  # traced (any value): bash is listed, never runs
        return shell.status, None
    return None, shell_exit if shell_exit is not None and shell_exit.chunks else None


def _script_path(world: World, inv: Invocation) -> str:
    """The name the caller's execvp gave the kernel for `ldd` (AT_EXECFN of the script's bash): the first
    executable ldd along PATH (execvp's default path when there is none)."""
    path = next((v for k, v in inv.env if k == "PATH"), "/bin:/usr/bin")
    for d in path.split(":"):
        candidate = f"{d or '.'}/ldd"
        if _executable(world, candidate):
            return candidate
    return "/usr/bin/ldd"


def _one_file(world: World, inv: Invocation, opts: LddOptions, path: str, files: FileCache, out: Run,
              shell_exit: Run | None = None) -> int:
    msgs = messages(world, inv, files)
    try:
        st = world.stat(path)
    except OSError:
        out.write(2, f"ldd: {path}: {msgs.say('No such file or directory')}\n")
        return 1
    if not stat_mod.S_ISREG(st.st_mode):
        out.write(2, f"ldd: {path}: {msgs.say('not regular file')}\n")
        return 1
    if not world.readable(path):
        out.write(2, f"ldd: {msgs.say('error: you do not have read permission for')} `{path}'\n")
        return 1
    musl = _musl_loader(world, inv, path, files)
    if musl is not None:
        return _musl_list(world, inv, musl, path, out)
    rtld, ret, rtld_inv = _choose_rtld(world, inv, path, files, out, shell_exit)
    if ret == 1:
        out.write(2, msgs.say("\tnot a dynamic executable") + "\n")
        return 1
    if ret not in (0, 2):  # `ldd: ${RTLD} exited ...`: RTLD is set only by a 0 or 2, so it is empty
        out.write(2, f"ldd: {msgs.say('exited with unknown exit code')} ({ret})\n")
        raise _LddExit(1)
    try:
        debug = _unused_debug(world, inv, opts, path, rtld, ret) if opts.unused else None
    except EvalSyntaxError as e:  # eval fails inside try_trace's $(... 2>&1): its message is on stdout
        _subshell_exit(out, shell_exit)
        out.write(1, f"{_script_path(world, inv)}: eval: line {_EVAL_LINE}: {e}\n")
        _subshell_exit(out, shell_exit)
        return 2
    run = run_ldso(world, _traced_invocation(inv, rtld_inv, opts, ret, debug, files), [path], files, rtld)
    # try_trace is a subshell whose $(...) subshell runs the trace, 2>&1 captured: the inner one exits
    # first, then the outer prints the captured output and exits
    _subshell_exit(out, shell_exit)
    out.write(1, run.merged())
    _subshell_exit(out, shell_exit)
    return run.status


def _subshell_exit(out: Run, shell_exit: Run | None) -> None:
    """A subshell bash forked (not exec'ed) exits: its loader's exit lines, on ldd's stderr."""
    if shell_exit is not None:
        out.chunks.extend(shell_exit.chunks)


def _choose_rtld(world: World, inv: Invocation, path: str, files: FileCache, out: Run,
                 shell_exit: Run | None) -> tuple[str, int, Invocation]:
    """For each RTLD of RTLDLIST that is executable: `RTLD --version` in a subshell (2>&1, captured),
    then `RTLD --verify FILE`, whose stderr is ldd's; the first 0 or 2 wins.  Each RTLD is simulated
    with its own build's rules: the profile its binary identifies as."""
    ret = 1
    for rtld in inv.profile.ldd_rtlds:
        known = _rtld_identity(world, rtld, inv, files)
        if known is _NOT_EXECUTABLE:
            continue
        _subshell_exit(out, shell_exit)
        if known is _NOT_RUN:  # execve of `RTLD --version` fails (ENOEXEC): the script skips RTLD
            continue
        if known is _FOREIGN:
            # an RTLD the kernel runs but no profile describes (x32, where the kernel has it): a file it
            # could pass is not simulated; any other leaves ret as the previous RTLD set it
            _foreign_verify(world, rtld, path)
            continue
        verify = run_ldso(world, _verify_invocation(known, files), ["--verify", path], files, rtld)
        for stream, text in verify.chunks:
            if stream == 2:
                out.write(2, text)
        ret = verify.status
        if ret < 0:  # killed by a signal (a truncated FILE: SIGBUS): the shell's $? is 128 + signal
            ret = 128 - ret
        if ret in (0, 2):
            return rtld, ret, known
    return "", ret, inv


def _verify_invocation(known: Invocation, files: FileCache) -> Invocation:
    """`verify_out=`RTLD --verify FILE``: its stdout is discarded, so what LD_SHOW_AUXV prints there
    never shows (and need not be known for another machine's loader): the variable is left out."""
    if not any(k == "LD_SHOW_AUXV" for k, _ in known.env):
        return known
    memo = files.memo.setdefault("ldd verify", {})
    hit = memo.get(id(known))
    if hit is None or hit[0] is not known:
        hit = memo[id(known)] = (known, known.replace(env=tuple(e for e in known.env if e[0] != "LD_SHOW_AUXV")))
    return hit[1]


_NOT_EXECUTABLE, _NOT_RUN, _FOREIGN = "not executable", "not run by the kernel", "foreign"


def _rtld_identity(world: World, rtld: str, inv: Invocation, files: FileCache) -> Invocation | str:
    """An RTLD of the list: not executable, not run (the kernel refuses its ABI: `RTLD --version` fails),
    foreign (no profile describes it), or the invocation that simulates it (the caller's own for its own
    loader, else with the profile it identifies as).  The same for every FILE of a run: worked out once."""
    memo = files.memo.setdefault("ldd rtld", {})
    key = (id(world), world.root, rtld, inv)
    known = memo.get(key)
    if known is None:
        known = memo[key] = _identify_rtld(world, rtld, inv)
    return known


def _identify_rtld(world: World, rtld: str, inv: Invocation) -> Invocation | str:
    if not _executable(world, rtld):
        return _NOT_EXECUTABLE
    if not _kernel_runs(world, rtld, inv):
        return _NOT_RUN
    if rtld == inv.profile.rtld or _same_loader(world, rtld, inv):
        return inv
    other = identify_loader(world, rtld)
    if other is None:
        return _FOREIGN
    return inv.replace(profile=other, cpu=cpu_for_profile(other, inv.cpu))


def _executable(world: World, path: str) -> bool:
    """bash's `test -x` on a regular file: the caller's x permission (any x bit for root)."""
    try:
        st = world.stat(path)
    except OSError:
        return False
    check = getattr(world, "may_execute", None)
    return stat_mod.S_ISREG(st.st_mode) and (check(path) if check is not None else bool(st.st_mode & 0o111))


def _kernel_runs(world: World, path: str, inv: Invocation) -> bool:
    """execve accepts the file's ELF class and machine (an x32 loader on a kernel without x32 does not)."""
    if inv.abis is None:
        return True
    try:
        ident = read_ident(world.read(path, 64))
    except OSError:
        return True
    if ident is None or not ident.magic_ok:
        return True
    return inv.abis.executes((int(ident.ei_class), int(ident.e_machine)))


def _same_loader(world: World, rtld: str, inv: Invocation) -> bool:
    try:
        return world.realpath(rtld) == world.realpath(inv.profile.rtld)
    except OSError:
        return False


def _musl_loader(world: World, inv: Invocation, path: str, files: FileCache) -> str | None:
    """The musl loader that lists this file: its PT_INTERP when that is musl's and exists here, in a
    root where glibc's ldd could not run (none of its RTLDLIST is there): musl's ldd is that root's.
    Where glibc's loaders are, glibc's ldd lists a musl program with them, as the real one does."""
    if any(_rtld_identity(world, rtld, inv, files) is not _NOT_EXECUTABLE for rtld in inv.profile.ldd_rtlds):
        return None
    interp = program_interp(world, path)
    if is_musl_interp(interp) and _executable(world, interp):
        return interp
    return None


def _musl_list(world: World, inv: Invocation, ldname: str, path: str, out: Run) -> int:
    """musl's ldd is `exec LDSO --list "$@"`: its own rules and format (ldsim.musl)."""
    from ldsim.musl import run_list
    chunks, status = run_list(world, dict(inv.env), inv.cwd, ldname, path)
    for stream, text in chunks:
        out.write(stream, text)
    if status:  # musl's ldd execs the loader: its own status is ldd's
        out.status = status
    return 0


def _foreign_verify(world: World, rtld: str, path: str) -> None:
    """Another RTLD of the list that no profile describes (x32): only a file of its own class and
    machine could pass, and that is not simulated."""
    try:
        head = world.read(path, 64)
    except OSError:
        return
    ident = read_ident(head)
    if ident is None or not ident.magic_ok:
        return
    want = {"/lib/ld-linux.so.2": (EIClass.ELF32, EMachine.I386),
            "/libx32/ld-linux-x32.so.2": (EIClass.ELF32, EMachine.X86_64)}.get(rtld)
    if want and (ident.ei_class, ident.e_machine) == want:
        raise NotImplementedError(f"{rtld}: the {rtld.rsplit('/', 1)[-1]} loader is not simulated yet")


_EVAL_LINE = 117  # the line of try_trace's `output=$(eval $add_env ...)` in Debian's /usr/bin/ldd


def _unused_debug(world: World, inv: Invocation, opts: LddOptions, path: str, rtld: str, ret: int) -> str:
    """The LD_DEBUG that -u's `LD_DEBUG="$LD_DEBUG,unused"` gives the traced run once try_trace's eval has
    parsed the caller's value as shell text (ldsim.lddeval)."""
    env = dict(inv.env)
    old = env.get("LD_DEBUG", "")
    if not any(c in old for c in _SHELL_SPECIAL):
        return old + ("," if old else "") + "unused"
    flag = {True: "yes", False: ""}
    add_env = (f"LD_TRACE_LOADED_OBJECTS=1 LD_WARN={flag[opts.warn]} LD_BIND_NOW={flag[opts.bind_now]} "
               f"LD_LIBRARY_VERSION=$verify_out LD_VERBOSE={flag[opts.verbose]} "
               f'LD_DEBUG="{old}{"," if old else ""}unused"')
    script: dict[str, str | None] = {
        "TEXTDOMAIN": "libc", "TEXTDOMAINDIR": "/usr/share/locale", "RTLDLIST": " ".join(inv.profile.ldd_rtlds),
        "warn": flag[opts.warn], "bind_now": flag[opts.bind_now], "verbose": flag[opts.verbose],
        "unused": "yes", "add_env": add_env, "single_file": "t" if opts.single else "f", "file": path,
        "rtld": rtld, "RTLD": rtld, "ret": str(ret), "IFS": " \t\n",
        "result": None, "dummy": None,  # the files before this one; `RTLD --version`'s output
        "verify_out": None if "LD_SHOW_AUXV" in env else ""}

    def cwd_names() -> list[str]:
        try:
            return world.listdir(inv.cwd)
        except OSError:
            return []
    return debug_assignment(old, shell_lookup(env, script), [rtld, path], cwd_names)


_SHELL_SPECIAL = frozenset("\"'\\$`#~{;&|<>()*?[ \t\n")  # what makes eval read LD_DEBUG as more than text


def _traced_invocation(inv: Invocation, rtld_inv: Invocation, opts: LddOptions, verify_out: int,
                       debug: str | None, files: FileCache) -> Invocation:
    """The traced run's invocation: the same for every FILE of a run with the same --verify answer and
    LD_DEBUG, so made once (and its environment read once, see ldso._environment)."""
    memo = files.memo.setdefault("ldd traced", {})
    key = (id(inv), id(rtld_inv), verify_out, opts.warn, opts.bind_now, opts.verbose, debug)
    hit = memo.get(key)
    if hit is None or hit[0] is not inv or hit[1] is not rtld_inv:
        hit = memo[key] = (inv, rtld_inv, rtld_inv.replace(env=_traced_env(inv, opts, verify_out, debug)))
    return hit[2]


def _traced_env(inv: Invocation, opts: LddOptions, verify_out: int,
                debug: str | None) -> tuple[tuple[str, str], ...]:
    """ldd's add_env assignments on top of its own environment, in the order bash exports them: the
    command's temporary assignments first, then the shell's exported variables (bash_export_order).
    `debug`: -u's LD_DEBUG as eval made it, or None without -u."""
    adds = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes" if opts.warn else "",
            "LD_BIND_NOW": "yes" if opts.bind_now else "", "LD_LIBRARY_VERSION": str(verify_out),
            "LD_VERBOSE": "yes" if opts.verbose else ""}
    if debug is not None:
        adds["LD_DEBUG"] = debug
    return bash_export_order(tuple(adds.items()), inv.env)


_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619
_TEMPENV_BUCKETS, _VARIABLES_BUCKETS = 4, 1024  # bash 5.2 variables.c: TEMPENV_/VARIABLES_HASH_BUCKETS


def _bash_hash(name: str) -> int:
    """bash's hash_string (hashlib.c): 32-bit FNV-1."""
    h = _FNV_OFFSET
    for c in name.encode("utf-8", "surrogateescape"):
        h = (h * _FNV_PRIME) & 0xFFFFFFFF ^ c
    return h


def _table_order(pairs: list[tuple[str, str]], buckets: int) -> list[tuple[str, str]]:
    """A bash hash table flattened (hashlib.c): bucket by bucket, each chain from its head, where
    hash_insert puts the newest entry."""
    indexed = list(enumerate(pairs))
    indexed.sort(key=lambda ip: (_bash_hash(ip[1][0]) & (buckets - 1), -ip[0]))
    return [p for _, p in indexed]


def bash_export_order(temporary: tuple[tuple[str, str], ...],
                      exported: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The environment bash gives `NAME=VALUE... command` (variables.c, maybe_make_export_env): the
    temporary_env table, then the global variables (imported from bash's own environment in order, a
    name seen twice keeping its first place and last value); a name in both comes once, from the first."""
    values: dict[str, str] = {}
    for k, v in exported:
        values[k] = v
    temp = _table_order(list(dict(temporary).items()), _TEMPENV_BUCKETS)
    shadowed = {k for k, _ in temp}
    rest = _table_order([(k, v) for k, v in values.items() if k not in shadowed], _VARIABLES_BUCKETS)
    return tuple(temp + rest)
