"""The end of `dl_main` after the version checks (elf/rtld.c): the trace-mode listing, the `unused`
check, the LD_WARN relocation pass, or — running for real — the scope dump, relocation of every object,
`_dl_init`, libc's start lines and `_dl_fini` at exit.  Pure: events on the process, an `Exit` at the end.
"""

from __future__ import annotations

import struct
TYPE_CHECKING = False

from ldsim import events as ev
from ldsim.config import Debug, Mode
from ldsim.elf import DF1, DT, PT, ElfFile
from ldsim.initfini import fini_order, startup_initfini
from ldsim.linkmap import Kind, LinkMap
from ldsim.tls import init_image_too_large

if TYPE_CHECKING:
    from ldsim.loader import Process
    from ldsim.relocate import Binder

LIBC_SO = "libc.so.6"
MALLOC_SYMBOLS = ("calloc", "free", "malloc", "realloc")
# Calls libc 2.36 makes through its own PLT before main, when its PLT is bound lazily: from
# __libc_early_init (tunables), and from __libc_start_main between "initialize program" and
# "transferring control" (the audit preinit checkpoint).
# (LD_BIND_NOT leaves the GOT alone: then every call looks up again, hence the repetitions.)
LIBC_EARLY_PLT_CALLS = ("__tunable_get_val",) * 7
LIBC_START_PLT_CALLS = ("_dl_audit_preinit",)


def effective_lazy(proc: Process) -> int:
    """GLRO(dl_lazy): LD_BIND_NOW and LD_DEBUG=unused in environment order (read_environment), then
    --list sets -1."""
    return proc.cfg.lazy


def libc_map(proc: Process) -> LinkMap | None:
    """GL(dl_ns)[0].libc_map: the object whose soname is libc.so.6."""
    return next((m for m in proc.objects if not m.faked and m.soname == LIBC_SO), None)


def _sort_algorithm(proc: Process) -> int:
    """_dl_sort_maps_init: glibc.rtld.dynamic_sort when set (1 = the original algorithm), else DFS."""
    return proc.cfg.tunables.dynamic_sort or 2


def finish(proc: Process) -> None:
    """Everything after `_dl_check_all_versions`; always ends with `Exit`."""
    from ldsim.loader import Exit
    if proc.cfg.mode is not Mode.NORMAL and not _trace_binds(proc):
        # a listing without symbol lookups: no init order to work out, ldsim.relocate stays unloaded
        proc.result.events.append(ev.Listing())
        if proc.cfg.mode is Mode.LIST and proc.cfg.list_lookups:
            _list_lookups(proc)
        _version_information(proc)
        raise Exit(0)
    initfini = startup_initfini(proc.main, proc.result.searchlist, libc_map(proc), _sort_algorithm(proc))
    proc.result.initfini = initfini
    from ldsim.relocate import SymbolLookupError
    binder = proc.binder
    try:
        if proc.cfg.mode is not Mode.NORMAL:
            _trace_tail(proc, binder, initfini)
            raise Exit(0)
        _run(proc, binder, initfini)
    except SymbolLookupError as e:
        proc.out(f"{proc.argv0}: symbol lookup error: {e.objname}: {e.message}\n", 2)
        raise Exit(127) from None
    except (struct.error, IndexError, ValueError, UnicodeError):
        # ld.so would read garbage or crash; ldsim says which file it could not follow
        where = proc.dso_filename(binder.current) if binder.current is not None else proc.argv0
        proc.out(f"ldsim: {where}: malformed dynamic symbol, hash or relocation table\n", 2)
        raise Exit(127) from None
    raise Exit(0)


def _list_lookups(proc: Process) -> None:
    """`ld.so --list PROGRAM NAME...` (dl_main, rtld_mode_list only): after the listing each NAME is
    looked up from the main map in its scope (_dl_lookup_symbol_x, PLT class, no version) and printed
    with its st_value and its object's l_addr, both in decimal behind "0x" (`%0*Zd`); a NAME found
    nowhere is a fatal symbol lookup error (exit 127)."""
    from ldsim.loader import Exit
    from ldsim.relocate import SymbolLookupError, TypeClass
    binder = proc.binder
    scopes = binder.scopes_of(proc.main)
    for name in proc.cfg.list_lookups:
        try:
            found = binder.lookup(name, proc.main, None, scopes, None, TypeClass.PLT)
        except SymbolLookupError as e:
            proc.out(f"{proc.argv0}: symbol lookup error: {e.objname}: {e.message}\n", 2)
            raise Exit(127) from None
        if found is not None:
            m, sym = found
            proc.out(f"{name} found at 0x{sym.value:016d} in object at 0x{m.addr:016d}\n")


def _trace_binds(proc: Process) -> bool:
    """Does the trace-mode tail look symbols up (`unused`, or LD_WARN's relocation pass)?"""
    cfg = proc.cfg
    return bool(cfg.debug & Debug.UNUSED) or (cfg.mode is Mode.TRACE and effective_lazy(proc) >= 0 and cfg.warn)


def _trace_tail(proc: Process, binder: Binder, initfini: list[LinkMap]) -> None:
    from ldsim.loader import SIGSEGV, Exit
    lazy = effective_lazy(proc)

    def print_unresolved(objname: str, message: str) -> None:
        proc.out(f"{message}\t({objname or proc.argv0})\n", 2)

    binder.receiver = print_unresolved
    if proc.cfg.debug & Debug.UNUSED:
        binder.relocate(proc.main, bool(lazy))
        unused, ran_off = _unused(proc)
        if unused:
            proc.out("Unused direct dependencies:\n" + "".join(f"\t{n}\n" for n in unused))
        if ran_off:  # l_next was NULL: reading l->l_used faults
            raise Exit(-SIGSEGV)
        raise Exit(1 if unused else 0)
    proc.result.events.append(ev.Listing())
    if proc.cfg.mode is Mode.TRACE and lazy >= 0 and proc.cfg.warn:
        for m in reversed(initfini):
            if m is not proc.rtld and not m.faked:
                binder.relocate(m, bool(lazy))
    _version_information(proc)


def _version_information(proc: Process) -> None:
    """state.version_info (LD_VERBOSE) is printed in trace mode only: `--list` never shows it."""
    if proc.cfg.mode is Mode.TRACE and proc.cfg.verbose:
        proc.result.events.append(ev.VersionInformation())


def _unused(proc: Process) -> tuple[list[str], bool]:
    """rtld.c: walk main's DT_NEEDED entries alongside l_next (vDSO skipped): the unused ones' l_name,
    and whether the walk ran past the end of the list, which the real loader does not check for: a
    DT_NEEDED repeated maps no second object, and the entry that finds l_next NULL dereferences it."""
    out = []
    objs = proc.objects
    i = 0
    for _ in proc.main.elf.needed:
        i += 1
        if i < len(objs) and objs[i].kind is Kind.VDSO:
            i += 1
        if i >= len(objs):
            return out, True
        if not objs[i].used:
            out.append(objs[i].name)
    return out, False


def _run(proc: Process, binder: Binder, initfini: list[LinkMap]) -> None:
    """The real start: scopes, relocation (dependencies first, ld.so last), init, libc, fini."""
    if proc.cfg.debug & Debug.SCOPES:
        _show_scopes(proc, binder)
    _rtld_main_check(proc, initfini)
    profiling = proc.cfg.profile is not None  # consider_profiling: dl_lazy |= 1, DT_BIND_NOW ignored
    lazy = bool(effective_lazy(proc)) or profiling
    binder.profiling = profiling
    binder.run_ifuncs = True  # no __RTLD_NOIFUNC: resolvers run, elf_machine_rela checks who defines them
    relocated = [m for m in reversed(initfini) if m is not proc.rtld]
    for m in relocated:
        binder.relocate(m, lazy)
    if profiling:
        from ldsim.profiling import start_profile
        start_profile(proc, relocated)
    if init_image_too_large([m.elf for m in proc.objects]):  # _dl_allocate_tls_init, before ld.so's turn
        proc.out("Inconsistency detected by ld.so: ../elf/dl-tls.c: 622: _dl_allocate_tls_init: Assertion "
                 "`map->l_tls_blocksize >= map->l_tls_initimage_size' failed!\n", 2)
        from ldsim.loader import Exit
        raise Exit(127)
    glob = proc.result.searchlist
    if proc.rtld is not None and proc.rtld in glob:  # rtld_multiple_ref
        from ldsim.symbols import Version
        # symbol_version_string (libc, GLIBC_2_0): libc's first version on this machine
        malloc_version = Version(*binder.machine.malloc_version)
        for name in MALLOC_SYMBOLS:  # __rtld_malloc_init_real (elf/dl-minimal.c)
            binder.lookup(name, proc.main, None, [glob], malloc_version, 0)
        binder.relocate(proc.rtld, False, scopes=[glob])
    libc = libc_map(proc)
    if libc is not None and not _has_libc_early_init(binder, libc):
        proc.out("Inconsistency detected by ld.so: dl-call-libc-early-init.c: 37: _dl_call_libc_early_init: "
                 "Assertion `sym != NULL' failed!\n", 2)
        from ldsim.loader import Exit
        raise Exit(127)
    libc_lazy = libc is not None and not binder.binds_now(libc, lazy)
    for name in _plt_calls(proc, LIBC_EARLY_PLT_CALLS) if libc_lazy else ():
        binder.lazy_call(libc, name)
    if proc.cfg.debug & Debug.STATISTICS:  # _dl_start_final: print_statistics
        proc.emit(ev.Statistics(binder.counters.relocations, binder.counters.cache, _relative_count(proc)))
    called = _init(proc, initfini, binder)
    if libc is not None and proc.main is libc:
        # libc run as the program: its entry point, __libc_main (csu/version.c), writes the banner and
        # calls _exit (0); __libc_start_main, and so the fini calls, never run
        proc.out(_libc_banner(libc), 1)
        return
    if proc.main.elf is not None and not entry_executable(proc.main.elf):
        # _dl_start_user jumps to the entry point (ld.so LIB)
        from ldsim.loader import SIGSEGV, Exit
        raise Exit(-SIGSEGV)
    if not _starts_through_libc(proc, binder, libc):
        return  # no __libc_start_main: nothing registers _dl_fini; the program leaves by its own means
    main = proc.main
    if main is not None and not binder.binds_now(main, lazy):
        # i386's crt1.o calls __libc_start_main through the PLT (x86-64's through the GOT): _dl_fixup
        binder.lazy_call(main, "__libc_start_main")
    proc.emit(ev.ProgramStart(proc.argv0, False))
    if binder.calls_fault(main, True):  # libc's call_init: the program's DT_INIT and init array
        from ldsim.loader import SIGSEGV, Exit
        raise Exit(-SIGSEGV)
    for name in _plt_calls(proc, LIBC_START_PLT_CALLS) if libc_lazy else ():
        binder.lazy_call(libc, name)
    proc.emit(ev.ProgramStart(proc.argv0, True))
    proc.result.running_from = len(proc.result.events)
    for m in fini_order(proc.objects, proc.main, initfini, proc.direct, _sort_algorithm(proc)):
        if id(m) in called:
            proc.emit(ev.CallingFini(m.name))
            if binder.calls_fault(m, False):  # _dl_fini: the fini array backwards, then DT_FINI
                from ldsim.loader import SIGSEGV, Exit
                raise Exit(-SIGSEGV)
    if proc.cfg.debug & Debug.STATISTICS:
        proc.emit(ev.Statistics(binder.counters.relocations, binder.counters.cache, final=True))


PF_X = 1


def entry_executable(elf: ElfFile) -> bool:
    """Whether the entry point lies in a PT_LOAD segment with PF_X: jumping anywhere else faults (a
    library's e_entry 0 is its ELF header, mapped read-only since ld's -z separate-code)."""
    entry = elf.e_entry
    return any(s.type == PT.LOAD and s.flags & PF_X and s.vaddr <= entry < s.vaddr + s.memsz
               for s in elf.segments)


def _libc_banner(libc: LinkMap) -> str:
    """__libc_print_version's text: version.c's `banner`, read from the file (it names the build, the
    compiler and the bug-report address); empty when the file has none."""
    data = libc.elf.data if libc.elf is not None else b""
    start = data.find(b"GNU C Library ") if data is not None else -1
    if start < 0:
        return ""
    end = data.find(b"\0", start)
    return bytes(data[start:end if end >= 0 else len(data)]).decode("utf-8", "surrogateescape")


def _has_libc_early_init(binder: Binder, libc: LinkMap) -> bool:
    """_dl_call_libc_early_init: _dl_lookup_direct finds __libc_early_init@GLIBC_PRIVATE in the first
    object mapped with the soname libc.so.6 (elf/dl-lookup-direct.c check_match), else asserts."""
    from ldsim.relocate import lookup_direct
    tab = binder.table(libc)
    return tab is not None and lookup_direct(tab, "__libc_early_init", "GLIBC_PRIVATE", 0x0963CF85) is not None


def _starts_through_libc(proc: Process, binder: Binder, libc: LinkMap | None) -> bool:
    """Whether the entry point calls __libc_start_main, which prints "initialize program" and registers
    _dl_fini: crt1.o's _start references it (GLOB_DAT, or JUMP_SLOT without PIE).  A program with its
    own _start does not, whether it needs libc.so.6 itself or a library pulls libc in."""
    main = proc.main
    if libc is None:
        return False
    if main is None or main.elf is None:
        return True
    return binder.references(main, "__libc_start_main")


def _plt_calls(proc: Process, calls: tuple[str, ...]) -> list[str]:
    """The calls that reach _dl_fixup: the first per PLT slot, or every one under LD_BIND_NOT."""
    if proc.cfg.bind_not:
        return list(calls)
    return list(dict.fromkeys(calls))


def _relative_count(proc: Process) -> int:
    """print_statistics: DT_RELCOUNT and DT_RELACOUNT of every global-scope object with a non-zero load
    bias (both are added on every architecture, though x86-64's ld writes only the second)."""
    return sum((m.elf.dyn(DT.RELCOUNT) or 0) + (m.elf.dyn(DT.RELACOUNT) or 0)
               for m in proc.result.searchlist if m.elf is not None and m.addr)


def _rtld_main_check(proc: Process, initfini: list[LinkMap]) -> None:
    """_rtld_main_check: the x86 ISA level of every startup object against the CPU (ldsim.isacheck);
    _dl_fatal_printf and exit 127 on the first that needs more."""
    from ldsim.isacheck import isa_level_failure
    from ldsim.loader import Exit
    if proc.profile.arch not in ("x86_64", "i386", "x86"):
        return
    message = isa_level_failure(initfini, proc.inv.cpu.isa, proc.rtld, proc.argv0)
    if message is not None:
        proc.out(message, 2)
        raise Exit(127)


def _init(proc: Process, initfini: list[LinkMap], binder: Binder) -> set[int]:
    """_dl_init: DF_1_INITFIRST object, main's preinit array, then l_initfini backwards.  A function
    ldsim sees cannot be executed ends the process there (SIGSEGV); what the others do is not seen."""
    from ldsim.loader import SIGSEGV, Exit
    called: set[int] = set()

    def call_init(m: LinkMap) -> None:
        if id(m) in called:
            return
        called.add(id(m))
        if m.name == "" and m.kind is Kind.MAIN:
            return
        proc.emit(ev.CallingInit(proc.dso_filename(m)))
        if binder.calls_fault(m, True):
            raise Exit(-SIGSEGV)

    # GL(dl_initfirst): the last object mapped with DF_1_INITFIRST
    first = next((m for m in reversed(proc.objects) if m.elf is not None and not m.faked
                  and m.elf.flags_1 & DF1.INITFIRST), None)
    if first is not None:
        call_init(first)
    main = proc.main
    # _dl_init: DT_PREINIT_ARRAYSZ / sizeof (ElfW(Addr)) entries
    if main.elf.dyn(DT.PREINIT_ARRAY) is not None and \
            (main.elf.dyn(DT.PREINIT_ARRAYSZ) or 0) >= (8 if main.elf.is_64 else 4):
        proc.emit(ev.CallingInit(proc.dso_filename(main), preinit=True))
        if binder.preinit_faults(main):
            raise Exit(-SIGSEGV)
    for m in reversed(initfini):
        call_init(m)
    return called


def _show_scopes(proc: Process, binder: Binder) -> None:
    """_dl_show_scope for each object of the l_next chain."""
    def names(scope: list[LinkMap]) -> tuple[str, ...]:
        return tuple(m.name or proc.argv0 for m in scope)

    first = True
    for m in proc.objects:
        if m.kind is Kind.RTLD:
            scopes = None
        elif m.kind is Kind.VDSO:
            scopes = (names(proc.result.searchlist), (m.name,))
        else:
            scopes = tuple(names(s) for s in binder.scopes_of(m))
        proc.emit(ev.ObjectScopes(proc.dso_filename(m), scopes, first))
        first = False
