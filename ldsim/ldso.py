"""Invoking the simulated loader: `ld.so [OPTIONS] PROGRAM` (the option loop of `dl_main`) and rendering a
simulated run into the bytes ld.so would write on stdout and stderr."""

from __future__ import annotations

import os

from ldsim import events as ev
from ldsim.config import (Invocation, LoaderConfig, Mode, apply_secure_debug, hwcaps_with_options,
                          read_environment)
from ldsim.credentials import secure_for_exec
from ldsim.elf import ElfError
from ldsim.linkmap import FileCache
from ldsim.loader import SIGSEGV, Process, exe_origin, has_strtab
from ldsim.record import Value
from ldsim.render import ld_debug
from ldsim.render.ldd import listing, version_information
from ldsim.world import World


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
    """ld.so's own options; error is a usage error message, already formatted."""

    __slots__ = _fields = ("list_mode", "verify", "help", "inhibit_cache", "library_path", "inhibit_rpath", "audit",
                           "preload", "argv0", "hwcaps_prepend", "hwcaps_mask", "program", "args", "error",
                           "version")

    def __init__(self, list_mode: bool = False, verify: bool = False, help: bool = False,
                 inhibit_cache: bool = False, library_path: str | None = None, inhibit_rpath: str | None = None,
                 audit: list[str] | None = None, preload: str | None = None, argv0: str | None = None,
                 hwcaps_prepend: str | None = None, hwcaps_mask: str | None = None, program: str | None = None,
                 args: list[str] | None = None, error: str | None = None, version: bool = False) -> None:
        self.list_mode = list_mode
        self.verify = verify
        self.help = help
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


def parse_ldso_args(argv: list[str], ld_so_name: str) -> LdsoArgs:
    """The option loop of dl_main: options only before PROGRAM, each a separate argument."""
    a = LdsoArgs()
    i = 0
    with_value = {"--library-path": "library_path", "--inhibit-rpath": "inhibit_rpath", "--preload": "preload",
                  "--argv0": "argv0", "--glibc-hwcaps-prepend": "hwcaps_prepend",
                  "--glibc-hwcaps-mask": "hwcaps_mask"}
    while i < len(argv):
        arg = argv[i]
        if arg == "--list":
            a.list_mode = True
        elif arg == "--verify":
            a.verify = True
        elif arg == "--inhibit-cache":
            a.inhibit_cache = True
        elif arg in with_value and i + 1 < len(argv):
            setattr(a, with_value[arg], argv[i + 1])
            i += 1
        elif arg == "--audit" and i + 1 < len(argv):
            a.audit.append(argv[i + 1])
            i += 1
        elif arg == "--help":
            a.help = True
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
    if i < len(argv):
        a.program, a.args = argv[i], argv[i + 1:]
    elif not a.help:
        a.error = f"{ld_so_name}: missing program name\nTry '{ld_so_name} --help' for more information.\n"
    return a


def config_for(inv: Invocation, a: LdsoArgs, secure: bool | None = None,
               files: FileCache | None = None) -> LoaderConfig:
    secure = inv.secure if secure is None else secure
    cfg = read_environment(inv.env, secure) if files is None else _environment(inv.env, secure, files)
    if a.list_mode and cfg.mode is not Mode.HELP:
        cfg.mode = Mode.LIST
        cfg.lazy = -1
    if a.verify:
        cfg.mode = Mode.VERIFY
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


def _env_prelude(world: World, inv: Invocation, cfg: LoaderConfig, run: Run) -> bool:
    """What ld.so does while reading its environment, before anything is loaded; True = it has exited."""
    for word in cfg.debug_words_unknown:
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
    if _env_prelude(world, inv, cfg, run):
        return run
    if a.version:
        run.write(1, version_text(inv))
        return run
    if a.error:
        run.write(2, a.error)
        run.status = 1
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
                  cfg: LoaderConfig | None = None) -> tuple[Run, Run | None]:
    """`execve(PROGRAM, ARGV)` in two parts: everything up to `transferring control`, and what the
    process prints when it exits normally (_dl_fini: its fini calls, the final statistics), which a
    process that forks prints once more for each child that exits.  The second is None when the process
    ended before running (or runs without this loader)."""
    run = Run()
    if cfg is None:
        cfg = read_environment(inv.env, secure_for_exec(world, argv[0], inv.credentials, inv.secure))
    if _env_prelude(world, inv, cfg, run):
        return run, None
    kind = _exec_kind(world, argv[0], files, inv)
    if kind == "rtld":  # exec of ld.so itself: it runs as a program and parses its own options
        return run_ldso(world, inv, argv[1:], files, argv[0]), None
    if kind == "static":
        run.write(2, f"ldsim: {argv[0]}: statically linked: the kernel runs it without the dynamic loader\n")
        return run, None
    proc = Process(world, inv, cfg, files, program=argv[0], direct=False, record=False)
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
    if main is not None and not proc.quiet:
        # the program mapped, _dl_help runs after setup_vdso_pointers (rtld.c:1836): its five lookups
        proc._vdso = LinkMap(name=inv.profile.vdso, names=[inv.profile.vdso], kind=Kind.VDSO, soname_added=True)
        _ = proc.binder
    for e in proc.result.events:
        if not isinstance(e, ev.Output):
            run.write(2, ld_debug.render(e, inv.pid))
    proc.result.events.clear()
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


def _secure_exit(world: World, inv: Invocation, cfg: LoaderConfig, run: Run) -> bool:
    """The end of process_envvars in secure mode: the debug mask survives only while /etc/suid-debug
    exists (inside the root), and a trace request (LD_TRACE_LOADED_OBJECTS) ends the process with
    status 5 and no output.  True when the process ended here."""
    if not cfg.secure:
        return False
    apply_secure_debug(cfg, _exists(world, inv.profile.suid_debug_file))
    # the mode as the environment left it: ld.so's own options (--list, --verify) are parsed later
    if any(k == "LD_TRACE_LOADED_OBJECTS" for k, _ in inv.env):
        run.status = 5
        return True
    return False


def _exists(world: World, path: str) -> bool:
    """access(path, F_OK)."""
    try:
        world.stat(path)
        return True
    except OSError:
        return False


def _exec_kind(world: World, program: str, files: FileCache, inv: Invocation) -> str:
    """What execve does with the file: hand it to its PT_INTERP, or run it directly."""
    try:
        elf = files.parse(world.open(program))
    except (OSError, ElfError):
        return "dynamic"  # the loader path reports the error
    if elf.interp is not None:
        return "dynamic"
    if elf.soname == inv.profile.rtld_soname:
        return "rtld"
    return "static"


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
    if proc.cfg.debug and proc.cfg.debug_output and not proc.cfg.secure:
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
    """LD_DEBUG_OUTPUT: FILE.PID, O_APPEND|O_CREAT|O_NOFOLLOW; stdout when that fails (process_envvars).
    FILE is the process's path: its directory is resolved inside the World (a root's own /tmp)."""
    parent, name = os.path.split(f"{base}.{pid}")
    try:
        host = os.path.join(world.host_path(parent or "."), name)
        fd = os.open(host, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        return os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")
    except OSError:
        return False
