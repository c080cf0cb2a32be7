"""Symbol lookup and x86-64 and i386 relocation processing at startup.

Mirrors `_dl_lookup_symbol_x`/`do_lookup_x`/`check_match` (elf/dl-lookup.c), `_dl_relocate_object`
(elf/dl-reloc.c), `_ELF_DYNAMIC_DO_RELOC` (elf/dynamic-link.h), `elf_dynamic_do_Rel` (elf/do-rel.h) and
`elf_machine_rel(a)`/`elf_machine_lazy_rel(a)` (sysdeps/x86_64/dl-machine.h, sysdeps/i386/dl-machine.h:
one `Machine` each).  Pure: events and results only.
"""

from __future__ import annotations

import errno
import struct
TYPE_CHECKING = False

from ldsim import events as ev
from ldsim.config import Debug
from ldsim.elf import DF, DF1, DT, PT, GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS, EMachine, gnu_property_1_needed
from ldsim.linkmap import Kind, LinkMap
from ldsim.loader import SIGFPE, SIGSEGV, Exit, version_index_high  # ldsim.loader imports this module lazily: no cycle
from ldsim.record import Frozen, NamedTuple, Record, Value
from ldsim.search import LoadError
from ldsim.symbols import ALLOWED_STT, SHN_ABS, SHN_UNDEF, STB, STT, STV, Sym, SymbolTable, SymbolTables, \
    Version, elf_hash, gnu_hash, unpack_sym32
from ldsim.vm import call_faults, page_protections, read_faults, write_faults

if TYPE_CHECKING:
    from typing import Callable, Iterator

    from ldsim.elf import ElfFile
    from ldsim.loader import Process


class R:
    """R_X86_64_* relocation types the loader treats specially."""

    NONE = 0
    R64 = 1
    PC32 = 2
    COPY = 5
    GLOB_DAT = 6
    JUMP_SLOT = 7
    RELATIVE = 8
    R32 = 10
    DTPMOD64 = 16
    DTPOFF64 = 17
    TPOFF64 = 18
    TLSDESC = 36
    IRELATIVE = 37
    RELATIVE64 = 38


class R386:
    """R_386_* relocation types the loader treats specially."""

    NONE = 0
    R32 = 1
    PC32 = 2
    COPY = 5
    GLOB_DAT = 6
    JMP_SLOT = 7
    RELATIVE = 8
    TLS_TPOFF = 14
    TLS_DTPMOD32 = 35
    TLS_DTPOFF32 = 36
    TLS_TPOFF32 = 37
    SIZE32 = 38
    TLS_DESC = 41
    IRELATIVE = 42


class RA64:
    """R_AARCH64_* relocation types the loader treats specially (LP64)."""

    NONE = 0
    ABS64 = 257
    ABS32 = 258
    COPY = 1024
    GLOB_DAT = 1025
    JUMP_SLOT = 1026
    RELATIVE = 1027
    TLS_DTPMOD = 1028
    TLS_DTPREL = 1029
    TLS_TPREL = 1030
    TLSDESC = 1031
    IRELATIVE = 1032


class TypeClass:
    """ELF_RTYPE_CLASS_*.  Plain ints, not an IntFlag: tested on every lookup, and IntFlag's `&` runs
    Python code each time."""

    NONE = 0
    PLT = 1
    COPY = 2


class RelocPass(NamedTuple):
    """One `ELF_DYNAMIC_DO_REL`/`_RELA` of `ELF_DYNAMIC_RELOCATE` (elf/dynamic-link.h): its dynamic tags,
    entry format, whether it takes DT_JMPREL only when DT_PLTREL names its own tag (`_ELF_CHECK_REL`: a
    machine with both formats), whether it has a lazy branch (do-rel.h: none for RELA where
    ELF_MACHINE_PLT_REL is defined) and whether its elf_machine_rel* warns about IFUNCs in objects not
    relocated yet."""

    tag: int
    size_tag: int
    count_tag: int
    rela: bool
    test_rel: bool
    lazy: bool
    ifunc_check: bool


# the version of the vDSO's dynamic symbols (index 2), which setup_vdso_pointers asks for
LINUX_2_6 = Version("LINUX_2.6", elf_hash(b"LINUX_2.6"), True)


class Machine:
    """A loader build's relocation rules (sysdeps/ARCH/dl-machine.h): the passes, the types that look
    nothing up, elf_machine_type_class, the cases of elf_machine_rel*'s switch (any other type is
    _dl_reloc_bad_type after its lookup), the types elf_machine_lazy_rel* accepts, and the setup of the
    vDSO pointers and the libc IFUNCs whose resolvers ask the vDSO."""

    def __init__(self, name: str, passes: tuple[RelocPass, ...], no_lookup: frozenset[int], jump_slot: int,
                 copy: int, tlsdesc: int, irelative: int, defer_irelative: bool, plt_class: frozenset[int],
                 handled: frozenset[int], vdso_symbols: tuple[str, ...], vdso_resolved: dict[str, str],
                 malloc_version: tuple[str, int], pointer: int,
                 overflow: dict[int, tuple[str, bool]] | None = None, static_tls: frozenset[int] = frozenset(),
                 vdso_version: Version | None = None,
                 store_needs_symbol: frozenset[int] = frozenset()) -> None:
        self.name = name
        self.passes = passes
        self.no_lookup = no_lookup
        self.jump_slot = jump_slot
        self.copy = copy
        self.tlsdesc = tlsdesc
        self.irelative = irelative
        self.defer_irelative = defer_irelative  # ELF_MACHINE_IRELATIVE: IRELATIVE entries after the others
        self.plt_class = plt_class
        self.tclass = {**{t: TypeClass.PLT for t in plt_class}, copy: TypeClass.COPY}  # elf_machine_type_class
        self.handled = handled
        self.vdso_symbols = vdso_symbols
        self.vdso_names = frozenset((*vdso_symbols, *(n[len("__vdso_"):] for n in vdso_symbols
                                                      if n.startswith("__vdso_"))))
        self.vdso_version = vdso_version or LINUX_2_6  # VDSO_NAME of the ABI's sysdep.h
        self.vdso_resolved = vdso_resolved
        self.malloc_version = malloc_version
        self.pointer = pointer  # sizeof (void *)
        # the 32-bit fields whose value elf_machine_rela checks: type -> (name, PC-relative)
        self.overflow = overflow or {}
        self.static_tls = static_tls  # types whose case asks for the definer's static TLS offset
        self.store_needs_symbol = store_needs_symbol  # types whose case stores nothing without a definition

    def __repr__(self) -> str:
        return f"Machine({self.name})"


X86_64 = Machine(
    "x86_64",
    # ELF_MACHINE_NO_REL: only the RELA pass, and it takes DT_JMPREL whatever DT_PLTREL says
    (RelocPass(DT.RELA, DT.RELASZ, DT.RELACOUNT, True, False, True, True),),
    frozenset((R.NONE, R.RELATIVE, R.RELATIVE64)), R.JUMP_SLOT, R.COPY, R.TLSDESC, R.IRELATIVE, True,
    frozenset((R.JUMP_SLOT, R.DTPMOD64, R.DTPOFF64, R.TPOFF64, R.TLSDESC)),
    # the cases of elf_machine_rela's switch (LP64): R_X86_64_64, PC32, 32, COPY, GLOB_DAT, JUMP_SLOT,
    # DTPMOD64, DTPOFF64, TPOFF64, SIZE32, SIZE64, TLSDESC, IRELATIVE
    frozenset((1, 2, 10, 5, 6, 7, 16, 17, 18, 32, 33, 36, 37)),
    # setup_vdso_pointers (sysdeps/unix/sysv/linux/x86_64/sysdep.h HAVE_*_VSYSCALL)
    ("__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu", "__vdso_clock_getres"),
    # sysdeps/unix/sysv/linux/x86/time.c, gettimeofday.c: IFUNCs on x86_64 only, whose resolvers call
    # dl_vdso_vsym each time elf_machine_rela runs them (__gettimeofday is gettimeofday's alias)
    {"time": "__vdso_time", "gettimeofday": "__vdso_gettimeofday", "__gettimeofday": "__vdso_gettimeofday"},
    ("GLIBC_2.2.5", 0x09691A75), 8,
    # R_X86_64_32 must fit unsigned, R_X86_64_PC32 signed: else a warning (i386's never overflow)
    overflow={R.R32: ("R_X86_64_32", False), R.PC32: ("R_X86_64_PC32", True)},
    # TPOFF64: CHECK_STATIC_TLS; TLSDESC: TRY_STATIC_TLS (sysdeps/x86_64/dl-machine.h)
    static_tls=frozenset((R.TPOFF64, R.TLSDESC)),
    store_needs_symbol=frozenset((R.COPY, R.DTPMOD64, R.DTPOFF64, R.TPOFF64)))
I386 = Machine(
    "i386",
    # both formats (ELF_MACHINE_NO_REL and _NO_RELA are 0): REL, then RELA (prelinked objects only), each
    # taking DT_JMPREL when DT_PLTREL names it; ELF_MACHINE_PLT_REL: the RELA pass binds even lazy ranges,
    # and its elf_machine_rela has no IFUNC warnings
    (RelocPass(DT.REL, DT.RELSZ, DT.RELCOUNT, False, True, True, True),
     RelocPass(DT.RELA, DT.RELASZ, DT.RELACOUNT, True, True, False, False)),
    frozenset((R386.NONE, R386.RELATIVE)), R386.JMP_SLOT, R386.COPY, R386.TLS_DESC, R386.IRELATIVE, False,
    frozenset((R386.JMP_SLOT, R386.TLS_DTPMOD32, R386.TLS_DTPOFF32, R386.TLS_TPOFF32, R386.TLS_TPOFF,
               R386.TLS_DESC)),
    # the cases of elf_machine_rel's switch: SIZE32, GLOB_DAT, JMP_SLOT, TLS_DTPMOD32, TLS_DTPOFF32,
    # TLS_DESC, TLS_TPOFF32, TLS_TPOFF, 32, PC32, COPY, IRELATIVE (elf_machine_rela's are the same)
    frozenset((38, 6, 7, 35, 36, 41, 37, 14, 1, 2, 5, 42)),
    # sysdeps/unix/sysv/linux/i386/sysdep.h: no getcpu, and clock_gettime64 for the 64-bit time_t calls
    ("__vdso_clock_gettime", "__vdso_clock_gettime64", "__vdso_gettimeofday", "__vdso_time",
     "__vdso_clock_getres"),
    {},  # time and gettimeofday are plain functions there (USE_IFUNC_* only for __x86_64__)
    ("GLIBC_2.0", 0x0D696910), 4,
    static_tls=frozenset((R386.TLS_TPOFF, R386.TLS_TPOFF32, R386.TLS_DESC)),  # sysdeps/i386/dl-machine.h
    store_needs_symbol=frozenset((R386.COPY, R386.TLS_DTPMOD32, R386.TLS_DTPOFF32, R386.TLS_TPOFF32,
                                  R386.TLS_TPOFF)))


AARCH64 = Machine(
    "aarch64",
    # sysdeps/generic/dl-machine-rel.h (ELF_MACHINE_NO_REL): only the RELA pass, with a lazy branch
    # (no ELF_MACHINE_PLT_REL); elf_machine_rela warns about no IFUNC; no ELF_MACHINE_IRELATIVE
    (RelocPass(DT.RELA, DT.RELASZ, DT.RELACOUNT, True, False, True, False),),
    frozenset((RA64.NONE, RA64.RELATIVE)), RA64.JUMP_SLOT, RA64.COPY, RA64.TLSDESC, RA64.IRELATIVE, False,
    # sysdeps/aarch64/dl-machine.h elf_machine_type_class
    frozenset((RA64.JUMP_SLOT, RA64.TLS_DTPMOD, RA64.TLS_DTPREL, RA64.TLS_TPREL, RA64.TLSDESC)),
    # the cases of its elf_machine_rela's switch
    frozenset((RA64.GLOB_DAT, RA64.JUMP_SLOT, RA64.ABS32, RA64.ABS64, RA64.COPY, RA64.TLSDESC, RA64.TLS_DTPMOD,
               RA64.TLS_DTPREL, RA64.TLS_TPREL, RA64.IRELATIVE)),
    # sysdeps/unix/sysv/linux/aarch64/sysdep.h (LP64), in setup_vdso_pointers' order
    ("__kernel_clock_gettime", "__kernel_gettimeofday", "__kernel_clock_getres"),
    {},
    ("GLIBC_2.17", elf_hash(b"GLIBC_2.17")), 8,
    static_tls=frozenset((RA64.TLS_TPREL, RA64.TLSDESC)),  # CHECK_STATIC_TLS, TRY_STATIC_TLS
    vdso_version=Version("LINUX_2.6.39", elf_hash(b"LINUX_2.6.39"), True))


def _canonical_plt(ref: Sym) -> bool:
    """An undefined function with an address: the program's PLT entry stands for it (pointer equality)."""
    return ref.value != 0 and ref.shndx == SHN_UNDEF


def _check_static_tls(sym_map: LinkMap) -> None:
    """CHECK_STATIC_TLS / TRY_STATIC_TLS: a definer without a static TLS offset gets one from
    _dl_try_allocate_static_tls (elf/dl-reloc.c), which divides by its l_tls_align, 0 for an object
    without PT_TLS: a TLS reference bound to a plain symbol of such an object ends ld.so with SIGFPE."""
    elf = sym_map.elf
    if elf is not None and not any(seg.type == PT.TLS for seg in elf.segments):
        raise Exit(-SIGFPE)


def machine_of(elf: ElfFile) -> Machine | None:
    """The relocation rules for an object's ELF class and machine (64-bit objects other than aarch64's
    keep x86-64's, as before), None where ldsim binds nothing (32-bit non-i386 objects)."""
    if elf.is_64:
        return AARCH64 if elf.e_machine == EMachine.AARCH64 else X86_64
    return I386 if elf.e_machine == EMachine.I386 else None


def process_machine(arch: str) -> Machine:
    """The rules of a profile's loader (its `arch`): the vDSO pointers and malloc lookups of rtld."""
    return {"i386": I386, "aarch64": AARCH64}.get(arch, X86_64)


_RELA = struct.Struct("<QQq")
_REL32 = struct.Struct("<II")
_RELA32 = struct.Struct("<IIi")


class Rela(Frozen):
    __slots__ = _fields = ("offset", "type", "sym", "addend")

    def __init__(self, offset: int, type: int, sym: int, addend: int) -> None:
        _set = object.__setattr__
        _set(self, "offset", offset)
        _set(self, "type", type)
        _set(self, "sym", sym)
        _set(self, "addend", addend)


class SymbolLookupError(Exception):
    """An undefined strong reference outside `_dl_receive_error`: fatal for the process."""

    def __init__(self, objname: str, message: str) -> None:
        super().__init__(message)
        self.objname = objname
        self.message = message


class Counters(Value):
    __slots__ = _fields = ("relocations", "cache")

    def __init__(self, relocations: int = 0, cache: int = 0) -> None:
        self.relocations = relocations
        self.cache = cache


class _Cache(Value):
    """l_lookup_cache: the last (symbol, type class) looked up by one object and its result."""

    __slots__ = _fields = ("sym", "tclass", "result")

    def __init__(self, sym: int | None = None, tclass: int = -1, result: tuple[LinkMap, Sym] | None = None) -> None:
        self.sym = sym
        self.tclass = tclass
        self.result = result


LIBC_SONAME = "libc.so.6"


class Binder(Record):
    """Process-wide lookup state: counters, the unique-symbol table, per-object lookup caches."""

    _fields = ("proc", "tables", "counters", "unique", "caches", "receiver", "_tabs", "current", "_heap",
               "_full_heap", "run_ifuncs", "relocated", "machine", "_protections", "_stores_safe")

    def __init__(self, proc: Process, tables: SymbolTables) -> None:
        self.proc = proc
        self.tables = tables
        self.counters = Counters()
        self.unique: dict[str, tuple[LinkMap, Sym]] = {}
        self.caches: dict[int, _Cache] = {}
        self.receiver: Callable[[str, str], None] | None = None  # _dl_receive_error's handler, None = fatal
        self.size_receiver: Callable[[str], None] | None = None  # copy-size warnings as data, not output
        self.protected_receiver: Callable[[str, str], None] | None = None  # (symbol, warning), likewise
        self._tabs: dict[int, SymbolTable | None] = {}
        self.current: LinkMap | None = None  # the object being relocated (for error messages)
        self._heap: _VersionHeap | None | bool = False  # False: not worked out yet; None: not needed
        self._full_heap: _VersionHeap | None = None  # the same layout for an index past an array's end
        self.profiling = False  # consider_profiling (LD_PROFILE, the real start): DT_BIND_NOW is ignored
        self.run_ifuncs = False  # IFUNC resolvers are called (a real start, not __RTLD_NOIFUNC's trace passes)
        self.relocated: set[int] = set()  # id() of the objects whose _dl_relocate_object has finished
        self.machine = process_machine(proc.profile.arch)  # the loader's own: vDSO and malloc lookups
        self._protections: dict[int, list[tuple[int, int, int]]] = {}  # id(elf) -> its pages (_store)
        self._stores_safe = False  # the range being relocated stores only into writable pages

    def __repr__(self) -> str:  # not the process and tables it points to
        return f"Binder(counters={self.counters!r})"

    # -- tables ----------------------------------------------------------------------------------

    def table(self, m: LinkMap) -> SymbolTable | None:
        key = id(m)
        if key in self._tabs:
            return self._tabs[key]
        tab = None if m.elf is None or m.faked or machine_of(m.elf) is None else self.tables.of(m.elf)
        self._tabs[key] = tab
        return tab

    def name(self, m: LinkMap) -> str:
        return self.proc.dso_filename(m)

    def ref_version(self, m: LinkMap, tab: SymbolTable, vs: int | None) -> Version | None:
        """The version a reference of m asks for: &l_versions[vs & 0x7fff] as do-rel.h takes it, None when
        its hash is 0 (RESOLVE_MAP).  In trace mode l_versions may be shorter than the file's version
        indices (see _VersionHeap); otherwise it holds exactly the file's needed and defined versions."""
        if vs is None:
            return None
        if id(m) in self.proc.unchained:
            # _dl_check_all_versions walks the chain: an object off it keeps l_versions NULL
            if vs & 0x7FFF:
                raise Exit(-SIGSEGV)  # RESOLVE_MAP reads version->hash at address ndx * 24 + 8
            return None
        heap = self._version_heap()
        if heap is not None:
            v = heap.version(m, tab, vs & 0x7FFF)
        else:
            ndx = vs & 0x7FFF
            v = tab.versions.get(ndx)
            if v is None and ndx and not tab.versions and version_index_high(m.elf) == 0:
                # DT_VERSYM without version records: l_versions stays NULL, and do-rel.h still indexes it
                raise Exit(-SIGSEGV)  # RESOLVE_MAP reads version->hash at address ndx * 24 + 8
            if v is None and ndx > 1 and self.proc.cfg.tracing and ndx > version_index_high(m.elf):
                # past the end of m's l_versions: what the arrays after it hold (see _VersionHeap; a
                # real start allocates more there before relocating, not modelled)
                if self._full_heap is None:
                    self._full_heap = _VersionHeap.of(self.proc, self.table, always=True)
                v = self._full_heap.version(m, tab, ndx)
        return v if v is not None and v.hash != 0 else None

    def _version_heap(self) -> _VersionHeap | None:
        """The l_versions layout when trace mode left some arrays short, else None (worked out once)."""
        if self._heap is False:
            self._heap = _VersionHeap.of(self.proc, self.table)
        return self._heap

    # -- lookup ----------------------------------------------------------------------------------

    def lookup(self, name: str, undef: LinkMap, ref: Sym | None, scopes: list[list[LinkMap]],
               version: Version | None, tclass: int) -> tuple[LinkMap, Sym] | None:
        """_dl_lookup_symbol_x: scope walk, undefined-symbol error, protected references, l_used,
        the binding line."""
        self.counters.relocations += 1
        h = self.tables.gnu_hash(name)
        result: list = []
        for scope in scopes:
            if self._do_lookup(name, h, ref, scope, version, tclass, undef, result):
                break
        if not result:
            if (ref is None or ref.bind != STB.WEAK) and not self.proc.cfg.debug & Debug.UNUSED:
                vtext = f", version {version.name or ''}" if version is not None else ""
                self._signal(self.name(undef), f"undefined symbol: {name}{vtext}")
            return None
        found = (result[0], result[1])
        protected = ref is not None and ref.visibility == STV.PROTECTED
        if protected:
            if tclass & TypeClass.PLT:
                if found[0] is not undef:
                    found = (undef, ref)
            else:
                again: list = []
                for scope in scopes:
                    if self._do_lookup(name, h, ref, scope, version, TypeClass.PLT, None, again):
                        break
                if again and again[0] is not undef:
                    found = (undef, ref)
        found[0].used = True
        self.proc.emit(ev.Binding(self.name(undef), self.name(found[0]), name,
                                  version.name if version is not None else None, protected))
        return found

    def _signal(self, objname: str, message: str) -> None:
        """_dl_signal_cexception with occasion "symbol lookup error"."""
        self.proc.emit(ev.DebugError(objname, "symbol lookup error", message, self.receiver is not None))
        if self.receiver is None:
            raise SymbolLookupError(objname, message)
        self.receiver(objname, message)

    def _do_lookup(self, name: str, h: int, ref: Sym | None, scope: list[LinkMap], version: Version | None,
                   tclass: int, undef: LinkMap | None, result: list) -> bool:
        """do_lookup_x over one scope; True when the search is over (result set)."""
        dynamic_weak = self.proc.cfg.dynamic_weak
        copy = bool(tclass & 2)
        emit = self.proc.emit
        for m in scope:
            if copy and m.kind is Kind.MAIN:
                continue
            emit(ev.SymbolLookup(name, m.name or self.proc.argv0))
            sym = self._find_in(m, name, h, ref, version, tclass)
            if sym is None or sym.binds_local:
                continue
            if sym.visibility == STV.PROTECTED:
                self._check_protected(name, undef, ref, m, tclass)
            if sym.bind == STB.WEAK and dynamic_weak:
                if not result:
                    result[:] = [m, sym]
                continue
            if sym.bind in (STB.GLOBAL, STB.WEAK):
                result[:] = [m, sym]
                return True
            if sym.bind == STB.GNU_UNIQUE:
                result[:] = self._unique(name, m, sym, ref, undef, tclass)
                return True
        return False

    def _check_protected(self, name: str, undef: LinkMap | None, ref: Sym | None, m: LinkMap,
                         tclass: int) -> None:
        """_dl_check_protected_symbol (sysdeps/generic/dl-protected.h): the executable's copy relocation
        or canonical PLT address against a protected definition draws a warning; fatal when the
        definer needs indirect external access (GNU_PROPERTY_1_NEEDED)."""
        if undef is None or undef.kind is not Kind.MAIN:
            return
        if tclass & TypeClass.COPY:
            text = f"warning: copy relocation against non-copyable protected symbol `{name}' in `{m.name}'"
        elif tclass & TypeClass.PLT and ref is not None and _canonical_plt(ref):
            text = f"warning: direct reference to protected function `{name}' in `{m.name}' may break pointer equality"
        else:
            return
        if self.protected_receiver is not None:
            self.protected_receiver(name, text)
        else:
            self.proc.out(text + "\n", 2)
        if m.elf is not None and gnu_property_1_needed(m.elf) & GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS:
            # _dl_signal_error, not the cexception variant: fatal even under _dl_receive_error (ldd -r)
            self.proc.fatal(LoadError(m.name, "error due to GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS"), name)

    def _unique(self, name: str, m: LinkMap, sym: Sym, ref: Sym | None, undef: LinkMap | None,
                tclass: int) -> list:
        """do_lookup_unique: the first definition found process-wide serves everyone."""
        hit = self.unique.get(name)
        if hit is not None:
            return [m, sym] if tclass & TypeClass.COPY else list(hit)
        if tclass & TypeClass.COPY and undef is not None and ref is not None:
            self.unique[name] = (undef, ref)
        else:
            self.unique[name] = (m, sym)
        return [m, sym]

    def _find_in(self, m: LinkMap, name: str, h: int, ref: Sym | None, version: Version | None,
                 tclass: int) -> Sym | None:
        """The hash-chain part of do_lookup_x with check_match, for one object."""
        if m.kind is Kind.VDSO:
            return self._vdso_symbol(name)
        tab = self.table(m)
        if tab is None or tab.nbuckets == 0:
            if tab is not None and tab.unreadable:
                raise Exit(-SIGSEGV)
            return None
        sym, assert_filename = match(tab, name, h, version, tclass & 1)
        if assert_filename:
            self._check_filename(version, m)
        return sym

    def _check_filename(self, version: Version, m: LinkMap) -> None:
        """check_match's assertion: a versioned reference into the very file that should define it."""
        if version.filename is not None and m.name_matches(version.filename):
            self.proc.out("Inconsistency detected by ld.so: dl-lookup.c: 107: check_match: Assertion "
                          "`version->filename == NULL || ! _dl_name_match_p (version->filename, map)' "
                          "failed!\n", 2)
            raise Exit(127)

    def _vdso_symbol(self, name: str) -> Sym | None:
        if name in self.machine.vdso_names:
            return Sym(0, name, (STB.GLOBAL << 4) | STT.FUNC, 0, 1, 0x1000, 0)
        return None

    # -- startup pieces --------------------------------------------------------------------------

    def vdso_setup(self, vdso: LinkMap) -> None:
        """setup_vdso_pointers: one dl_vdso_vsym lookup in the vDSO's local scope per HAVE_*_VSYSCALL."""
        for name in self.machine.vdso_symbols:
            self.lookup(name, vdso, None, [[vdso]], self.machine.vdso_version, TypeClass.NONE)

    def scopes_of(self, m: LinkMap) -> list[list[LinkMap]]:
        """l_scope of an object loaded at startup: the global scope, after itself with DT_SYMBOLIC."""
        glob = self.proc.result.searchlist
        if m.kind is not Kind.MAIN and m.elf is not None and (m.elf.dyn(DT.SYMBOLIC) is not None
                                                              or m.elf.flags & DF.SYMBOLIC):
            return [[m], glob]
        return [glob]

    # -- relocation ------------------------------------------------------------------------------

    def relocate(self, m: LinkMap, lazy: bool, scopes: list[list[LinkMap]] | None = None) -> None:
        """_dl_relocate_object for the lookups it makes (RELR and relative relocations make none)."""
        elf = m.elf
        if elf is None:
            return
        self.current = m
        if not self.profiling and (elf.dyn(DT.BIND_NOW) is not None or elf.flags & DF.BIND_NOW
                                   or elf.flags_1 & DF1.NOW):
            lazy = False
        self.proc.emit(ev.RelocationProcessing(self.name(m), lazy))
        if elf.dyn(DT.SYMTAB) is None:
            # elf_dynamic_do_Rela loads D_PTR (map, l_info[DT_SYMTAB]) even for an empty range: NULL
            raise Exit(-SIGSEGV)
        tab = self.table(m)
        if tab is None or tab.symtab is None:
            return
        scopes = scopes if scopes is not None else self.scopes_of(m)
        mach = machine_of(elf)
        word = 8 if elf.is_64 else 4
        if lazy and elf.dyn(DT.JMPREL):  # elf_machine_runtime_setup: GOT[1] and GOT[2]
            self._store(m, (elf.dyn(DT.PLTGOT) or 0) + word)
        if m is not self.proc.rtld:  # ELF_DYNAMIC_DO_RELR, before DT_REL(A)
            for at in _relr_addresses(elf, word):
                self._store(m, at)
        for start, entries, nrelative, range_lazy, rpass in self._ranges(m, lazy, mach):
            relocs = entries[nrelative:]  # the first DT_REL(A)COUNT entries are relative: no lookups
            ifuncs = rpass.ifunc_check
            self._stores_safe = self._all_writable(m, entries)
            if range_lazy and rpass.lazy:  # elf_machine_lazy_rel: only these three types in a lazy range
                for r in relocs:
                    if r.type == mach.tlsdesc:
                        self._rela(m, tab, r, scopes, mach, ifuncs)
                    elif r.type != mach.jump_slot and r.type != mach.irelative:
                        self._bad_type(m, r.type, True)
                    elif r.type == mach.jump_slot:
                        self._store(m, r.offset)
                for r in relocs:  # IRELATIVE last (do-rel.h): its resolver called, then the store
                    if r.type == mach.irelative:
                        self._call_resolver(m, r.addend if elf.is_64 else _file_word(elf, r.offset, 4))
                        self._store(m, r.offset)
                continue
            if rpass.rela or m.addr:  # DO_ELF_MACHINE_REL_RELATIVE (REL: only with a load bias)
                for r in entries[:nrelative]:
                    self._store(m, r.offset)
            deferred = []
            irelative = mach.irelative if mach.defer_irelative else -1
            for r in relocs:
                if r.type == irelative:
                    deferred.append(r)
                    continue
                self._rela(m, tab, r, scopes, mach, ifuncs)
            for r in deferred:
                self._rela(m, tab, r, scopes, mach, ifuncs)
        self._stores_safe = False
        self.relocated.add(id(m))
        self._protect_relro(m)

    def _protect_relro(self, m: LinkMap) -> None:
        """_dl_protect_relro at the end of _dl_relocate_object: an mprotect that meets unmapped pages
        fails (ENOMEM), fatal for the object (its l_name: "" for the program)."""
        from ldsim.mapping import relro_unmapped
        if relro_unmapped(m.elf.e_type, m.elf.segments, m.elf.is_64):
            from ldsim.search import LoadError
            self.proc.fatal(LoadError(m.name, "cannot apply additional memory protection after relocation",
                                      errno.ENOMEM))

    def _store(self, m: LinkMap, vaddr: int) -> None:
        """A relocation's store at p_vaddr `vaddr` of `m`: SIGSEGV where the page is not writable
        (ldsim.vm.write_faults)."""
        if self._stores_safe or m is self.proc.rtld:  # ld.so: relocated at its start already
            return
        if write_faults(self._pages(m.elf), m.addr, vaddr, m.elf.ei_class):
            raise Exit(-SIGSEGV)

    def _pages(self, elf) -> list[tuple[int, int, int]]:
        """The object's page protections while it is relocated and run (ldsim.vm.page_protections),
        worked out once per file."""
        prot = self._protections.get(id(elf))
        if prot is None:
            loads = tuple(s for s in elf.segments if s.type == PT.LOAD)
            textrel = elf.dyn(DT.TEXTREL) is not None or bool(elf.flags & DF.TEXTREL)
            prot = self._protections[id(elf)] = page_protections(loads, elf.e_type != 3, textrel) if loads else []
        return prot

    def _call_resolver(self, m: LinkMap, vaddr: int) -> None:
        """elf_machine_rela calling an IFUNC resolver of `m` at p_vaddr `vaddr` (not in trace mode's
        __RTLD_NOIFUNC passes): SIGSEGV where its page is not executable."""
        if self.run_ifuncs and m.elf is not None and m is not self.proc.rtld and m.kind is not Kind.VDSO \
                and call_faults(self._pages(m.elf), m.addr, m.addr + vaddr, m.elf.ei_class):
            raise Exit(-SIGSEGV)

    def calls_fault(self, m: LinkMap, init: bool) -> bool:
        """Whether one of the functions _dl_init's call_init (or libc's, for the program) or _dl_fini
        calls for `m` lies where it cannot be executed: DT_INIT and DT_INIT_ARRAY's entries, or
        DT_FINI_ARRAY's and DT_FINI; the preinit array is `preinit_faults`."""
        elf = m.elf
        if elf is None or m is self.proc.rtld or m.kind is Kind.VDSO:
            return False
        single, array, size = (DT.INIT, DT.INIT_ARRAY, DT.INIT_ARRAYSZ) if init else \
            (DT.FINI, DT.FINI_ARRAY, DT.FINI_ARRAYSZ)
        if elf.dyn(single) is not None and self._any_faults(m, [m.addr + elf.dyn(single)]):
            return True
        return self._any_faults(m, self._array_values(m, array, size))

    def preinit_faults(self, m: LinkMap) -> bool:
        """The program's DT_PREINIT_ARRAY, which _dl_init calls after `calling preinit`."""
        return self._any_faults(m, self._array_values(m, DT.PREINIT_ARRAY, DT.PREINIT_ARRAYSZ))

    def _any_faults(self, m: LinkMap, targets) -> bool:
        prot = self._pages(m.elf)
        return any(t is not None and call_faults(prot, m.addr, t, m.elf.ei_class) for t in targets)

    def _array_values(self, m: LinkMap, tag: int, size_tag: int) -> Iterator[int | None]:
        """The words of an init/fini array once `m` is relocated, in order: a relative relocation's
        (RELA: bias plus addend; REL: bias plus the word), RELR's (bias plus the word), the file's word
        otherwise; None where another relocation sets it (a symbol's address: not judged).  A word in an
        unreadable page is 0 (the read faults as the call would); the walk stops at the first word
        outside the object (not judged).  call_init counts the entries in an unsigned int."""
        elf = m.elf
        start = elf.dyn(tag)
        if start is None:
            return
        if elf.dyn(size_tag) is None:
            yield 0  # l_info[DT_*_ARRAYSZ]->d_un.d_val through NULL: a fault as well
            return
        word = 8 if elf.is_64 else 4
        count = (elf.dyn(size_tag) // word) & 0xFFFFFFFF
        if not count:
            return
        mach = machine_of(elf)
        end = start + count * word
        by_slot: dict[int, Rela] = {}
        for _, entries, _, _, _ in self._ranges(m, False, mach):
            for r in entries:
                if start <= r.offset < end:
                    by_slot.setdefault(r.offset, r)
        relr = {a for a in _relr_addresses(elf, word) if start <= a < end}
        prot = self._pages(elf)
        lo, hi = min(p[0] for p in prot), max(p[1] for p in prot)
        for slot in range(start, end, word):
            if not lo <= slot < hi:
                return
            if read_faults(prot, m.addr, m.addr + slot, elf.ei_class):
                yield 0
                return
            raw = _file_word(elf, slot, word)
            r = by_slot.get(slot)
            if r is None:
                yield raw + m.addr if slot in relr else raw
            elif r.type in mach.no_lookup and r.type:  # RELATIVE
                yield m.addr + (r.addend if elf.is_64 else raw)
            else:
                yield None if r.type else raw

    def _all_writable(self, m: LinkMap, entries: list[Rela]) -> bool:
        """Whether every entry of a range stores into one writable stretch of `m` (the common case: no
        store need be checked one by one)."""
        if not entries or m is self.proc.rtld:
            return True
        return self._span_writable(m, min(r.offset for r in entries), max(r.offset for r in entries) + 8)

    def _span_writable(self, m: LinkMap, lo: int, hi: int) -> bool:
        """Whether [lo, hi) of `m` lies in one writable stretch of its pages."""
        if write_faults([], m.addr, hi, m.elf.ei_class):
            return False
        for start, end, writable in reversed(self._pages(m.elf)):  # the latest mapping wins
            if start < hi and lo < end and not writable & 2:  # PF_W
                return False
            if start <= lo and hi <= end:
                return True
        return False

    def _check_ifunc(self, m: LinkMap, ref: Sym, found: tuple[LinkMap, Sym]) -> None:
        """elf_machine_rela (sysdeps/x86_64/dl-machine.h; i386: elf_machine_rel) before it calls an IFUNC
        resolver: one in an object not relocated yet draws a warning, one in the executable is fatal
        (_dl_fatal_printf, 127)."""
        sym_map, sym = found
        if sym.type != STT.GNU_IFUNC or sym.shndx == SHN_UNDEF or sym_map is m or id(sym_map) in self.relocated \
                or sym_map.kind in (Kind.RTLD, Kind.VDSO):  # ld.so relocated itself first; the vDSO comes so
            return
        if sym_map.kind is Kind.MAIN:
            self.proc.out(f"{self.proc.argv0}: IFUNC symbol '{ref.name}' referenced in '{m.name}' is defined in "
                          "the executable and creates an unsatisfiable circular dependency.\n", 2)
            raise Exit(127)
        self.proc.out(f"{self.proc.argv0}: Relink `{m.name}' with `{sym_map.name}' for IFUNC symbol `{ref.name}'\n", 2)

    def _run_resolver(self, found: tuple[LinkMap, Sym], mach: Machine) -> None:
        """The IFUNC resolver elf_machine_rela calls: on x86-64 those of libc's time and gettimeofday
        (sysdeps/unix/sysv/linux/x86/time.c, gettimeofday.c) look their vDSO function up with
        dl_vdso_vsym, in the vDSO's local scope, as setup_vdso_pointers did."""
        sym_map, sym = found
        vdso_name = mach.vdso_resolved.get(sym.name)
        if (vdso_name is None or sym.type != STT.GNU_IFUNC or sym.shndx == SHN_UNDEF
                or sym_map.soname != LIBC_SONAME or self.proc._vdso is None):
            return
        vdso = self.proc._vdso
        self.lookup(vdso_name, vdso, None, [[vdso]], self.machine.vdso_version, TypeClass.NONE)

    def _bad_type(self, m: LinkMap, rtype: int, plt: bool) -> None:
        """_dl_reloc_bad_type (elf/dl-reloc.c): fatal, named by l_name ("" for the program); the type in
        two hex digits, eight above 0xff."""
        digits = f"{rtype & 0xFFFFFFFF:08x}" if rtype > 0xFF else f"{rtype:02x}"
        what = "PLT reloc" if plt else "reloc"
        self.proc.fatal(LoadError(m.name, f"unexpected {what} type 0x{digits}", 0))

    def _ranges(self, m: LinkMap, lazy: bool, mach: Machine) -> list[tuple[int, list[Rela], int, bool, RelocPass]]:
        """_ELF_DYNAMIC_DO_RELOC for each pass: DT_REL(A) (the first REL(A)COUNT relative), DT_JMPREL
        merged when contiguous and not lazy."""
        return [(start, self._read(m.elf, start, size, rpass.rela), nrel, rlazy, rpass)
                for start, size, nrel, rlazy, rpass in _range_specs(m.elf, lazy, mach)]

    def _read(self, elf, vaddr: int, size: int, rela: bool = True) -> list[Rela]:
        """The ElfW(Rel) or ElfW(Rela) entries of [vaddr, vaddr+size), read once per file."""
        cache = self.tables.of(elf).relocs
        hit = cache.get((vaddr, size, rela))
        if hit is None:
            hit = cache[(vaddr, size, rela)] = self._decode(elf, vaddr, size, rela)
        return hit

    @staticmethod
    def _decode(elf, vaddr: int, size: int, rela: bool = True) -> list[Rela]:
        """The entries as Rela records (an Elf32_Rel's addend, kept in place, as 0)."""
        off = elf.vaddr_to_offset(vaddr)
        if off is None:
            return []
        fmt, shift, tmask = _entry_format(elf.is_64, rela)
        n = size // fmt.size
        if off + n * fmt.size <= len(elf.data):  # one C-level pass over the table
            view = memoryview(elf.data)[off:off + n * fmt.size]
            if rela:
                return [Rela(o, info & tmask, info >> shift, a) for o, info, a in fmt.iter_unpack(view)]
            return [Rela(o, info & tmask, info >> shift, 0) for o, info in fmt.iter_unpack(view)]
        out = []  # a table running past the end of the file: fails where ld.so would read garbage
        for i in range(n):
            o, info, *addend = fmt.unpack_from(elf.data, off + i * fmt.size)
            out.append(Rela(o, info & tmask, info >> shift, addend[0] if addend else 0))
        return out

    def references(self, m: LinkMap, name: str) -> bool:
        """Does any relocation of m (DT_RELA or DT_JMPREL) name the symbol `name`?"""
        tab = self.table(m)
        if m.elf is None or tab is None or tab.symtab is None:
            return False
        for _start, entries, _nrel, _lazy, _pass in self._ranges(m, False, machine_of(m.elf)):
            for r in entries:
                if r.sym and tab.symbol(r.sym).name == name:
                    return True
        return False

    # -- immediate binding, as a whole-root scan checks it -----------------------------------------

    def undefined_now(self, m: LinkMap) -> None:
        """What `relocate(m, lazy=False)` hands the receiver (undefined strong references), without its
        events or bindings: each distinct (symbol, type class) of m's relocations (grouped once per file),
        in the order relocation would first look it up, walked through m's scopes with a per-object memo
        of `match` (a pure function of the file, kept in `tables` for the run).  Names stay the bytes of
        the string table (decoded only for a message).  A reference to a protected symbol takes the full
        `lookup`."""
        elf = m.elf
        if elf is None:
            return
        self.current = m
        tab = self.table(m)
        if tab is None or tab.symtab is None:
            return
        mach = machine_of(elf)
        if self._some_store_faults(m, mach):  # the crash's place decides what was reported before it
            self.relocate(m, False)
            return
        if tab.references is None:
            tab.references = _references(elf, mach, lambda start, size, rela: self._decode(elf, start, size, rela))
        shift, tmask = (32, 0xFFFFFFFF) if elf.is_64 else (8, 0xFF)  # ELFW(R_SYM), ELFW(R_TYPE)
        wlog = tab.wlog  # the scope's objects are all of m's class: the bloom words' width
        versioned = bool(elf.verneed or elf.verdef)
        scopes = self.scopes_of(m)
        walk = [(o, o.kind is Kind.MAIN, self.table(o)) for scope in scopes for o in scope]
        walk = [(o, main, t, t.defs if t is not None else None, t.bloom_words() if t is not None else None)
                for o, main, t in walk if o.kind is Kind.VDSO or (t is not None and t.nbuckets)]
        dynamic_weak = self.proc.cfg.dynamic_weak
        # the objects after the first (m itself, as a rule) are most programs' shared libraries: whether a
        # lookup succeeds there is remembered per sequence of tables (and type class), for every program
        # whose scope ends the same way
        head, tail = walk[:1], walk[1:]
        sig = (dynamic_weak, *((id(t), main) for _, main, t, _, _ in tail))
        memos = self.tables.tail_memos.get(sig)
        if memos is None:
            memos = self.tables.tail_memos[sig] = ({}, {}, {}, {})
        hashes = self.tables.raw_hashes
        keyed = _keyed_versions(tab) if versioned else {}
        laid_out = versioned and self._version_heap() is not None  # trace mode's l_versions: see ref_version
        undef_name = None
        done: set[int] = set()
        refs = tab.references
        tclasses = mach.tclass
        static_tls, copy = mach.static_tls, mach.copy
        is_main = m.kind is Kind.MAIN  # its canonical PLT addresses meet _dl_check_protected_symbol
        for info, (name, st_info, other, vs) in zip(refs, tab.brief([info >> shift for info in refs])):
            visibility = other & 3
            if st_info < 0x10 or visibility == 1 or visibility == 2:
                continue  # STB_LOCAL, or binds locally (STV_INTERNAL, STV_HIDDEN)
            idx = info >> shift
            tclass = tclasses.get(info & tmask, 0)
            k = idx * 4 + tclass
            if k in done:
                continue
            done.add(k)
            version = None
            key = name + _PLAIN[tclass & 1]
            if laid_out:
                version = self.ref_version(m, tab, vs)
                if version is not None:
                    key = name + _version_key(version, tclass & 1)
            elif vs is not None and keyed:
                hit = keyed.get(vs & 0x7FFF)
                if hit is not None:
                    version = hit[0]
                    key = name + hit[1 + (tclass & 1)]
            rtype = info & tmask
            if (visibility == STV.PROTECTED or rtype in static_tls or rtype == copy  # the definer matters
                    or (tclass & TypeClass.PLT and is_main and _canonical_plt(tab.symbol(idx)))):
                ref = tab.symbol(idx)
                found = self.lookup(_text(name), m, ref, scopes, version, tclass)
                if found is not None and rtype in static_tls:
                    _check_static_tls(found[0])
                elif found is not None and rtype == copy:
                    self._copy_size(ref, found[1])
                    self._copy_source(ref, found)
                continue
            h = hashes.get(name)
            if h is None:
                h = self.tables.hash_of(name)
            state = self._walk(head, name, key, h, version, tclass, wlog)
            if not state & _DEFINED:
                memo = memos[tclass]
                found = memo.get(key)
                if found is None:
                    found = self._walk(tail, name, key, h, version, tclass, wlog)
                    if found < _ASSERTED:
                        memo[key] = found
                state |= found
            if state & _SOME:
                continue
            if st_info >> 4 != STB.WEAK and not self.proc.cfg.debug & Debug.UNUSED:
                undef_name = undef_name or self.name(m)
                vtext = f", version {version.name or ''}" if version is not None else ""
                self._signal(undef_name, f"undefined symbol: {_text(name)}{vtext}")

    def _some_store_faults(self, m: LinkMap, mach: Machine) -> bool:
        """Whether a store of m's immediate relocation may fault (RELR, then each range not wholly
        inside one writable stretch): a superset, for `undefined_now` to hand such objects to the
        ordered `relocate`."""
        elf = m.elf
        prot = self._pages(elf)
        stores = list(_relr_addresses(elf, 8 if elf.is_64 else 4))
        cache = self.tables.of(elf).relocs
        for start, size, _, _, rpass in _range_specs(elf, False, mach):
            key = ("bounds", start, size, rpass.rela)  # the range's lowest and highest r_offset
            bounds = cache.get(key)
            if bounds is None:
                bounds = cache[key] = _offset_bounds(elf, start, size, rpass.rela)
            if bounds is not None and not self._span_writable(m, bounds[0], bounds[1] + 8):
                stores += [r.offset for r in self._read(elf, start, size, rpass.rela) if r.type]
        return any(write_faults(prot, m.addr, at, elf.ei_class) for at in stores)

    def _walk(self, walk: list, name: bytes, key: bytes, h: int, version: Version | None, tclass: int,
              wlog: int) -> int:
        """do_lookup_x over some of the scopes' objects in their order, for whether anything is found: the
        same objects are asked as by `lookup` (so check_match's assertion, or a malformed table, stops it
        at the same point), each through its memo (`key`: what `match` depends on) after its
        bloom filter (its words unpacked once).  _DEFINED (search over), _WEAK (a weak definition, LD_DYNAMIC_WEAK: the search goes
        on), or 0; plus _ASSERTED when check_match's assertion was evaluated (the answer is then not
        remembered for other programs).  `wlog`: log2 of the bloom words' bits (6, or 5 for ELFCLASS32)."""
        plt = tclass & 1
        copy = tclass & 2
        wmask = (1 << wlog) - 1
        lo = h & wmask
        hi = h >> wlog
        state = 0
        for o, is_main, tab, defs, bloom in walk:
            if copy and is_main:
                continue
            if defs is None:  # the vDSO
                if self._vdso_symbol(_text(name)) is None:
                    continue
                return state | _DEFINED
            if bloom is not None:
                word = bloom[hi & tab.bloom_mask]
                if not (word >> lo) & (word >> ((h >> tab.shift) & wmask)) & 1:
                    continue  # the bloom filter says no
            hit = defs.get(key)
            if hit is None:
                hit = defs[key] = _PROBES[tab.syment](tab, name, h, version, plt)
            bind, assert_filename = hit
            if assert_filename:
                state |= _ASSERTED
                self._check_filename(version, o)
            if bind == STB.WEAK and self.proc.cfg.dynamic_weak:
                state |= _WEAK
                continue
            if bind in _DEFINES:
                return state | _DEFINED
        return state

    def _rela(self, m: LinkMap, tab: SymbolTable, r: Rela, scopes: list[list[LinkMap]], mach: Machine,
              ifuncs: bool) -> None:
        """elf_machine_rel(a) up to RESOLVE_MAP, and the COPY size check; `ifuncs`: its IFUNC warnings."""
        if r.type in mach.no_lookup:
            if r.type:  # R_*_NONE stores nothing; RELATIVE does
                self._store(m, r.offset)
            return
        sym = tab.symbol(r.sym)
        if sym.bind == STB.LOCAL or sym.binds_local:
            if r.type not in mach.handled:
                self._bad_type(m, r.type, False)
            if r.type == mach.irelative:  # the resolver at l_addr + addend (REL: + the word in place)
                self._call_resolver(m, r.addend if m.elf.is_64 else _file_word(m.elf, r.offset, 4))
            elif sym.type == STT.GNU_IFUNC and sym.shndx != SHN_UNDEF:
                self._call_resolver(m, sym.value)
            self._store(m, r.offset)
            return
        tclass = mach.tclass.get(r.type, TypeClass.NONE)
        cache = self.caches.get(id(m))
        if cache is None:
            cache = self.caches[id(m)] = _Cache()
        if cache.sym == r.sym and cache.tclass == tclass:
            self.counters.cache += 1
            found = cache.result
        else:
            cache.tclass, cache.sym = tclass, r.sym
            version = self.ref_version(m, tab, tab.versym(r.sym))  # do-rel.h: whenever DT_VERSYM is there
            found = self.lookup(sym.name, m, sym, scopes, version, tclass)
            cache.result = found
        if found is not None and self.run_ifuncs:
            if ifuncs:
                self._check_ifunc(m, sym, found)
            if found[1].type == STT.GNU_IFUNC and found[1].shndx not in (SHN_UNDEF, SHN_ABS):
                self._call_resolver(found[0], found[1].value)
            self._run_resolver(found, mach)
        if r.type not in mach.handled:  # looked up first (RESOLVE_MAP), then the switch's default
            self._bad_type(m, r.type, False)
        if found is not None and r.type in mach.static_tls:
            _check_static_tls(found[0])
        if r.type == mach.copy and found is not None:
            self._copy_size(sym, found[1])
            self._copy_source(sym, found)
        field = mach.overflow.get(r.type)
        if field is not None and not _fits(field[1], _symbol_address(found) + r.addend, m.addr + r.offset):
            self.proc.out(f"{self.proc.argv0}: Symbol `{sym.name}' causes overflow in {field[0]} relocation\n", 2)
        if found is not None or r.type not in mach.store_needs_symbol:  # the switch's store
            self._store(m, r.offset)

    def _copy_source(self, ref: Sym, found: tuple[LinkMap, Sym]) -> None:
        """The COPY case's memcpy reads MIN (st_size of both) bytes at the definition: SIGSEGV where
        its first or last byte lies in a page its object maps unreadable (ldsim.vm.read_faults)."""
        sym_map, dsym = found
        size = min(ref.size, dsym.size)
        if size <= 0 or sym_map.elf is None or sym_map.kind in (Kind.RTLD, Kind.VDSO):
            return
        start = dsym.value + (0 if dsym.shndx == SHN_ABS else sym_map.addr)
        prot = self._pages(sym_map.elf)
        if any(read_faults(prot, sym_map.addr, a, sym_map.elf.ei_class) for a in (start, start + size - 1)):
            raise Exit(-SIGSEGV)

    def _copy_size(self, ref: Sym, dsym: Sym) -> None:
        """R_X86_64_COPY / R_386_COPY (dl-machine.h): a definition larger than the program's copy, or
        smaller under LD_WARN, draws a warning (the copy has the smaller size).  A size_receiver is
        ldd -r's check (the scan's), which runs with LD_WARN."""
        warn = self.proc.cfg.warn or self.size_receiver is not None
        if dsym.size > ref.size or (dsym.size < ref.size and warn):
            if self.size_receiver is not None:
                self.size_receiver(ref.name)
                return
            self.proc.out(f"{self.proc.argv0}: Symbol `{ref.name}' has different size in shared object, "
                          "consider re-linking\n", 2)

    # -- lazy binding ----------------------------------------------------------------------------

    def lazy_call(self, m: LinkMap, name: str) -> None:
        """_dl_fixup (elf/dl-runtime.c): the first call through `m`'s PLT slot for `name` looks it up in
        m's scope (no lookup cache).  Nothing when m was bound at startup or has no such slot."""
        tab = self.table(m)
        elf = m.elf
        if tab is None or elf.dyn(DT.JMPREL) is None:
            return
        mach = machine_of(elf)
        # PLTREL: ElfW(Rel) where the machine's PLT entries are (i386's ELF_MACHINE_PLT_REL), else Rela
        rela = mach.passes[0].rela
        for r in self._read(elf, elf.dyn(DT.JMPREL), elf.dyn(DT.PLTRELSZ) or 0, rela):
            if r.type != mach.jump_slot:
                continue
            sym = tab.symbol(r.sym)
            if sym.name != name:
                continue
            if sym.visibility != STV.DEFAULT:
                return
            version = self.ref_version(m, tab, tab.versym(r.sym))
            self.lookup(name, m, sym, self.scopes_of(m), version, TypeClass.PLT)
            return

    def binds_now(self, m: LinkMap, lazy: bool) -> bool:
        """Whether _dl_relocate_object bound m's PLT at startup."""
        elf = m.elf
        if not lazy or elf is None:
            return True
        return not self.profiling and (elf.dyn(DT.BIND_NOW) is not None or bool(elf.flags & DF.BIND_NOW)
                                       or bool(elf.flags_1 & DF1.NOW))


def _symbol_address(found: tuple[LinkMap, Sym] | None) -> int:
    """SYMBOL_ADDRESS (sysdeps/generic/ldsodefs.h): 0 for nothing found, no load bias for SHN_ABS.  An
    IFUNC's value would be what its resolver returns: taken as the resolver's own address, in the same
    object."""
    if found is None:
        return 0
    m, sym = found
    return sym.value if sym.shndx == SHN_ABS else m.addr + sym.value


def _fits(pc_relative: bool, value: int, place: int) -> bool:
    """Whether elf_machine_rela's 32-bit field takes `value` (S + A) at `place`: R_X86_64_32's
    `value > UINT_MAX`, R_X86_64_PC32's `value != (int) value` on S + A - P, both in 64-bit unsigned
    arithmetic.  The load addresses are Loader._layout's: objects ld.so maps lie close together, the
    program the kernel maps does not (ELF_ET_DYN_BASE, or its link address)."""
    mask = (1 << 64) - 1
    if not pc_relative:
        return value & mask <= 0xFFFFFFFF
    v = (value - place) & mask
    return v < 1 << 31 or v >= (1 << 64) - (1 << 31)


_GARBAGE = -1  # a hash read from the low half of a pointer: non-zero, equal to no version's hash
_MALLOC_ALIGNMENT = 16  # x86-64 and i386 alike


def _version_size(pointer: int) -> int:
    """sizeof (struct r_found_version): name, hash (ElfW(Word)), hidden (int), filename."""
    return 2 * pointer + 8


class _VersionHeap:
    """The l_versions arrays as _dl_check_all_versions leaves them, when some are shorter than their
    file's version indices.

    _dl_check_map_versions sizes l_versions by the highest index among the file's Verdef entries and the
    Vernaux entries it checked, and in trace mode it checks none of a Verneed whose file is a faked
    (missing) object; it then stores only the Vernaux entries below that size.  A reference at one of the
    missing file's higher indices reads past the end of the array (do-rel.h: &map->l_versions[ndx]).
    Before relocation ld.so allocates with its minimal bump allocator (elf/dl-minimal-malloc.c, 16-byte
    aligned, nothing between): the arrays lie one after the other in l_next order (each object with an
    index above 0 allocates one; faked ones none), so the read finds the next objects' entries, or their
    zeroed parts.  Words past the last array are taken as zero (init_tls allocates there later), and a
    page boundary between two arrays is not modelled.  Built only when some object is faked."""

    def __init__(self, arrays: dict[int, tuple[int, int, dict[int, Version]] | None], layout: list,
                 pointer: int = 8) -> None:
        self.arrays = arrays  # id(m) -> (offset, entries, l_versions), None for a NULL l_versions
        self.layout = layout  # (offset, entries, l_versions) in address order
        self.pointer = pointer
        self.size = _version_size(pointer)

    @classmethod
    def of(cls, proc: Process, table: Callable, always: bool = False) -> _VersionHeap | None:
        """None when no object is faked (the arrays are then as long as their files' indices), unless
        `always`: a reference whose index is past its own array's end reads the next ones anyway."""
        objects = proc.objects
        if not always and not any(o.faked for o in objects):
            return None
        arrays: dict[int, tuple[int, int, dict[int, Version]] | None] = {}
        layout = []
        offset = 0
        pointer = process_machine(proc.profile.arch).pointer
        size = _version_size(pointer)
        for m in objects:
            if m.faked:
                continue
            if m.kind is Kind.VDSO:  # its Verdef: the base version (index 1, not stored) and LINUX_2.6
                n, versions = 3, {2: process_machine(proc.profile.arch).vdso_version}
            else:
                elf = m.elf
                if elf is None or machine_of(elf) is None or (not elf.verneed and not elf.verdef):
                    continue
                high = 0
                for vn in elf.verneed:
                    needed = proc.find_needed(vn.file, m)
                    if needed is not None and needed.faked:
                        continue
                    for aux in vn.entries:
                        high = max(high, aux.other & 0x7FFF)
                for vd in elf.verdef:
                    high = max(high, vd.index & 0x7FFF)
                if high == 0:  # l_versions stays NULL: &l_versions[ndx] is ndx * size, read for ndx > 0
                    if elf.dyn(DT.VERSYM) is not None:
                        arrays[id(m)] = None
                    continue
                n = high + 1
                tab = table(m)
                versions = {k: v for k, v in (tab.versions if tab is not None else {}).items() if k < n}
            arrays[id(m)] = (offset, n, versions)
            layout.append((offset, n, versions))
            offset += (n * size + _MALLOC_ALIGNMENT - 1) & ~(_MALLOC_ALIGNMENT - 1)
        return cls(arrays, layout, pointer)

    def version(self, m: LinkMap, tab: SymbolTable, ndx: int) -> Version | None:
        if id(m) not in self.arrays:
            return tab.versions.get(ndx)
        own = self.arrays[id(m)]
        if own is None:  # every Verneed of m names a faked object and m defines no version: no array
            if ndx == 0:
                return None
            raise Exit(-SIGSEGV)  # RESOLVE_MAP reads version->hash at address ndx * size + pointer
        offset, n, versions = own
        if ndx < n:
            return versions.get(ndx)
        p = self.pointer
        at = offset + ndx * self.size
        name, word, filename = self._word(at), self._word(at + p), self._word(at + p + 8)
        if isinstance(word, str):  # the hash and hidden halves of a pointer
            hash_, hidden = _GARBAGE, True
        elif p == 4:  # hash and hidden are separate words
            hidden_word = self._word(at + 8)
            hash_, hidden = word, isinstance(hidden_word, str) or bool(hidden_word)
        else:
            hash_, hidden = word & 0xFFFFFFFF, bool(word >> 32)
        return Version(name if isinstance(name, str) else None, hash_, hidden,
                       filename if isinstance(filename, str) else None)

    def _word(self, at: int) -> str | int:
        """The pointer-sized word at `at`: a string for a pointer to one, else an integer (0 outside the
        arrays).  With 8-byte pointers hash and hidden share one word; with 4-byte ones each has its own."""
        size, p = self.size, self.pointer
        for offset, n, versions in self.layout:
            if offset <= at < offset + n * size:
                k, field = divmod(at - offset, size)
                v = versions.get(k)
                if v is None:
                    return 0
                if field == 0:
                    return v.name
                hidden = 0x8000 if v.hidden else 0
                if field == p:
                    return v.hash | (hidden << 32) if p == 8 else v.hash
                if field == 8 and p == 4:
                    return hidden
                return v.filename if v.filename is not None else 0
        return 0


def match(tab: SymbolTable, name: str, h: int, version: Version | None, plt: int) -> tuple[Sym | None, bool]:
    """do_lookup_x's walk of one object's hash chain with check_match: the definition it settles on (or
    None), and whether check_match's filename assertion applies (a versioned reference met an object
    without DT_VERSYM).  A pure function of the file and its arguments."""
    idx, assert_filename = _MATCHERS[tab.syment](tab, name.encode("utf-8", "surrogateescape"), h, version, plt)
    return (tab.symbol(idx) if idx >= 0 else None), assert_filename


def match_index(tab: SymbolTable, name: bytes, h: int, version: Version | None, plt: int) -> tuple[int, bool]:
    """`match` by symbol index (-1: none), the name as raw bytes: each hash-equal entry of the chain
    unpacked where it lies, read in the order the chain walk reads it."""
    return _MATCHERS[tab.syment](tab, name, h, version, plt)


def _matcher(unpack_sym: Callable, syment: int, unpack_word: Callable, wsize: int,
             wlog: int) -> tuple[Callable, Callable]:
    """`match_index` and `_probe` for one ELF class: the ElfW(Sym) layout and the ElfW(Addr) bloom words
    are closure constants, so the 64-bit walk (the scan's) reads no layout from the table."""
    wmask = (1 << wlog) - 1
    unpack_u32 = _U32.unpack_from
    unpack_u16 = _U16.unpack_from

    def match_index(tab: SymbolTable, name: bytes, h: int, version: Version | None, plt: int) -> tuple[int, bool]:
        if tab.nbuckets == 0:
            return -1, False
        d = tab.data
        if tab.gnu:
            word = unpack_word(d, tab.bloom_off + wsize * ((h >> wlog) & tab.bloom_mask))[0]
            if not ((word >> (h & wmask)) & (word >> ((h >> tab.shift) & wmask)) & 1):
                return -1, False
            idx = unpack_u32(d, tab.buckets_off + 4 * (h % tab.nbuckets))[0]
            if idx == 0:
                return -1, False
            chain_off = tab.chain_off - 4 * tab.symbias
            cands = None
        else:
            cands = tab.chain(_text(name), h)
            idx = 0
        symtab, strtab = tab.symtab, tab.strtab
        versym_off = tab.versym_off if tab.has_versyms else None
        num_versions = 0
        versioned = -1
        while True:
            if cands is None:
                ch = unpack_u32(d, chain_off + 4 * idx)[0]
                i = idx if not (ch ^ h) >> 1 else -1
            else:
                i = next(cands, None)
                if i is None:
                    break
                ch = 0
            if i >= 0:
                name_off, info, _, shndx, value, _ = unpack_sym(d, symtab + syment * i)
                stt = info & 0xF
                if not ((value == 0 and shndx != SHN_ABS and stt != STT.TLS) or (plt and shndx == SHN_UNDEF)) \
                        and stt in _ALLOWED and d[strtab + name_off:d.find(b"\0", strtab + name_off)] == name:
                    vs = unpack_u16(d, versym_off + 2 * i)[0] if versym_off is not None else None
                    if version is not None:
                        if vs is None:
                            return i, True
                        own = tab.versions.get(vs & 0x7FFF)
                        if not ((own is None or own.hash != version.hash or own.name != version.name)
                                and (version.hidden or (own is not None and own.hash) or vs & 0x8000)):
                            return i, False
                    elif vs is not None and (vs & 0x7FFF) >= 3:
                        if not vs & 0x8000:
                            num_versions += 1
                            if num_versions == 1:
                                versioned = i
                    else:
                        return i, False
            if ch & 1:
                break
            idx += 1
        return (versioned if num_versions == 1 else -1), False

    def probe(tab: SymbolTable, name: bytes, h: int, version: Version | None, plt: int) -> tuple[int, bool]:
        """`match` as the scan's memo keeps it: (STB of the definition, or -1 for none or one binding
        locally; the assertion flag)."""
        idx, assert_filename = match_index(tab, name, h, version, plt)
        if idx < 0:
            return _ABSENT if not assert_filename else (-1, True)
        _, info, other, _, _, _ = unpack_sym(tab.data, tab.symtab + syment * idx)
        return (-1 if other & 3 in (STV.INTERNAL, STV.HIDDEN) else info >> 4), assert_filename

    return match_index, probe


def _text(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def _keyed_versions(tab: SymbolTable) -> dict[int, tuple]:
    """l_versions entries a reference can carry (hash != 0), each with its memo-key suffixes (not PLT,
    PLT): what `match` depends on besides the name."""
    out = tab.keyed_versions
    if out is None:
        out = tab.keyed_versions = {}
        for ndx, v in tab.versions.items():
            if v.hash != 0:
                out[ndx] = (v, _version_key(v, 0), _version_key(v, 1))
    return out


def _version_key(v: Version, plt: int) -> bytes:
    """The memo-key suffix of a reference to version v: what `match` depends on besides the name."""
    return b"\0v%d\0" % plt + _text_bytes(v.name or "") + b"\0%d\0%d" % (v.hash, int(v.hidden))


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def lookup_direct(tab: SymbolTable, name: str, version: str, version_hash: int) -> Sym | None:
    """_dl_lookup_direct (elf/dl-lookup-direct.c): one object's hash chain, the definition of `name` in
    exactly that version (no hidden/default subtleties, no class check)."""
    if tab.nbuckets == 0 or tab.symtab is None:
        return None
    h = gnu_hash(name.encode()) if tab.gnu else 0
    for idx in tab.chain(name, h):
        sym = tab.symbol(idx)
        if sym.value == 0 and sym.shndx != SHN_ABS and sym.type != STT.TLS:
            continue
        if sym.type not in ALLOWED_STT or sym.name != name:
            continue
        vs = tab.versym(idx) if tab.has_versyms else None
        own = tab.versions.get(vs & 0x7FFF) if vs is not None else None
        if own is not None and own.hash == version_hash and own.name == version:
            return sym
    return None


def _range_specs(elf, lazy: bool, mach: Machine) -> list[tuple[int, int, int, bool, RelocPass]]:
    """_ELF_DYNAMIC_DO_RELOC's ranges, pass after pass, as (vaddr, size, REL(A)COUNT, lazy, pass): the
    pass's DT_REL(A), and DT_JMPREL merged into it when contiguous and not lazy (taken by a pass that
    tests DT_PLTREL only when DT_PLTREL names its tag)."""
    out = []
    has_plt = elf.dyn(DT.PLTREL) is not None and elf.dyn(DT.JMPREL) is not None
    mask = (1 << (64 if elf.is_64 else 32)) - 1  # ElfW(Addr) arithmetic
    for rpass in mach.passes:
        start, size, nrel = 0, 0, 0
        table = elf.dyn(rpass.tag)
        if table:  # with DT_RELR, DT_REL(A) can be 0
            start, size = table, elf.dyn(rpass.size_tag) or 0
            nrel = elf.dyn(rpass.count_tag) or 0
        ranges = [[start, size, nrel, False], [0, 0, 0, False]]
        if has_plt and (not rpass.test_rel or elf.dyn(DT.PLTREL) == rpass.tag):
            jstart, jsize = elf.dyn(DT.JMPREL), elf.dyn(DT.PLTRELSZ) or 0
            r0 = ranges[0]
            if r0[0] == 0:
                r0[0] = jstart
            if (r0[0] + r0[1]) & mask == (jstart + jsize) & mask:
                r0[1] = (r0[1] - jsize) & mask
            if not lazy and (r0[0] + r0[1]) & mask == jstart:
                r0[1] = (r0[1] + jsize) & mask
            else:
                ranges[1] = [jstart, jsize, 0, lazy]
        ent = _entry_format(elf.is_64, rpass.rela)[0].size
        out += [(start, _unwrapped_size(start, size, nrel, ent, mask), nrel, rlazy, rpass)
                for start, size, nrel, rlazy in ranges if size > 0]
    return out


def _unwrapped_size(start: int, size: int, nrel: int, ent: int, mask: int) -> int:
    """elf_dynamic_do_Rel (elf/do-rel.h) walks `r < end` with end = start + size in address arithmetic:
    when that wraps (a size near 2**64), only the first MIN (nrelative, size / entsize) entries — the
    relative ones — are processed, none after them."""
    if (start + size) & mask >= start:
        return size
    return min(nrel, size // ent) * ent


def _entry_format(is_64: bool, rela: bool) -> tuple[struct.Struct, int, int]:
    """An ElfW(Rel)/ElfW(Rela) entry's layout, and ELFW(R_SYM)'s shift and ELFW(R_TYPE)'s mask of r_info."""
    if is_64:
        return _RELA, 32, 0xFFFFFFFF
    return (_RELA32 if rela else _REL32), 8, 0xFF


# r_info alone, by entry size: Elf64_Rela, Elf32_Rel, Elf32_Rela
_INFOS = {24: struct.Struct("<8xQ8x"), 8: struct.Struct("<4xI"), 12: struct.Struct("<4xI4x")}
_ABSENT = (-1, False)
_WEAK, _DEFINED, _ASSERTED = 1, 2, 4  # `Binder._walk`'s answers
_SOME = _WEAK | _DEFINED
_PLAIN = (b"\0p0", b"\0p1")  # memo-key suffixes of an unversioned reference: not PLT, PLT
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_ALLOWED = frozenset(map(int, ALLOWED_STT))
# `match_index` and `_probe` by the size of an ElfW(Sym): Elf64_Sym, Elf32_Sym
_MATCHERS, _PROBES = {}, {}
for _size, _args in ((24, (struct.Struct("<IBBHQQ").unpack_from, 24, _U64.unpack_from, 8, 6)),
                     (16, (unpack_sym32, 16, _U32.unpack_from, 4, 5))):
    _MATCHERS[_size], _PROBES[_size] = _matcher(*_args)

_DEFINES = frozenset((STB.GLOBAL, STB.WEAK, STB.GNU_UNIQUE))  # r_info alone


def _references(elf, mach: Machine, decode) -> list[int]:
    """The distinct r_info values whose relocations look a symbol up when m is relocated with immediate
    binding, in the order of their first lookup (each range in order, its IRELATIVE entries last where
    the machine defers them; DT_REL(A)COUNT entries skipped as relative).  `decode` reads a range the slow
    way, when it runs past the end of the file (to fail exactly where the full relocation pass would)."""
    out: dict[int, None] = {}
    data = elf.data
    no_lookup = mach.no_lookup
    irelative = mach.irelative if mach.defer_irelative else -1
    for start, size, nrel, _, rpass in _range_specs(elf, False, mach):
        off = elf.vaddr_to_offset(start)
        if off is None:
            continue
        fmt, _, tmask = _entry_format(elf.is_64, rpass.rela)
        ent = fmt.size
        n = size // ent
        if off + n * ent > len(data):
            decode(start, size, rpass.rela)  # raises as the relocation pass would
            continue
        view = memoryview(data)[off + min(nrel, n) * ent:off + n * ent]
        infos = dict.fromkeys(info for (info,) in _INFOS[ent].iter_unpack(view))
        deferred = []
        for info in infos:
            rtype = info & tmask
            if rtype in no_lookup:
                continue
            if rtype == irelative:
                deferred.append(info)
            else:
                out[info] = None
        out.update(dict.fromkeys(deferred))
    return list(out)


def _relr_addresses(elf, word: int) -> list[int]:
    """The words DT_RELR relocates (elf/dynamic-link.h ELF_DYNAMIC_DO_RELR): an even entry is an
    address, then each odd entry a bitmap of the next word-size-minus-one words."""
    start, size = elf.dyn(DT.RELR), elf.dyn(DT.RELRSZ) or 0
    off = elf.vaddr_to_offset(start) if start else None
    if off is None or not size:
        return []
    fmt = "<Q" if word == 8 else "<I"
    out, where = [], 0
    for (entry,) in struct.iter_unpack(fmt, elf.data[off:off + size - size % word]):
        if not entry & 1:
            out.append(entry)
            where = entry + word
            continue
        bits, i = entry >> 1, 0
        while bits:
            if bits & 1:
                out.append(where + i * word)
            bits >>= 1
            i += 1
        where += (8 * word - 1) * word
    return out


def _file_word(elf, vaddr: int, word: int) -> int:
    """The word the file holds at `vaddr` (0 in the zero-filled part of a segment)."""
    off = elf.vaddr_to_offset(vaddr)
    if off is None or off + word > len(elf.data):
        return 0
    return int.from_bytes(elf.data[off:off + word], "little")


def _offset_bounds(elf, vaddr: int, size: int, rela: bool) -> tuple[int, int] | None:
    """The lowest and highest r_offset of the entries at [vaddr, vaddr+size), read without decoding
    them (None: no entry, or a table running past the end of the file: not judged here)."""
    off = elf.vaddr_to_offset(vaddr)
    fmt = struct.Struct(("<Q16x" if rela else "<Q8x") if elf.is_64 else ("<I8x" if rela else "<I4x"))
    n = size // fmt.size
    if off is None or not n or off + n * fmt.size > len(elf.data):
        return None
    offsets = [o for (o,) in fmt.iter_unpack(memoryview(elf.data)[off:off + n * fmt.size])]
    return min(offsets), max(offsets)
