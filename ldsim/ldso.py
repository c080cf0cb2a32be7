"""Invoking the simulated loader: `ld.so [OPTIONS] PROGRAM` (the option loop of `dl_main`) and rendering a
simulated run into the bytes ld.so would write on stdout and stderr."""

from __future__ import annotations

import os
import stat as stat_mod

from ldsim import events as ev
from ldsim.access import exec_view, may_write, real_access
from ldsim.config import (Invocation, LoaderConfig, Mode, apply_secure_debug, hwcaps_with_options,
                          read_environment)
from ldsim.credentials import secure_for_exec
from ldsim.elf import PT, ElfError
from ldsim.linkmap import FileCache
from ldsim.loader import (ELF_ET_DYN_BASE, RTLD_ADDR, SIGSEGV, VDSO_ADDR, Exit, Process, exe_origin,
                           has_strtab)
from ldsim.record import Value
from ldsim.render import ld_debug
from ldsim.render.ldd import listing, version_information
from ldsim.vm import map_segments_error
from ldsim.world import World

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


class Run(Value):
    """What the simulated process wrote, in order, and its exit status."""

    __slots__ = _fields = ("chunks", "status", "process")

    def __init__(self, chunks: list[tuple[int, str]] | None = None, status: int = 0,
                 process: Process | None = None) -> None:
        self.chunks = [] if chunks is None else chunks  # (1 stdout | 2 stderr, text)
        self.status = status
        self.process = process

    def write(self, stream: int, text: str) -> None:
        if text:
            self.chunks.append((stream, text))

    def text(self, stream: int) -> str:
        return "".join(t for s, t in self.chunks if s == stream)

    def merged(self) -> str:
        return "".join(t for _, t in self.chunks)


class LdsoArgs(Value):
    """ld.so's own options; error is a usage error message, already formatted.  `mode` is dl_main's
    state.mode as the options left it (None: the environment's); `no_relocation` = --list set dl_lazy
    to -1."""

    __slots__ = _fields = ("mode", "no_relocation", "inhibit_cache", "library_path", "inhibit_rpath", "audit",
                           "preload", "argv0", "hwcaps_prepend", "hwcaps_mask", "program", "args", "error",
                           "version")

    def __init__(self, mode: str | None = None, no_relocation: bool = False,
                 inhibit_cache: bool = False, library_path: str | None = None, inhibit_rpath: str | None = None,
                 audit: list[str] | None = None, preload: str | None = None, argv0: str | None = None,
                 hwcaps_prepend: str | None = None, hwcaps_mask: str | None = None, program: str | None = None,
                 args: list[str] | None = None, error: str | None = None, version: bool = False) -> None:
        self.mode = mode
        self.no_relocation = no_relocation
        self.inhibit_cache = inhibit_cache
        self.library_path = library_path
        self.inhibit_rpath = inhibit_rpath
        self.audit = [] if audit is None else audit
        self.preload = preload
        self.argv0 = argv0
        self.hwcaps_prepend = hwcaps_prepend
        self.hwcaps_mask = hwcaps_mask
        self.program = program
        self.args = [] if args is None else args
        self.error = error
        self.version = version

    @property
    def help(self) -> bool:
        return self.mode == Mode.HELP


_MODE_OPTIONS = {"--list-tunables": Mode.LIST_TUNABLES, "--list-diagnostics": Mode.LIST_DIAGNOSTICS,
                 "--help": Mode.HELP}


def parse_ldso_args(argv: list[str], ld_so_name: str) -> LdsoArgs:
    """The option loop of dl_main: options only before PROGRAM, each a separate argument.  One mode
    for all of them: the last of --list/--verify wins, unless --help came before (which later mode
    options then leave alone); --help, --list-tunables and --list-diagnostics always set it."""
    a = LdsoArgs()
    i = 0
    with_value = {"--library-path": "library_path", "--inhibit-rpath": "inhibit_rpath", "--preload": "preload",
                  "--argv0": "argv0", "--glibc-hwcaps-prepend": "hwcaps_prepend",
                  "--glibc-hwcaps-mask": "hwcaps_mask"}
    while i < len(argv):
        arg = argv[i]
        if arg in ("--list", "--verify"):
            if a.mode != Mode.HELP:
                a.mode = Mode.LIST if arg == "--list" else Mode.VERIFY
                a.no_relocation = a.no_relocation or arg == "--list"
        elif arg == "--inhibit-cache":
            a.inhibit_cache = True
        elif arg in with_value and i + 1 < len(argv):
            setattr(a, with_value[arg], argv[i + 1])
            i += 1
        elif arg == "--audit" and i + 1 < len(argv):
            a.audit.append(argv[i + 1])
            i += 1
        elif arg in _MODE_OPTIONS:
            a.mode = _MODE_OPTIONS[arg]
        elif arg == "--version":
            a.version = True
            return a
        elif arg.startswith("--"):
            a.error = (f"{ld_so_name}: unrecognized option '{arg}'\n"
                       f"Try '{ld_so_name} --help' for more information.\n")
            return a
        else:
            break
        i += 1
    if a.mode in (Mode.LIST_TUNABLES, Mode.LIST_DIAGNOSTICS):
        return a  # printed and exited right after the loop, PROGRAM or not
    if i < len(argv):
        a.program, a.args = argv[i], argv[i + 1:]
    elif not a.help:
        a.error = f"{ld_so_name}: missing program name\nTry '{ld_so_name} --help' for more information.\n"
    return a


def config_for(inv: Invocation, a: LdsoArgs, secure: bool | None = None,
               files: FileCache | None = None) -> LoaderConfig:
    secure = inv.secure if secure is None else secure
    cfg = read_environment(inv.env, secure) if files is None else _environment(inv.env, secure, files)
    if a.mode is Mode.LIST and cfg.mode is not Mode.TRACE:
        # dl_main_state_init (elf/rtld.c, 2.36) leaves state.mode_trace_program unset; only
        # LD_TRACE_LOADED_OBJECTS sets it.  Under --list alone it is what the stack held: on this build
        # nonzero once the glibc.cpu.hwcaps tunable's callback (sysdeps/x86/cpu-tunables.c) has run,
        # and the main program is listed first, nameless ("\t (0x...)").
        cfg.trace_program = cfg.tunables.cpu_hwcaps is not None
    if a.mode in (Mode.LIST, Mode.VERIFY):
        cfg.mode = a.mode
    if a.no_relocation:
        cfg.lazy = -1
    if a.inhibit_cache:
        cfg.inhibit_cache = True
    if a.library_path is not None:
        cfg.library_path = a.library_path
        cfg.library_path_source = "--library-path"
    if a.inhibit_rpath is not None:
        cfg.inhibit_rpath = a.inhibit_rpath
    cfg.preload_opt = a.preload
    cfg.audit = [*cfg.audit, *a.audit]  # --audit after the LD_AUDIT entries (audit_list_add_string)
    cfg.argv0 = a.argv0
    cfg.list_lookups = tuple(a.args)
    hwcaps_with_options(cfg, a.hwcaps_prepend, a.hwcaps_mask)
    return cfg


def _environment(env: tuple[tuple[str, str], ...], secure: bool, files: FileCache) -> LoaderConfig:
    """read_environment, once per environment of a run (ldd's runs of a batch share three): a copy each
    time, since ld.so's options then change it."""
    memo = files.memo.setdefault("environment", {})
    hit = memo.get((id(env), secure))
    if hit is None or hit[0] is not env:
        hit = memo[(id(env), secure)] = (env, read_environment(env, secure))  # holding env keeps its id
    return hit[1].copy()


def version_text(inv: Invocation) -> str:
    return (f"ld.so ({inv.profile.version}) stable release version 2.36.\n"
            "Copyright (C) 2022 Free Software Foundation, Inc.\n"
            "This is free software; see the source for copying conditions.\n"
            "There is NO warranty; not even for MERCHANTABILITY or FITNESS FOR A\n"
            "PARTICULAR PURPOSE.\n")


def _env_prelude(world: World, inv: Invocation, cfg: LoaderConfig, run: Run,
                 auxv: Callable[[], str] | None = None) -> bool:
    """What ld.so does while reading its environment, before anything is loaded; True = it has exited.
    `auxv`: what LD_SHOW_AUXV prints for this process, printed where the variable came in the environment
    (among the LD_DEBUG warnings)."""
    shown = None
    for i, word in enumerate([*cfg.debug_words_unknown, None]):
        for _ in range(cfg.show_auxv.count(i)):
            if shown is None:
                if auxv is None:
                    raise NotImplementedError("LD_SHOW_AUXV: the auxiliary vector of this process is not known")
                shown = auxv()
            run.write(1, shown)
        if word is not None:
            run.write(2, f"warning: debug option `{word}' unknown; try LD_DEBUG=help\n")
    if cfg.debug_help:
        run.write(1, ld_debug.help_text())
        return True
    return _secure_exit(world, inv, cfg, run)


def run_ldso(world: World, inv: Invocation, argv: list[str], files: FileCache, ld_so_name: str) -> Run:
    """Simulate `LD_SO ARGV...` with the invocation's environment."""
    run = Run()
    a = parse_ldso_args(argv, ld_so_name)
    # the kernel execs ld.so itself: its file decides AT_SECURE
    cfg = config_for(inv, a, secure_for_exec(world, ld_so_name, inv.credentials, inv.secure), files)
    # the kernel executes ld.so's own file: the caller's ids, or its owner's if it has set-ID bits
    world = exec_view(world, ld_so_name, inv.credentials)
    if _env_prelude(world, inv, cfg, run, lambda: _auxv_text(world, inv, files, ld_so_name, 0, ld_so_name, cfg)):
        return run
    if cfg.debug_to_file:  # process_envvars opened it: there even when ld.so prints nothing more
        debug_file = _open_debug_output(world, cfg.debug_output, inv.pid)
        if debug_file:
            debug_file.close()
    if a.version:
        run.write(1, version_text(inv))
        return run
    if a.error:
        run.write(2, a.error)
        run.status = 1
        return run
    if a.mode in (Mode.LIST_TUNABLES, Mode.LIST_DIAGNOSTICS):
        run.write(2, f"ldsim: ld.so --{a.mode} is not simulated\n")
        run.status = 3
        return run
    if a.help:
        return _help(world, inv, cfg, files, a, ld_so_name, run)
    assert a.program is not None
    proc = Process(world, inv, cfg, files, program=a.program, direct=True, rtld_path=ld_so_name, record=False)
    return render_process(proc, run)


def run_exec(world: World, inv: Invocation, argv: list[str], files: FileCache) -> Run:
    """Simulate `execve(PROGRAM, ARGV)`: the kernel maps PT_INTERP, which then loads the rest."""
    run, exit_part = exec_in_parts(world, inv, argv, files)
    if exit_part is not None:
        run.chunks.extend(exit_part.chunks)
    return run


def exec_in_parts(world: World, inv: Invocation, argv: list[str], files: FileCache,
                  cfg: LoaderConfig | None = None, execfn: str | None = None,
                  depth: int = 0) -> tuple[Run, Run | None]:
    """`execve(PROGRAM, ARGV)` in two parts: everything up to `transferring control`, and what the
    process prints when it exits normally (_dl_fini: its fini calls, the final statistics), which a
    process that forks prints once more for each child that exits.  The second is None when the process
    ended before running (or runs without this loader).  `execfn`: the name execve was given, when not
    argv[0] (a script run through its #! interpreter argv[0]).  A PROGRAM starting with `#!` is run by
    the interpreter its first line names (binfmt_script), with `cfg` None: the interpreter's own."""
    interpreter = script_interpreter(world, argv[0]) if cfg is None and depth < _MAX_SCRIPT_DEPTH else None
    if interpreter is not None:  # the kernel execs the #! line's interpreter (its own loader prints)
        return exec_in_parts(world, inv, [*interpreter, *argv], files, None, execfn or argv[0], depth + 1)
    run = Run()
    if cfg is None:
        cfg = read_environment(inv.env, secure_for_exec(world, argv[0], inv.credentials, inv.secure))
    kind = _exec_kind(world, argv[0], files, inv)
    if kind == "rtld":  # exec of ld.so itself: it runs as a program and parses its own options
        return run_ldso(world, inv, argv[1:], files, argv[0]), None
    # static or faulting: no ld.so reads the environment (no LD_DEBUG warning, no LD_SHOW_AUXV)
    if kind == "static":
        run.write(2, f"ldsim: {argv[0]}: statically linked: the kernel runs it without the dynamic loader\n")
        return run, None
    if kind == "fault":  # the kernel jumps to an entry point outside any executable segment
        run.status = -SIGSEGV
        return run, None
    auxv = lambda: _auxv_text(world, inv, files, argv[0], RTLD_ADDR, execfn or argv[0], cfg)  # noqa: E731
    if _env_prelude(world, inv, cfg, run, auxv):
        return run, None
    proc = Process(exec_view(world, argv[0], inv.credentials), inv, cfg, files, program=argv[0], direct=False,
                   record=False)
    result = proc.start()
    run.process = proc
    run.status = result.status if result.status is not None else 0
    events = result.events
    cut = result.running_from
    render_events(proc, events if cut is None else events[:cut], run)
    if cut is None:
        return run, None
    exit_part = Run()
    render_events(proc, events[cut:], exit_part)
    return run, exit_part


_BINPRM_BUF_SIZE = 256  # what execve reads of the file before choosing a binary format
_MAX_SCRIPT_DEPTH = 4  # an interpreter may itself be a script, this many times (exec_binprm: ELOOP after)


def script_interpreter(world: World, path: str) -> list[str] | None:
    """binfmt_script's load_script (fs/binfmt_script.c): for a file starting with `#!`, the interpreter
    its first line names and that line's one optional argument (the rest of the line, spaces included);
    None when the file is not such a script (the kernel then tries the other formats: ENOEXEC)."""
    try:
        buf = world.read(path, _BINPRM_BUF_SIZE)
    except OSError:
        return None
    if not buf.startswith(b"#!"):
        return None
    nl = buf.find(b"\n")
    if nl >= 0:
        line = buf[2:nl]
    else:  # a line longer than the buffer: usable only when the name ends within it
        line = buf[2:_BINPRM_BUF_SIZE - 1]
        name = line.lstrip(b" \t")
        if not name or not any(c in b" \t\0" for c in name):
            return None
    rest = line.rstrip(b" \t").lstrip(b" \t")
    if not rest:
        return None
    cut = next((i for i, c in enumerate(rest) if c in b" \t\0"), None)
    if cut is None:
        return [_text(rest)]
    name, arg = rest[:cut], b"" if rest[cut] == 0 else rest[cut:].lstrip(b" \t").split(b"\0", 1)[0]
    return [_text(name), _text(arg)] if arg else [_text(name)]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _auxv_text(world: World, inv: Invocation, files: FileCache, executed: str, interp_base: int, execfn: str,
               cfg: LoaderConfig) -> str:
    """LD_SHOW_AUXV's lines for `execve(execfn)` that mapped `executed` (the program, or ld.so run as one).
    Only a process of the kernel's own ABI is known: the vector ldsim itself got is the model."""
    from ldsim.auxv import exec_auxv
    from ldsim.render.auxv import show_auxv
    kernel = inv.kernel
    abi = (inv.profile.ei_class, inv.profile.e_machine)
    compat = abi == _I386 and kernel is not None and kernel.abi == _X86_64  # an i386 process, compat vector
    if kernel is None or (abi != kernel.abi and not compat):
        raise NotImplementedError("LD_SHOW_AUXV: the kernel's auxiliary vector is known only for this "
                                  "machine's own processes (not a foreign root or profile)")
    try:
        elf = files.parse(world.open(executed))
    except (OSError, ElfError) as e:
        raise NotImplementedError(f"LD_SHOW_AUXV: {executed}: {e}") from None
    creds = inv.credentials
    ids = kernel.ids if creds is None else (creds.uid, creds.uid, creds.gid, creds.gid)  # not secure: no change
    return show_auxv(exec_auxv(kernel, elf, interp_base=interp_base, vdso=VDSO_ADDR, pie_base=ELF_ET_DYN_BASE,
                               ids=ids, secure=cfg.secure, execfn=execfn), hwcap_names=compat)


_I386, _X86_64 = (1, 3), (2, 62)  # (ELF class, machine)


def _help(world: World, inv: Invocation, cfg: LoaderConfig, files: FileCache, a: LdsoArgs, ld_so_name: str,
          run: Run) -> Run:
    """--help (dl_main, rtld_mode_help): PROGRAM, if given, is mapped (a failure only shortens the text),
    _dl_init_paths runs, then _dl_help prints the paths and hwcaps of this loader and CPU; exit 0."""
    from ldsim.linkmap import Kind, LinkMap
    from ldsim.search import LoadError
    from ldsim.usage import help_text
    proc = Process(world, inv, cfg, files, program=a.program or "", direct=True, rtld_path=ld_so_name)
    main = None
    if a.program is not None:
        try:
            main = proc.map_object(None, a.program, exe=True, paths_ready=False)
            main.names, main.name, main.file_id = [""], "", None
        except LoadError:
            main = None
    if main is not None:
        try:
            proc.start_args_adjust()
        except Exit as e:
            _render_debug(proc, run, messages=True)
            run.status = e.status
            return run
    if main is not None and not proc.quiet:
        # the program mapped, _dl_help runs after setup_vdso_pointers (rtld.c:1836): its five lookups
        proc._vdso = LinkMap(name=inv.profile.vdso, names=[inv.profile.vdso], kind=Kind.VDSO, soname_added=True)
        _ = proc.binder
    _render_debug(proc, run)
    if main is not None and not has_strtab(main):
        run.status = -SIGSEGV
        return run
    lists: list[list] = [[], [], []]
    if main is not None and main.elf is not None:
        proc.main = main
        if main.elf.runpath is not None:
            lists[2] = proc.runpath_of(main) or []
        else:
            lists[0] = proc.rpath_of(main) or []
    if main is not None:
        dst_owner = main
    else:  # _dl_init_paths: no main map (--help alone), ld.so's own map stands in; its $ORIGIN is
        # _dl_get_origin's, the directory of /proc/self/exe: the loader's own file
        origin = exe_origin(world, ld_so_name, cfg.origin_path)
        dst_owner = LinkMap(name="", names=[], kind=Kind.MAIN, origin=origin)
    proc.searcher.init_env_paths(proc.dst_values(dst_owner))
    lists[1] = proc.searcher.env or []
    run.write(1, help_text(ld_so_name, inv.profile, proc.cpu, cfg.hwcaps, [*lists, proc.searcher.system]))
    return run


def _render_debug(proc: Process, run: Run, messages: bool = False) -> None:
    """--help's events so far: the debug lines (to stderr or LD_DEBUG_OUTPUT), and with `messages`
    what it wrote before ending."""
    render_events(proc, [e for e in proc.result.events if messages or not isinstance(e, ev.Output)], run)
    proc.result.events.clear()


def _secure_exit(world: World, inv: Invocation, cfg: LoaderConfig, run: Run) -> bool:
    """The end of process_envvars in secure mode: the debug mask survives only while /etc/suid-debug
    exists (inside the root), and a trace request (LD_TRACE_LOADED_OBJECTS) ends the process with
    status 5 and no output.  True when the process ended here."""
    if not cfg.secure:
        return False
    apply_secure_debug(cfg, real_access(world, inv.credentials, inv.profile.suid_debug_file))
    # the mode as the environment left it: ld.so's own options (--list, --verify) are parsed later
    if any(k == "LD_TRACE_LOADED_OBJECTS" for k, _ in inv.env):
        run.status = 5
        return True
    return False


def _exec_kind(world: World, program: str, files: FileCache, inv: Invocation) -> str:
    """What execve does with the file: hand it to its PT_INTERP, run ld.so itself, or run it directly
    ("static", or "fault" when its entry point is not in an executable segment).  "fault" too when the
    kernel cannot map its segments (load_elf_binary fails past the point of no return: SIGSEGV); the
    kernel's mmap and brk requests are judged as ld.so's would be (ldsim.vm)."""
    try:
        if not stat_mod.S_ISREG(world.stat(program).st_mode):
            return "dynamic"  # execve refuses it (EACCES): the loader path reports it
        elf = files.parse(world.open(program))
    except (OSError, ElfError):
        return "dynamic"  # the loader path reports the error
    loads = tuple(s for s in elf.segments if s.type == PT.LOAD)
    if loads and map_segments_error(loads, 0, elf.e_type != 3, elf.ei_class, inv.memory) is not None:
        return "fault"
    if elf.interp is not None:
        return _interp_kind(world, elf.interp, files)
    if elf.soname == inv.profile.rtld_soname:
        return "rtld"
    from ldsim.execution import entry_executable
    return "static" if entry_executable(elf) else "fault"  # a library's e_entry 0: its ELF header


def _interp_kind(world: World, interp: str, files: FileCache) -> str:
    """The kernel starts the program at its PT_INTERP's entry point (load_elf_binary): an interpreter
    whose entry lies in no executable segment (a library named as one: e_entry 0) faults at once."""
    from ldsim.execution import entry_executable
    try:
        elf = files.parse(world.open(interp))
    except (OSError, ElfError):
        return "dynamic"  # the loader path reports the error
    return "dynamic" if entry_executable(elf) else "fault"


def render_process(proc: Process, run: Run) -> Run:
    """Turn a simulated startup into output: debug lines, messages, the listing, at their places."""
    result = proc.start()
    run.process = proc
    render_events(proc, result.events, run)
    run.status = result.status if result.status is not None else 0
    return run


def render_events(proc: Process, events: list, run: Run) -> None:
    """Some of a process's events as its output (LD_DEBUG_OUTPUT: the debug lines go to FILE.PID)."""
    pid = proc.inv.pid
    debug_file = None
    if proc.cfg.debug_to_file:
        debug_file = _open_debug_output(proc.world, proc.cfg.debug_output, pid)
    debug_stream = 2 if debug_file is None else 1 if debug_file is False else 3
    for e in events:
        if isinstance(e, ev.Output):
            run.write(e.stream, e.text)
        elif isinstance(e, ev.Listing):
            for line in listing(proc):
                run.write(1, line)
        elif isinstance(e, ev.VersionInformation):
            for line in version_information(proc):
                run.write(1, line)
        else:
            text = ld_debug.render(e, pid)
            if debug_stream == 3:
                debug_file.write(text)
            else:
                run.write(debug_stream, text)
    if debug_file not in (None, False):
        debug_file.close()


def _open_debug_output(world: World, base: str, pid: int):
    """LD_DEBUG_OUTPUT: FILE.PID, O_APPEND|O_CREAT|O_NOFOLLOW; stdout when that fails (process_envvars),
    as it does when the simulated process may not write there.  FILE is the process's path: its directory
    is resolved inside the World (a root's own /tmp)."""
    if not may_write(world, f"{base}.{pid}"):
        return False
    parent, name = os.path.split(f"{base}.{pid}")
    try:
        host = os.path.join(world.host_path(parent or "."), name)
        fd = os.open(host, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        return os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")
    except OSError:
        return False
