"""Startup of a simulated process: mapping objects, breadth-first dependencies, preloads, the object list
and version checks.  Mirrors `_dl_map_object`/`_dl_map_object_from_fd` (elf/dl-load.c),
`_dl_map_object_deps` (elf/dl-deps.c), `dl_main` (elf/rtld.c) and `_dl_check_map_versions`
(elf/dl-version.c).  Pure given a World: results and events only, no printing.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod

TYPE_CHECKING = False

from ldsim import events as ev
from ldsim.access import R, real_access
from ldsim.config import Debug, Invocation, LoaderConfig, Mode
from ldsim.dst import DstValues, dst_count, substitute
from ldsim.elf import (DF1, DT, OUTSIDE, PT, VER_FLG_WEAK, EIClass, ElfError, ElfFile, NotElf, PastEof,
                       StringsError, Unmapped, mapped_offset, read_program_headers)
from ldsim.linkmap import FileCache, Found, Kind, LinkMap, file_id
from ldsim.mapping import Mapped, map_object
from ldsim.hwcaps import tuned_cpu
from ldsim.ldcache import CacheFault
from ldsim.record import NamedTuple, Record, Value
from ldsim.search import CacheStep, LoadError, PathStep, SearchResult, Searcher, search_steps
from ldsim.tls import initial_tls
from ldsim import mapping, vm
from ldsim.vm import map_segments_error
from ldsim.world import World
from ldsim import execution

if TYPE_CHECKING:
    from typing import NoReturn

    from ldsim.relocate import Binder

PAGE = 4096
# Linux's default vm.mmap_min_addr (x86 DEFAULT_MMAP_MIN_ADDR) and the top of a 47-bit user address space:
# the bounds within which mmap honours an address hint
MMAP_MIN_ADDR = mapping.MMAP_MIN_ADDR
TASK_SIZE = vm.TASK_SIZE[EIClass.ELF64]
# where the model puts ld.so and the vDSO (the top of mmap's region; the objects ld.so maps come below), and
# where the kernel maps a 64-bit PIE program (ELF_ET_DYN_BASE, arch/x86/include/asm/elf.h, before its
# random offset): more than 2 GiB below, so a 32-bit displacement between them overflows
RTLD_ADDR, VDSO_ADDR = 0x7FFFF7FC3000, 0x7FFFF7FC1000
ELF_ET_DYN_BASE = 0x555555554000
DT_1_SUPPORTED = (DF1.NOW | DF1.NODELETE | DF1.INITFIRST | DF1.NOOPEN | DF1.ORIGIN | DF1.NODEFLIB | DF1.PIE)
VDSO_NAME = "linux-vdso.so.1"
_DT_NEEDED = int(DT.NEEDED)  # a plain int: compared for every dependency of every object
SECURE_NAME_LIMIT, SECURE_PATH_LIMIT = 255, 4096  # NAME_MAX, PATH_MAX (elf/dl-main.h)


class MapFacts(NamedTuple):
    loads: tuple  # the PT_LOAD segments
    aligned: bool  # every PT_LOAD has vaddr = offset modulo the page size
    start: int  # first PT_LOAD's page
    size: int  # span of the PT_LOAD segments from that page
    dyn: int  # PT_DYNAMIC's vaddr (0: none)
    phdr: int  # the program headers' vaddr
    align: int  # the largest power-of-two p_align of the PT_LOAD segments (dl-load.c p_align_max)
    hash_fault: int  # the signal _dl_setup_hash's read of the hash table's header dies of, or 0
    bloom_ok: bool  # its assertion on the GNU bloom filter's size holds (see _bloom_size_ok)


SIGSEGV = 11
SIGFPE = 8
SIGBUS = 7


class Exit(Exception):
    """The simulated loader ends the process with this status (negative: killed by that signal, as
    subprocess reports it)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def version_index_high(elf: ElfFile) -> int:
    """_dl_check_map_versions' ndx_high: the highest version index among the file's Vernaux (vna_other)
    and Verdef (vd_ndx) entries; above 0 it sizes l_versions and reads DT_VERSYM."""
    return max([a.other & 0x7FFF for vn in elf.verneed for a in vn.entries]
               + [d.index & 0x7FFF for d in elf.verdef], default=0)


def _hash_fault(elf: ElfFile) -> int:
    """_dl_setup_hash reads DT_GNU_HASH's four header words (else DT_HASH's two): the signal that read
    dies of, 0 when it succeeds.  SIGSEGV outside the pages the PT_LOAD segments map or in one mapped
    PROT_NONE; SIGBUS in a page mapped from wholly past the end of the file."""
    addr, size = elf.dyn(DT.GNU_HASH), 16
    if addr is None:
        addr, size = elf.dyn(DT.HASH), 8
    if addr is None:
        return 0
    first, last = (mapped_offset(elf.segments, elf.is_64, a) for a in (addr, addr + size - 1))
    if first is None or last is None or first == OUTSIDE or last == OUTSIDE:
        return SIGSEGV  # below or past the object: where ld.so maps it, nothing is mapped there
    eof_page = (len(elf.data) + PAGE - 1) & ~(PAGE - 1)
    return SIGBUS if first >= eof_page or last >= eof_page else 0


def _bloom_size_ok(elf: ElfFile) -> bool:
    """_dl_setup_hash asserts that DT_GNU_HASH's bloom filter has a power-of-two number of words (0
    passes).  Bytes the file does not hold read as zeros."""
    addr = elf.dyn(DT.GNU_HASH)
    off = elf.vaddr_to_offset(addr + 8) if addr is not None else None
    if off is None or off + 4 > len(elf.data):
        return True
    nwords = int.from_bytes(bytes(elf.data[off:off + 4]), "little" if elf.little else "big")
    return nwords & (nwords - 1) == 0


def dynamic_info_assertion(elf: ElfFile) -> str | None:
    """The first of elf_get_dynamic_info's assertions on the relocation tables' tags that fails
    (elf/get-dynamic-info.h, x86-64's ELF_MACHINE_NO_REL, i386's neither): its line (a multi-line
    assert's first) and expression, or None.  An entry-size tag missing beside its table is a NULL dereference: SIGSEGV."""
    pltrel = elf.dyn(DT.PLTREL)
    if elf.is_64 and pltrel is not None and pltrel != DT.RELA:
        return "115: elf_get_dynamic_info: Assertion `info[DT_PLTREL]->d_un.d_val == DT_RELA' failed!"
    if not elf.is_64 and pltrel is not None and pltrel not in (DT.REL, DT.RELA):
        return ("117: elf_get_dynamic_info: Assertion `info[DT_PLTREL]->d_un.d_val == DT_REL || "
                "info[DT_PLTREL]->d_un.d_val == DT_RELA' failed!")
    word = 8 if elf.is_64 else 4
    checks = [(DT.RELA, DT.RELAENT, 3 * word, "123", "Rela")]
    if not elf.is_64:
        checks.append((DT.REL, DT.RELENT, 2 * word, "127", "Rel"))
    checks.append((DT.RELR, DT.RELRENT, word, "130", "Relr"))
    for table, ent, size, line, name in checks:
        if elf.dyn(table) is None:
            continue
        if elf.dyn(ent) is None:
            raise Exit(-SIGSEGV)
        if elf.dyn(ent) != size:
            return (f"{line}: elf_get_dynamic_info: Assertion `info[DT_{name.upper()}ENT]->d_un.d_val == "
                    f"sizeof (ElfW({name}))' failed!")
    return None


def has_strtab(main: LinkMap) -> bool:
    """dl_main's audit_list_add_dynamic_tag (rtld.c:1830, before --help's output and the preloads) reads
    D_PTR (main_map, l_info[DT_STRTAB]) whether or not DT_AUDIT is there: a program without DT_STRTAB
    (no dynamic section: a static non-PIE program under --list, --help or LD_TRACE_LOADED_OBJECTS,
    which are not chain-loaded with execve) dereferences NULL, SIGSEGV."""
    return main.elf is None or main.elf.dyn(DT.STRTAB) is not None


class Request(Record):
    """One `_dl_map_object` call: who asked for which name, how it ended (for `why` and `tree`).

    result: None when the request failed (error says why); search: None when the already-loaded check
    answered; reused: "name" / "soname" (already-loaded check) or "file" (same dev/ino reached by another
    name); via: "program", "needed", "filter", "auxiliary", or the preload source (LD_PRELOAD, --preload,
    file)."""

    __slots__ = _fields = ("loader", "name", "via", "result", "search", "reused", "error")

    def __init__(self, loader: LinkMap | None, name: str, via: str, result: LinkMap | None = None,
                 search: SearchResult | None = None, reused: str | None = None, error: str | None = None) -> None:
        self.loader = loader
        self.name = name
        self.via = via
        self.result = result
        self.search = search
        self.reused = reused
        self.error = error


class Startup(Value):
    """What a simulated startup produced."""

    _fields = ("main", "objects", "searchlist", "events", "status", "preloads", "requests", "initfini",
               "running_from")

    def __init__(self, main: LinkMap | None = None, objects: list[LinkMap] | None = None,
                 searchlist: list[LinkMap] | None = None, events: list[ev.Event] | None = None,
                 status: int | None = None, preloads: list[LinkMap] | None = None,
                 requests: list[Request] | None = None, initfini: list[LinkMap] | None = None,
                 running_from: int | None = None) -> None:
        self.main = main
        self.objects = [] if objects is None else objects  # the l_next chain
        self.searchlist = [] if searchlist is None else searchlist  # main's l_searchlist (global scope)
        self.events = [] if events is None else events
        self.status = status  # exit status if the loader stopped the process
        self.preloads = [] if preloads is None else preloads
        self.requests = [] if requests is None else requests  # every map_object call, in order
        # main's l_initfini (sorted); None when the run ended before, or only listed its objects
        self.initfini = initfini
        # events[running_from:] happen once the program runs (its exit: fini calls, final statistics);
        # None when control was never transferred to it
        self.running_from = running_from


FATAL = "fatal, the search stops: "


def _stopped(res: SearchResult, step: object, e: LoadError) -> None:
    """Record (for `why`) the candidate open_verify found fatal: _dl_map_object tries nothing after it."""
    if res.tried and res.tried[-1].path == e.objname:
        res.tried[-1:] = []  # open_verify's own note ("too short") becomes the fatal verdict
    res.candidate(e.objname, FATAL + e.message)
    res.step_outcome(step, "stopped")


class Process:
    """One simulated process.  `direct` = ld.so invoked explicitly (`ld.so PROG`, what ldd does).
    `record` = keep a `Request` for every `_dl_map_object` call in `result.requests` (why, tree and
    explanations read them; a run that is only rendered does not need them)."""

    def __init__(self, world: World, inv: Invocation, cfg: LoaderConfig, files: FileCache, *,
                 program: str, direct: bool, rtld_path: str | None = None, record: bool = True) -> None:
        self.world = world
        self.inv = inv
        self.cfg = cfg
        self.files = files
        self.profile = inv.profile
        self.program = program
        self.direct = direct
        self.argv0 = cfg.argv0 if cfg.argv0 is not None else program
        self.result = Startup()
        self.objects = self.result.objects
        # the CPU as glibc.cpu.hwcaps left it (the ISA-level check still uses isa_1, computed before)
        self.cpu = tuned_cpu(inv.cpu, self.profile.arch, cfg.tunables.cpu_hwcaps)
        self.searcher = Searcher(world, self.profile, self.cpu, cfg, self.emit, lambda: self.argv0, files,
                                 lambda: self.rtld_path if self.direct else self.program)
        self.main: LinkMap | None = None
        self.rtld: LinkMap | None = None
        self.rtld_path = rtld_path  # None in exec mode: the program's PT_INTERP decides
        self._next_addr = VDSO_ADDR  # ld.so maps objects below itself, as mmap does without a hint
        self._mapped: list[tuple[int, int]] = []  # address ranges taken, for mmap's address hints
        self.unchained: set[int] = set()  # ids of the maps no walk of the l_next chain reaches (map_deps)
        self._program_file: object = None  # (dev, ino) of the program ld.so mapped itself (direct mode)
        self._shown: dict[type, bool] = {}
        self.quiet = not int(cfg.debug)  # no LD_DEBUG category: debug events are not even built
        self.record = record
        self._binder: Binder | None = None
        self._vdso: LinkMap | None = None
        self._facts: dict[int, MapFacts] = files.memo.setdefault("map facts", {})  # by id(ElfFile)
        # (id of the file, opened as the program, the host's memory) -> outcome of the mapping pass
        self._map_outcomes: dict[tuple[int, bool, object], Mapped] = files.memo.setdefault("mapping", {})
        # id(elf) -> its (hash, name) definitions; id(verneed) -> the (hash, name) it asks for.  Kept with
        # the parsed files (which outlive every process of a run), so ids stay valid and unique
        self._verdefs: dict[int, frozenset[tuple[int, str]] | None] = files.memo.setdefault("verdefs", {})
        self._verneeds: dict[int, tuple] = files.memo.setdefault("version needs", {})  # id(elf) -> see _needs
        self._cache_found: dict[str, Found] = files.memo.setdefault(("cache found", self.profile.cache_file), {})
        self._relr_fatal: dict[int, bool] = files.memo.setdefault("relr fatal", {})  # id(elf) -> _relr_fatal(elf)

    @property
    def binder(self) -> Binder:
        """The symbol lookup state, made with the vDSO's setup_vdso_pointers lookups when first needed:
        quiet runs that only list their objects (plain `ldd`) never import ldsim.relocate/ldsim.symbols.
        AttributeError before startup has mapped the vDSO (as when it was a plain attribute)."""
        if self._binder is None:
            if self._vdso is None:
                raise AttributeError("binder")
            from ldsim.relocate import Binder
            self._binder = Binder(self, self.files.symbols)
            self._binder.vdso_setup(self._vdso)  # setup_vdso_pointers
        return self._binder

    # -- events ----------------------------------------------------------------------------------

    def emit(self, e: ev.Event) -> None:
        if self._shown.get(e.__class__) or self._shows(e.__class__):  # category is per event class
            self.result.events.append(e)

    def _shows(self, cls: type) -> bool:
        """Would an event of this class be kept?  (Its category is a class attribute.)"""
        shown = self._shown.get(cls)
        if shown is None:
            shown = self._shown[cls] = cls.category == 0 or bool(int(self.cfg.debug) & int(cls.category))
        return shown

    def out(self, text: str, stream: int = 1) -> None:
        self.result.events.append(ev.Output(text, stream))

    def listed(self) -> list[LinkMap]:
        """The objects dl_main's trace lists (elf/rtld.c): the l_next chain after main_map (from main_map
        itself for LD_TRACE_LOADED_OBJECTS=2), see loaded_chain."""
        chain = self.loaded_chain()
        return chain if self.cfg.trace_program or not chain or chain[0] is not self.main else chain[1:]

    def dso_filename(self, m: LinkMap) -> str:
        return m.name or self.argv0

    def fatal(self, err: LoadError, occasion: str = "error while loading shared libraries",
              progname: str | None = None) -> None:
        """fatal_error (elf/dl-error-skeleton.c): exit 127.  `progname`: RTLD_PROGNAME when it is not
        yet argv0 (the program itself could not be mapped)."""
        from ldsim.glibc import ldso_strerror
        suffix = f": {ldso_strerror(err.errcode)}" if err.errcode else ""
        objname = f"{err.objname}: " if err.objname else ""
        self.out(f"{progname or self.argv0}: {occasion}: {objname}{err.message}{suffix}\n", 2)
        raise Exit(127)

    # -- DSTs ------------------------------------------------------------------------------------

    def dst_values(self, m: LinkMap) -> DstValues:
        return DstValues(origin=m.origin, platform=self.cpu.platform, lib=self.profile.lib,
                         secure=self.cfg.secure, is_executable=m.kind is Kind.MAIN,
                         trusted_dirs=self.profile.system_dirs)

    def origin_of_path(self, realname: str) -> str | None:
        """_dl_new_object: directory of the name as opened, prefixed with cwd when relative."""
        path = realname if realname.startswith("/") else self.inv.cwd.rstrip("/") + "/" + realname
        cut = path.rfind("/")
        return path[:cut] if cut > 0 else "/"

    # -- RPATH / RUNPATH -------------------------------------------------------------------------

    def _decompose(self, m: LinkMap, value: str, what: str) -> list | bool:
        """decompose_rpath: honours --inhibit-rpath (not in secure mode); False = nothing usable."""
        inhibit = self.cfg.inhibit_rpath
        if inhibit is not None and not self.cfg.secure and rpath_inhibited(inhibit, m.name):
            return False
        if value == "":
            return False
        recs = self.searcher.fillin(value, ":", what, m.name, self.dst_values(m))
        return recs or False

    def rpath_of(self, m: LinkMap) -> list | None:
        if m.rpath_dirs is None:
            rp = m.elf.effective_rpath if m.elf else None
            m.rpath_dirs = self._decompose(m, rp, "RPATH") if rp is not None else False
        return m.rpath_dirs or None

    def runpath_of(self, m: LinkMap) -> list | None:
        if m.runpath_dirs is None:
            rp = m.elf.runpath if m.elf else None
            m.runpath_dirs = self._decompose(m, rp, "RUNPATH") if rp is not None else False
        return m.runpath_dirs or None

    # -- mapping one object ----------------------------------------------------------------------

    def map_object(self, loader: LinkMap | None, name: str, *, exe: bool = False,
                   secure_preload: bool = False, trace: bool = False,
                   paths_ready: bool = True, via: str = "needed") -> LinkMap:
        """_dl_map_object: already-loaded check, search, then map (or fake, in trace mode)."""
        for m in self.objects:  # hot: name_matches and soname inlined
            if m.faked:
                continue
            if name == m.name or name in m.names:
                if self.record:
                    self.result.requests.append(Request(loader, name, via, m, reused="name"))
                return m
            if not m.soname_added and m.elf is not None and m.elf.soname == name:
                m.names.append(name)
                m.soname_added = True
                if self.record:
                    self.result.requests.append(Request(loader, name, via, m, reused="soname"))
                return m
        if loader is not None and not self.quiet:
            self.emit(ev.FileNeeded(name, self.dso_filename(loader)))
        res = SearchResult(None, None, None, record=self.record)
        if not self.record:
            return self._map_searched(loader, name, res, exe, secure_preload, trace, paths_ready, None)
        req = Request(loader, name, via, search=res)
        self.result.requests.append(req)
        try:
            m = self._map_searched(loader, name, res, exe, secure_preload, trace, paths_ready, req)
        except LoadError as e:
            req.error = e.message
            raise
        req.result = m
        return m

    def _map_searched(self, loader: LinkMap | None, name: str, res: SearchResult, exe: bool,
                      secure_preload: bool, trace: bool, paths_ready: bool, req: Request | None) -> LinkMap:
        if "/" not in name:
            if not self.quiet:
                self.emit(ev.FindLibrary(name))
            opened = self._search(loader, name, res, secure_preload, paths_ready)
            if not self.quiet:
                self.emit(ev.SearchDone())
            realname = res.path
        else:
            realname = substitute(name, self.dst_values(loader)) if loader is not None and dst_count(name) else name
            opened = self.searcher.open_verify(realname, res) if realname else None
            if opened is not None:
                res.found = Found("direct", None, None, "", realname)
        if opened is None:
            if trace:
                fake = LinkMap(name=name, names=[name], kind=Kind.LIB, faked=True, loader=loader)
                self.objects.append(fake)
                return fake
            raise self._not_found(name, res)
        before = len(self.objects)
        m = self._map_from_file(name, realname, opened, loader, res.found, exe)
        if len(self.objects) == before and req is not None:
            req.reused = "file"
        return m

    def _not_found(self, name: str, res: SearchResult) -> LoadError:
        """_dl_map_object's error when no file was opened: only candidates of the other class, or none."""
        if res.other_class:
            return LoadError(name, "wrong ELF class: ELFCLASS32" if self.profile.ei_class == 2
                             else "wrong ELF class: ELFCLASS64", 0)
        return LoadError(name, "cannot open shared object file", self.searcher.errno)

    def _search(self, loader: LinkMap | None, name: str, res: SearchResult, secure_preload: bool,
                paths_ready: bool) -> object:
        s = self.searcher
        for step in search_steps(s, loader, self.main, self.rpath_of, self.runpath_of, secure_preload,
                                 paths_ready):
            if isinstance(step, CacheStep):
                try:
                    cached = s.cache_lookup(name)
                except CacheFault:
                    raise Exit(-SIGSEGV) from None  # glibc_hwcaps_priorities_init runs off its array
                if cached is None:
                    res.step_outcome(step, "no cache entry")
                    continue
                if not self.quiet:
                    self.emit(ev.TryFile(cached))
                owner = loader or self.main or self.rtld
                if owner is not None and owner.elf is not None and owner.elf.flags_1 & DF1.NODEFLIB \
                        and any(cached.startswith(d) for d in self.profile.system_dirs):
                    res.step_outcome(step, "skipped: DF_1_NODEFLIB", cached)
                    continue
                try:
                    opened = s.open_verify(cached, res)
                except LoadError as e:
                    _stopped(res, step, e)
                    raise
                if opened is not None:
                    res.path = cached
                    found = self._cache_found.get(cached)  # Found is immutable: one per path
                    if found is None:
                        found = self._cache_found[cached] = Found("cache", None, self.profile.cache_file, "", cached)
                    res.found = found
                    res.step_outcome(step, "found", cached)
                    return opened
                res.step_outcome(step, "not found", cached)
                continue
            assert isinstance(step, PathStep)
            if step.step == "system search path":
                owner = loader or self.main
                if owner is not None and owner.elf is not None and owner.elf.flags_1 & DF1.NODEFLIB:
                    res.step_outcome(step, "skipped: DF_1_NODEFLIB")
                    continue
            try:
                opened = s.open_path(name, step, secure_preload, res)
            except LoadError as e:
                _stopped(res, step, e)
                raise
            res.step_outcome(step, "found" if opened is not None else "not found")
            if opened is not None:
                res.path = res.found.path if res.found else None
                return opened
        return None

    def _map_from_file(self, name: str, realname: str, opened, loader: LinkMap | None,
                       found: Found | None, exe: bool) -> LinkMap:
        """_dl_map_object_from_fd: (dev, ino) dedupe, then the checks of a real mapping."""
        fid = None if exe else file_id(opened.st)
        if exe:
            self._program_file = file_id(opened.st)
        if fid is not None:
            for m in self.objects:
                if m.file_id == fid:
                    if name not in m.names and name != m.name:
                        m.names.append(name)
                    return m
        strings: ElfError | None = None  # the strings cannot be read: met once the object is set up
        try:
            elf, unreadable = self.files.parse(opened), None
        except StringsError as e:
            elf, unreadable, strings = e.partial, None, e.cause
        except ElfError as e:
            elf, unreadable = None, e
        if not self.quiet:
            self.emit(ev.GeneratingLinkMap(name))
        self._map_segments(name, elf, opened, exe)
        if unreadable is not None:
            self._unreadable(name, unreadable)
        assert elf is not None
        facts = self._map_facts(elf)
        self._check_dynamic_info(elf)
        if elf.flags_1 & ~DT_1_SUPPORTED:
            self.emit(ev.UnsupportedFlags1(elf.flags_1 & ~DT_1_SUPPORTED))
        if elf.flags_1 & DF1.PIE and not exe:
            raise LoadError(name, "cannot dynamically load position-independent executable", 0)
        layout = self._layout(elf, facts, False)
        if not self.quiet:
            self.emit(ev.MappedObject(*layout, elf.e_phnum, 16 if elf.is_64 else 8))
        self._setup_hash(facts)  # after the dynamic: lines
        if strings is not None and not (exe and self.cfg.mode is Mode.VERIFY):  # --verify reads none
            self._unreadable(name, strings)
        m = LinkMap(name=realname, names=[name], kind=Kind.MAIN if exe else Kind.LIB, elf=elf, file_id=fid,
                    loader=loader, origin=self.origin_of_path(realname), found=found,
                    map_start=layout[1] + facts.start, mode_st=opened.st.st_mode, addr=layout[1])
        self.objects.append(m)
        return m

    @staticmethod
    def _unreadable(name: str, e: ElfError) -> NoReturn:
        """The loader's first read of something the file does not hold: past EOF in a mapped page
        (SIGBUS), an address nothing readable is mapped at (SIGSEGV); other malformations (strings out
        of the file, endless version chains) are not simulated: one line, as a failed load."""
        if isinstance(e, PastEof):
            raise Exit(-SIGBUS)
        if isinstance(e, Unmapped):
            raise Exit(-SIGSEGV)
        raise LoadError(name, f"cannot map ELF file: {e}", 0)

    def _map_segments(self, name: str, elf: ElfFile | None, opened, exe: bool) -> None:
        """The mapping pass of _dl_map_object_from_fd, before the dynamic section is read: its errors
        and faults come first (`ldsim.mapping`).  Worked out once per file and way of opening."""
        key = (id(elf), exe, self.inv.memory)  # the overcommit answer depends on the host's memory
        mapped = self._map_outcomes.get(key) if elf is not None else None
        if mapped is None:
            try:
                hdr = elf if elf is not None else read_program_headers(opened.data)
            except ElfError:
                return  # open_verify read these program headers: only a short read fails here
            mapped = map_object(hdr.e_type, hdr.segments, exe, opened.data[4] == 2, len(opened.data))
            if elf is not None:
                if mapped.error is None and mapped.signal is None:
                    mapped = self._overcommit(elf) or mapped
                self._map_outcomes[key] = mapped
        if mapped.signal is not None:
            raise Exit(-mapped.signal)
        if mapped.error is not None:
            raise LoadError(name, mapped.error, 0)

    def _overcommit(self, elf: ElfFile) -> Mapped | None:
        """The same mappings charged against the host's overcommit policy (ldsim.vm): a private writable
        mapping larger than RAM plus swap is refused under the heuristic mode, whatever the address space
        allows (ldsim.mapping has judged the address space already)."""
        facts = self._map_facts(elf)
        if not facts.loads:
            return None
        refused = map_segments_error(facts.loads, facts.align, elf.e_type != 3, elf.ei_class, self.inv.memory)
        return None if refused is None else Mapped(refused)

    def _map_facts(self, elf: ElfFile) -> MapFacts:
        """What mapping needs of a file's program headers: worked out once per file, not per process."""
        facts = self._facts.get(id(elf))
        if facts is None:
            loads = tuple(s for s in elf.segments if s.type == PT.LOAD)
            start = loads[0].vaddr & ~(PAGE - 1) if loads else 0
            dyn = next((s.vaddr for s in elf.segments if s.type == PT.DYNAMIC), 0)
            phdr = next((s.vaddr for s in elf.segments if s.type == PT.PHDR), None)
            if phdr is None:
                phdr = next((s.vaddr + elf.e_phoff - s.offset for s in loads
                             if s.offset <= elf.e_phoff < s.offset + s.filesz), 0)
            align = max((s.align for s in loads if s.align and not s.align & (s.align - 1)), default=0)
            facts = self._facts[id(elf)] = MapFacts(
                loads, all((s.vaddr - s.offset) % PAGE == 0 for s in loads), start,
                loads[-1].vaddr + loads[-1].memsz - start if loads else 0, dyn, phdr, align,
                _hash_fault(elf), _bloom_size_ok(elf))
        return facts

    def _layout(self, elf: ElfFile, facts: MapFacts, by_kernel: bool) -> tuple[int, int, int, int, int]:
        """A plausible mapping (dynamic, base, size, entry, phdr).  Only size is printed unmasked, but
        whether the load bias (base) is 0 decides which objects LD_DEBUG=statistics counts relative
        relocations of: an executable's is; so is an object's that ld.so maps (_dl_map_segments) where its
        first PT_LOAD asks, which mmap grants as a hint when that range is free.  The kernel maps a PIE
        program at ELF_ET_DYN_BASE plus a random offset, whatever its addresses."""
        if not facts.loads:
            return (0, 0, 0, 0, 0)
        length = (facts.size + PAGE - 1) & ~(PAGE - 1)
        if elf.e_type == 2:
            base = 0
        elif not by_kernel and self._hint_granted(facts, length):
            base = 0
        elif by_kernel and elf.is_64:
            base = ELF_ET_DYN_BASE - (facts.start & ~(PAGE - 1))
        else:
            self._next_addr -= length + PAGE
            base = self._next_addr - facts.start
        self._mapped.append((base + facts.start, base + facts.start + length))
        return (base + facts.dyn if facts.dyn else 0, base, facts.size, base + elf.e_entry, base + facts.phdr)

    def _check_dynamic_info(self, elf: ElfFile, where: str = "") -> None:
        """`where`: how the including file names the header in __FILE__ ("./" from rtld.c)."""
        failed = dynamic_info_assertion(elf)
        if failed is not None:
            self.out(f"Inconsistency detected by ld.so: {where}get-dynamic-info.h: {failed}\n", 2)
            raise Exit(127)

    def _setup_hash(self, facts: MapFacts) -> None:
        """_dl_setup_hash (elf/dl-setup_hash.c): it reads the table's first words, and asserts the bloom
        filter's size."""
        if facts.hash_fault:
            raise Exit(-facts.hash_fault)
        if not facts.bloom_ok:
            self.out("Inconsistency detected by ld.so: dl-setup_hash.c: 36: _dl_setup_hash: Assertion "
                     "`(bitmask_nwords & (bitmask_nwords - 1)) == 0' failed!\n", 2)
            raise Exit(127)

    def _hint_granted(self, facts: MapFacts, length: int) -> bool:
        """Whether ld.so's mmap at the first PT_LOAD's page returns exactly that page: a hint below
        mmap_min_addr is raised to it (round_hint_to_min), one whose range meets a mapping is not used;
        with a p_align above the page size the reservation is longer and its start is then aligned up."""
        hint = facts.start
        if not hint or hint < MMAP_MIN_ADDR:
            return False
        if facts.align > PAGE:
            if hint % facts.align:
                return False
            length = length + facts.align if length >= facts.align else 2 * facts.align
        end = hint + length
        return end <= TASK_SIZE and all(end <= lo or hi <= hint for lo, hi in self._mapped)

    # -- dependencies ----------------------------------------------------------------------------

    def expand_dep(self, m: LinkMap, raw: str, fatal: bool) -> str | None:
        """dl-deps.c expand_dst: DSTs in DT_NEEDED/FILTER/AUXILIARY names; None = skip this entry."""
        if "$" not in raw or not dst_count(raw):
            return raw
        if self.cfg.secure:
            raise LoadError(raw, "DST not allowed in SUID/SGID programs", 0)
        value = substitute(raw, self.dst_values(m))
        if value:
            return value
        if fatal:
            raise LoadError(raw, "empty dynamic string token substitution", 0)
        self.emit(ev.EmptyDstAuxiliary(raw))
        return None

    def map_deps(self, root: LinkMap, preloads: list[LinkMap], trace: bool) -> list[LinkMap]:
        """_dl_map_object_deps: the breadth-first search list, filtees inserted before their filter.
        Entries carry `done` as the `known` list's do: a filtee takes its filter's slot with done = 0, so
        it is processed right after its filter (its own dependencies and filters included), and a reserved
        filtee found after the slot is moved there (processed again)."""
        work: list[list] = [[m, False] for m in (root, *preloads)]  # [map, done]
        reserved = {id(m) for m, _ in work}
        states: set | None = None  # once a filtee has been moved: the list states seen, to catch a cycle
        i = 0
        while i < len(work):
            if states is not None:
                state = (i, tuple((id(m), done) for m, done in work))
                if state in states:
                    # filters that move each other forward forever (A filters B, B filters A): each round
                    # allocas another list entry until the stack overflows
                    raise Exit(-SIGSEGV)
                states.add(state)
            runp = i
            m = work[runp][0]
            work[runp][1] = True
            orig = runp  # the insertion point for filtees
            if m.elf is not None and not m.faked:
                for tag, raw in m.elf.deps:
                    if tag == _DT_NEEDED:
                        name = raw if "$" not in raw else self.expand_dep(m, raw, fatal=False)
                        if name is None:
                            continue
                        dep = self.map_object(m, name, trace=trace)
                        if id(dep) not in reserved:
                            reserved.add(id(dep))
                            work.append([dep, False])
                        m.deps.append(dep)
                        continue
                    aux = tag == DT.AUXILIARY
                    name = self.expand_dep(m, raw, fatal=not aux)
                    if name is None:
                        continue
                    self.emit(ev.LoadAuxiliary(name, self.dso_filename(m)))
                    try:
                        filtee = self.map_object(m, name, trace=trace, via="auxiliary" if aux else "filter")
                    except LoadError:
                        if aux:
                            continue
                        raise
                    if m is self.main and filtee is not m and filtee.file_id == self._program_file is not None:
                        # the main map knows no file id, so its own file comes back as a second object; the
                        # real loader then fails allocating (its search list, or the initial thread's TLS)
                        raise NotImplementedError("a program whose filtee is its own file (`ld.so LIB`, LIB "
                                                  "filtering itself by another name) is not simulated")
                    m.deps.append(filtee)
                    if id(filtee) in reserved:
                        # looked for only after the slot: earlier (or the slot itself) leaves the list alone
                        late = next((k for k in range(orig + 1, len(work)) if work[k][0] is filtee), None)
                        if late is None:
                            continue
                        del work[late]
                        states = set() if states is None else states
                    else:
                        reserved.add(id(filtee))
                    work.insert(orig, [filtee, False])
                    orig += 1
                    if filtee in self.objects and m in self.objects:
                        self.objects.remove(filtee)
                        if m is not self.objects[0]:
                            self.objects.insert(self.objects.index(m), filtee)
                        else:
                            self.unchained.add(id(filtee))
                        # else: the filter heads the chain (l_prev NULL, GL(dl_ns)._ns_loaded): the filtee
                        # becomes its l_prev, out of reach of every walk of the chain (the trace's list, the
                        # version checks, the "already loaded" tests); its l_versions stays NULL
            if work[runp][1]:
                i = runp + 1
                while i < len(work) and work[i][1]:
                    i += 1
        return [m for m, _ in work if not m.faked]

    # -- versions --------------------------------------------------------------------------------

    def find_needed(self, name: str, m: LinkMap) -> LinkMap | None:
        """dl-version.c find_needed: the chain from `_ns_loaded`, then the main map's search list."""
        for o in self.loaded_chain():
            if name == o.name or name in o.names:  # name_matches, inlined
                return o
        for o in (self.result.searchlist if m is self.main else []):
            if name == o.name or name in o.names:
                return o
        return None

    def loaded_chain(self) -> list[LinkMap]:
        """The l_next chain from `_ns_loaded`, the main map, that _dl_check_all_versions, find_needed and
        ldd -v walk: the object list itself, since map_deps keeps a filtee of the main map (moved in front
        of it by _dl_map_object_deps, with no l_prev) off the list (`unchained`)."""
        return self.objects

    def check_versions(self, trace: bool) -> bool:
        """_dl_check_all_versions with verbose=1; True when a fatal version error was found."""
        failed = False
        quiet = not self._shows(ev.CheckingVersion)
        chain = self.loaded_chain()
        by_name: dict[str, LinkMap] = {}  # find_needed's answer for the whole chain: first object wins
        for o in chain:
            by_name.setdefault(o.name, o)
            for n in o.names:
                by_name.setdefault(n, o)
        for m in chain:
            elf = m.elf
            if m.faked or elf is None:
                continue
            if elf.verneed and elf.verneed[0].version != 1:  # _dl_check_map_versions: fatal, first record only
                self.fatal(LoadError(self.dso_filename(m),
                                     f"unsupported version {elf.verneed[0].version} of Verneed record", 0))
            for vn, wanted in self._needs(elf):
                needed = by_name.get(vn.file) or self.find_needed(vn.file, m)
                if needed is None:
                    self.out("Inconsistency detected by ld.so: dl-version.c: 204: _dl_check_map_versions: "
                             "Assertion `needed != NULL' failed!\n", 2)
                    raise Exit(127)
                if trace and needed.faked:
                    continue
                nelf = needed.elf
                if quiet and nelf is not None and nelf.verdef and wanted <= (self._defined(nelf) or frozenset()):
                    continue  # all found: nothing to show, nothing to report
                req = self.dso_filename(m)
                for aux in vn.entries:
                    failed |= self._match_version(req, aux, needed)
            if elf.dyn(DT.VERSYM) is None and version_index_high(elf) and elf.dyn(DT.STRTAB) is not None:
                raise Exit(-SIGSEGV)  # l_versyms = D_PTR (map, l_info[VERSYMIDX (DT_VERSYM)]): NULL
            fatal = self._relr_fatal.get(id(elf))
            if fatal is None:
                fatal = self._relr_fatal[id(elf)] = _relr_fatal(elf)
            if fatal:
                self.fatal(LoadError(self.dso_filename(m), "DT_RELR without GLIBC_ABI_DT_RELR dependency", 0))
        return failed

    def _needs(self, elf: ElfFile) -> tuple:
        """Each Verneed of the file with the (hash, name) pairs it asks for: worked out once per file."""
        needs = self._verneeds.get(id(elf))
        if needs is None:
            needs = self._verneeds[id(elf)] = tuple(
                (vn, frozenset((a.hash, a.name) for a in vn.entries)) for vn in elf.verneed)
        return needs

    def _match_version(self, req: str, aux, needed: LinkMap) -> bool:
        definer = self.dso_filename(needed)
        if self._shows(ev.CheckingVersion):  # not built when LD_DEBUG hides it
            self.emit(ev.CheckingVersion(aux.name, definer, req))
        verdef = needed.elf.verdef if needed.elf else self._vdso_verdef(needed)
        if not verdef:
            self._version_error(definer, f"no version information available (required by {req})")
            return False
        defined = self._defined(needed.elf) if needed.elf is not None else None
        if defined is not None:
            if (aux.hash, aux.name) in defined:
                return False
        else:
            for d in verdef:  # match_symbol's walk, each record's vd_version checked before its hash
                if d.version != 1:
                    self._version_error(definer, f"unsupported version {d.version} of Verdef record")
                    return True
                if d.hash == aux.hash and d.names and d.names[0] == aux.name:
                    return False
        if aux.flags & VER_FLG_WEAK:
            self._version_error(definer, f"weak version `{aux.name}' not found (required by {req})")
            return False
        self._version_error(definer, f"version `{aux.name}' not found (required by {req})")
        return True

    def _defined(self, elf: ElfFile) -> frozenset[tuple[int, str]] | None:
        """The (hash, name) pairs the file's Verdef records define; None when one of them is not of version
        1 (match_symbol must then walk them in order)."""
        if id(elf) not in self._verdefs:
            ok = all(d.version == 1 for d in elf.verdef)
            self._verdefs[id(elf)] = frozenset((d.hash, d.names[0]) for d in elf.verdef if d.names) if ok else None
        return self._verdefs[id(elf)]

    def _vdso_verdef(self, m: LinkMap) -> tuple:
        from ldsim.elf import Verdef, elf_hash
        if m.kind is Kind.VDSO:
            from ldsim.relocate import process_machine
            version = process_machine(self.profile.arch).vdso_version
            return (Verdef(1, 1, elf_hash(self.profile.vdso.encode()), (self.profile.vdso,)),
                    Verdef(2, 0, version.hash, (version.name,)))
        return ()

    def _version_error(self, objname: str, message: str) -> None:
        """_dl_signal_cexception under _dl_receive_error(print_missing_version)."""
        self.emit(ev.DebugError(objname, "version lookup error", message, True))
        self.out(f"{self.argv0}: {objname}: {message}\n", 2)

    # -- startup ---------------------------------------------------------------------------------

    def _make_rtld(self, main_elf: ElfFile | None) -> LinkMap:
        """The loader's own map: named by how it was reached, known also by PT_INTERP and its soname.
        rtld.c fills it in by hand, never through _dl_map_object_from_fd, so its l_file_id stays zero: a
        DT_NEEDED reaching the same file by another path (not one of these names) maps a second copy."""
        name = self.rtld_path or (main_elf.interp if main_elf is not None and main_elf.interp
                                  else self.profile.rtld)
        first = main_elf.interp if main_elf is not None and main_elf.interp else name
        elf = None
        try:
            elf = self.files.parse(self.files.open(self.world, name))
        except (OSError, ElfError):
            pass
        names = [first]
        soname = elf.soname if elf else self.profile.rtld_soname
        if soname and soname != first:
            names.append(soname)
        return LinkMap(name=name, names=names, kind=Kind.RTLD, elf=elf, file_id=None,
                       soname_added=True, map_start=RTLD_ADDR, addr=RTLD_ADDR)

    def start(self) -> Startup:
        try:
            self._start()
        except Exit as e:
            self.result.status = e.status
        return self.result

    def _start(self) -> None:
        cfg = self.cfg
        trace = cfg.tracing
        main = self._map_main()
        self.main = main
        self.result.main = main
        if self.direct and cfg.mode is Mode.NORMAL:
            self._chain_load(main)
        self.start_args_adjust()
        if cfg.mode is Mode.VERIFY:
            raise Exit(0 if main.elf.interp is not None else 2) if main.elf.has_dynamic else Exit(1)
        self.rtld = self._make_rtld(main.elf)
        vdso = LinkMap(name=self.profile.vdso, names=[self.profile.vdso], kind=Kind.VDSO, soname_added=True,
                       map_start=VDSO_ADDR, addr=VDSO_ADDR)
        self.objects[:] = [main, self.rtld, vdso]
        self._vdso = vdso
        vdso.used = True  # setup_vdso_pointers finds its five symbols there
        if not self.quiet:  # its lookups are debug events: made here, in their place
            _ = self.binder
        # _dl_init_paths: main's RUNPATH or RPATH, then LD_LIBRARY_PATH (system records exist already)
        if main.elf.runpath is not None:
            self.runpath_of(main)
            main.rpath_dirs = False
        else:
            main.runpath_dirs = False
            self.rpath_of(main)
        self.searcher.init_env_paths(self.dst_values(main))
        if not has_strtab(main):
            raise Exit(-SIGSEGV)
        self._load_audit_modules(main)
        preloads = self._preloads(main, trace)
        self.result.preloads = preloads
        try:
            searchlist = self.map_deps(main, preloads, trace)
        except LoadError as e:
            self.fatal(e)
        self.result.searchlist = searchlist
        self._reinsert_rtld(searchlist)
        failed = self.check_versions(trace)
        if failed and cfg.mode is Mode.NORMAL:
            raise Exit(1)
        self._init_tls(searchlist)
        execution.finish(self)  # listing, LD_WARN pass, or relocation, init and fini

    def _init_tls(self, searchlist: list[LinkMap]) -> None:
        """init_tls (elf/rtld.c), in every mode: each initial object with a TLS block took a module id
        when it was mapped, and the slotinfo list is filled walking the chain from _ns_loaded, so an
        object off the chain (a filtee moved in front of the main map, see map_deps) leaves the count
        short: the assertion, before any listing.  Then the initial thread's static TLS block is laid out
        and mapped (ldsim.tls): a block the kernel will not map is fatal, in trace mode too."""
        for m in searchlist:
            if id(m) in self.unchained and m.elf is not None and any(
                    s.type == PT.TLS and s.memsz for s in m.elf.segments):
                self.out("Inconsistency detected by ld.so: rtld.c: 776: init_tls: Assertion "
                         "`i == GL(dl_tls_max_dtv_idx)' failed!\n", 2)
                raise Exit(127)
        # _dl_determine_tlsoffset and _dl_allocate_tls_storage: the slotinfo list is in chain order
        outcome = initial_tls([m.elf for m in self.objects], self.profile.ei_class, self.profile.e_machine,
                              self.cfg.tunables, self.inv.memory)
        if outcome == "SIGFPE":
            raise Exit(-SIGFPE)
        if outcome == "ENOMEM":
            self.out("cannot allocate TLS data structures for initial thread\n", 2)
            raise Exit(127)

    def start_args_adjust(self) -> None:
        """_dl_start_args_adjust, run in direct mode once the program is mapped (--verify and --help
        included).  glibc 2.36 bug: secure mode's unsetenv shifted envp, so it no longer finds auxv
        where it expects it: an assertion ends the process."""
        if self.direct and self.cfg.secure and len(self.cfg.env_after) != len(self.inv.env):
            self.out("Inconsistency detected by ld.so: rtld.c: 1391: _dl_start_args_adjust: "
                     "Assertion `auxv == sp + 1' failed!\n", 2)
            raise Exit(127)

    def _chain_load(self, main: LinkMap) -> None:
        """rtld_chain_load (`ld.so PROG` run normally): ld.so cannot load itself; a program with neither
        DT_NEEDED nor PT_INTERP (static) is handed to execve, which runs it without this loader (ldsim
        does not run programs: it ends there, status 0, unless its entry point is not executable), or fails
        (no execute permission)."""
        elf = main.elf
        soname = self.profile.rtld_soname
        if elf.soname is not None and elf.soname == soname:
            self.out(f"{soname}: loader cannot load itself\n", 2)
            raise Exit(127)
        if elf.needed or elf.interp is not None:
            return
        try:
            st = self.world.stat(self.program)
            runnable = stat_mod.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
        except OSError:
            runnable = False
        if not runnable:
            self.out(f"{soname}: cannot execute {self.program}: EACCES\n", 2)
            raise Exit(127)
        # the kernel starts it at its entry point: a library's (e_entry 0, not executable) faults
        raise Exit(0 if execution.entry_executable(elf) else -SIGSEGV)

    def _map_main(self) -> LinkMap:
        """The main program: mapped by ld.so in direct mode, by the kernel otherwise."""
        if self.direct:
            try:
                main = self.map_object(None, self.program, exe=True, paths_ready=False, via="program")
            except LoadError as e:
                if self.cfg.mode is Mode.VERIFY:
                    raise Exit(1) from None
                # dl_main sets _dl_argv[0] to --argv0's value only once the program is mapped
                self.fatal(e, progname=self.program)
            # _dl_new_object with __RTLD_OPENEXEC: l_libname and l_name are "" (as for a kernel-mapped
            # program), so the program is never found again by the name it was given
            main.names = [""]
            main.name = ""
            main.file_id = None
            return main
        return self._exec_main()

    def _exec_main(self) -> LinkMap:
        """execve(PROGRAM): the kernel maps the program; ld.so knows it only as "" with no file id.
        Its $ORIGIN is where /proc/self/exe points (exe_origin)."""
        # the kernel reads the program whatever its r bits, but the caller needs x (CallerWorld.inner:
        # the files as ldsim sees them)
        kernel = getattr(self.world, "inner", self.world)
        try:
            if kernel is not self.world and not self.world.may_execute(self.program):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), self.program)
            mode = kernel.stat(self.program).st_mode
            if not stat_mod.S_ISREG(mode) or not mode & 0o111:
                # do_open_execat: only a regular file is executed (a FIFO is not even opened), and one
                # without any x bit not even by root (generic_permission)
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), self.program)
            opened = kernel.open(self.program)
            elf = self.files.parse(opened)
        except (OSError, ElfError) as e:
            # execve itself fails (ENOENT, EACCES, ENOEXEC): the shell reports it, no loader runs
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            if isinstance(e, NotElf):
                reason = os.strerror(errno.ENOEXEC)
            self.out(f"ldsim: {self.program}: cannot execute: {reason}\n", 2)
            raise Exit(126) from None
        if elf.interp_error is not None:  # execve fails reading PT_INTERP
            self.out(f"ldsim: {self.program}: cannot execute: {elf.interp_error}\n", 2)
            raise Exit(126)
        origin = exe_origin(self.world, self.program, self.cfg.origin_path)
        facts = self._map_facts(elf)
        layout = self._layout(elf, facts, True)
        self._check_dynamic_info(elf, "./")  # dl_main's elf_get_dynamic_info (main_map), in rtld.c
        self._setup_hash(facts)  # dl_main's (main_map), before any object is loaded
        m = LinkMap(name="", names=[""], kind=Kind.MAIN, elf=elf, origin=origin, map_start=layout[1] + facts.start,
                    addr=layout[1])
        self.objects.append(m)
        if elf.flags_1 & ~DT_1_SUPPORTED and not self.quiet:  # dl_main's elf_get_dynamic_info (main_map)
            self.emit(ev.UnsupportedFlags1(elf.flags_1 & ~DT_1_SUPPORTED))
        return m

    def _load_audit_modules(self, main: LinkMap) -> None:
        """load_audit_modules (before the preloads, in every mode): each name is dlmopen'ed into a new
        namespace with __RTLD_SECURE; one that cannot be opened is reported and ignored.  Simulated only
        that far: an audit object that is found (la_version, its namespace, its callbacks) and the search
        lines LD_DEBUG=libs/files would show are not."""
        names = _audit_names(self.cfg.audit, self.cfg.secure)
        if not names:
            return
        if self.cfg.debug & (Debug.LIBS | Debug.FILES):
            raise NotImplementedError("the search for audit objects (LD_AUDIT, --audit) under LD_DEBUG=libs or "
                                      "files is not simulated")
        for name in names:
            res = SearchResult(None, None, None, record=False)
            try:
                if "/" in name:
                    opened = self.searcher.open_verify(name, res)
                else:
                    opened = self._search(main, name, res, True, True)
            except LoadError as e:
                message = e.message
            else:
                if opened is not None:
                    raise NotImplementedError(f"loading '{name}' as an audit interface is not simulated")
                message = self._not_found(name, res).message
            self.out(f"ERROR: ld.so: object '{name}' cannot be loaded as audit interface: {message}; "
                     "ignored.\n", 2)

    def _preloads(self, main: LinkMap, trace: bool) -> list[LinkMap]:
        """LD_PRELOAD, --preload, then /etc/ld.so.preload (dl_main's do_preload calls)."""
        out: list[LinkMap] = []
        sources = []
        if self.cfg.preload_env is not None:
            sources.append(("LD_PRELOAD", _split_preload(self.cfg.preload_env)))
        if self.cfg.preload_opt is not None:
            sources.append(("--preload", _split_preload(self.cfg.preload_opt)))
        for source, names in sources:
            for fname in names:
                # dso_name_valid_for_suid: in secure mode no '/' and nothing of NAME_MAX bytes or more
                if self.cfg.secure and ("/" in fname or len(fname.encode("utf-8", "surrogateescape"))
                                        >= SECURE_NAME_LIMIT):
                    continue
                self._do_preload(main, fname, source, trace, out)
        pfile = self.profile.preload_file
        # dl_main asks access(R_OK) first (the real ids), then reads the file (the effective ids)
        if real_access(self.world, self.inv.credentials, pfile, R):
            try:
                data = self.world.read(pfile)
            except OSError:
                data = b""
            for fname in _parse_preload_file(data):
                self._do_preload(main, fname, pfile, trace, out)
        return out

    def _do_preload(self, main: LinkMap, fname: str, source: str, trace: bool, out: list[LinkMap]) -> None:
        """do_preload: `_dl_map_object(main, fname, __RTLD_SECURE)` with trace_mode 0 (even under ldd a
        missing preload is reported, never faked); a failure is printed and ignored."""
        before = len(self.objects)
        try:
            m = self.map_object(main, fname, secure_preload=True, trace=False, via=source)
        except LoadError as e:
            self._preload_failed(fname, source, e.message)
            return
        if len(self.objects) > before:
            out.append(m)

    def _preload_failed(self, fname: str, source: str, reason: str) -> None:
        self.out(f"ERROR: ld.so: object '{fname}' from {source} cannot be preloaded ({reason}): ignored.\n", 2)

    def _reinsert_rtld(self, searchlist: list[LinkMap]) -> None:
        """dl_main: take ld.so out of the chain; put it back after its search-list predecessor if needed."""
        rtld = self.rtld
        objs = self.objects
        if rtld not in objs:  # a filtee of the main map (map_deps): off the chain, its l_prev is NULL and
            raise Exit(-SIGSEGV)  # the unlinking (l_prev->l_next = l_next) faults
        objs.remove(rtld)
        if rtld not in searchlist[1:]:
            return
        prev = searchlist[searchlist.index(rtld, 1) - 1]
        at = objs.index(prev) + 1
        if self.cfg.mode is Mode.NORMAL:
            i = searchlist.index(rtld, 1)
            nxt = searchlist[i + 1] if i + 1 < len(searchlist) else None
            vdso = next((o for o in objs if o.kind is Kind.VDSO), None)
            if vdso is not None and at < len(objs) and objs[at] is vdso and nxt is not vdso:
                at += 1
            # l_prev's chain successor must be the search list's next object (in trace mode it is so by
            # construction); not so when the vDSO, reached as a DT_NEEDED, precedes ld.so in the list
            if (objs[at] if at < len(objs) else None) is not nxt:
                self.out("Inconsistency detected by ld.so: rtld.c: 2060: dl_main: Assertion "
                         "`GL(dl_rtld_map).l_prev->l_next == GL(dl_rtld_map).l_next' failed!\n", 2)
                raise Exit(127)
        objs.insert(at, rtld)


def rpath_inhibited(inhibit: str, name: str) -> bool:
    """Whether --inhibit-rpath's list names the object `name` (its l_name), scanned as decompose_rpath
    does (elf/dl-load.c): each element is tried only while one follows, so a trailing ':' adds no empty
    element (a whole list "" is one, naming the main program, whose l_name is "")."""
    i = 0
    while True:
        j = 0
        while i < len(inhibit) and j < len(name) and inhibit[i] == name[j]:
            i, j = i + 1, j + 1
        if j == len(name) and (i == len(inhibit) or inhibit[i] == ":"):
            return True
        i = inhibit.find(":", i) + 1
        if i == 0 or i == len(inhibit):
            return False


def exe_origin(world: World, path: str, origin_path: str | None) -> str | None:
    """_dl_get_origin (sysdeps/unix/sysv/linux/dl-origin.c) for a process executing `path`: the directory
    of readlink("/proc/self/exe"); when that fails (a root without procfs on /proc) or names a '['
    pseudo-file, LD_ORIGIN_PATH without its trailing slashes; else unknown (None: $ORIGIN unusable)."""
    try:
        link = world.exe_link(path)
    except OSError:
        link = ""
    if link and not link.startswith("["):
        if not link.startswith("/"):  # a link planted in the root's own /proc: ld.so's assertion
            raise NotImplementedError("a relative /proc/self/exe link (ld.so's assertion in _dl_get_origin) "
                                      "is not simulated")
        cut = link.rfind("/")
        return link[:cut] if cut > 0 else "/"
    if origin_path is None:
        return None
    while len(origin_path) > 1 and origin_path.endswith("/"):
        origin_path = origin_path[:-1]
    return origin_path


def _relr_fatal(elf: ElfFile) -> bool:
    """_dl_check_map_versions: DT_RELR in an object that needs libc but not GLIBC_ABI_DT_RELR is fatal."""
    if not (elf.verneed and elf.needed and elf.dyn(DT.RELR) is not None):
        return False
    if any(a.hash == 0xFD0E42 and a.name == "GLIBC_ABI_DT_RELR" for vn in elf.verneed for a in vn.entries):
        return False
    return any(n.startswith("libc.so.") for n in elf.needed)


AUDIT_STRINGS_MAX = 16  # DL_NNS: the size of struct audit_list's audit_strings


def _audit_names(strings: list[str], secure: bool) -> list[str]:
    """audit_list_add_string then audit_list_next: non-empty strings, each split at ':'; a name of
    SECURE_NAME_LIMIT bytes or more is unusable, and in secure mode so is one with a '/'."""
    strings = [s for s in strings if s]
    if len(strings) > AUDIT_STRINGS_MAX:
        raise NotImplementedError("more than 16 audit strings (a fatal error of ld.so) are not simulated")
    names = []
    for string in strings:
        for name in string.split(":"):
            size = len(name.encode("utf-8", "surrogateescape"))
            if 0 < size < SECURE_NAME_LIMIT and not (secure and "/" in name):
                names.append(name)
    return names


def _split_preload(value: str) -> list[str]:
    """handle_preload_list: separated by spaces or ':' (not tabs), empty elements skipped, and elements of
    SECURE_PATH_LIMIT bytes or more dropped silently (they do not fit its buffer)."""
    return [p for p in value.replace(":", " ").split(" ")
            if p and len(p.encode("utf-8", "surrogateescape")) < SECURE_PATH_LIMIT]


def _blank_comments(buf: bytearray) -> None:
    """dl_main's comment loop over /etc/ld.so.preload, in place: runp is never advanced, so each '#' is
    looked for with memchr (file, '#', rest), rest shrunk by everything skipped and blanked so far."""
    rest = len(buf)
    while rest > 0:
        i = buf.find(b"#", 0, rest)
        if i < 0:
            return
        rest -= i
        while True:  # do *comment = ' '; while (--rest > 0 && *++comment != '\n');
            buf[i] = 0x20
            rest -= 1
            if rest <= 0:
                break
            i += 1
            if buf[i] == 0x0A:
                break


def _parse_preload_file(data: bytes) -> list[str]:
    """/etc/ld.so.preload as dl_main parses it (elf/rtld.c), quirks included: names separated by space,
    tab, newline or ':', each C string ending at a NUL byte; '#' blanks up to the newline, but the scan
    for the next '#' restarts at the file's start with a window shrunk by what it skipped and blanked,
    so later comments may survive as names; a last name without a separator is taken alone."""
    buf = bytearray(data)
    size = len(buf)
    if not size:  # _dl_sysdep_read_whole_file maps nothing
        return []
    _blank_comments(buf)
    seps = b" \t\n:"
    problem: int | None = None
    if buf[-1] not in seps:  # a name at the very end: cut off and loaded after the others
        problem = size
        while problem > 0 and buf[problem - 1] not in seps:
            problem -= 1
        if problem > 0:
            buf[problem - 1] = 0
    else:
        buf[-1] = 0
    raw: list[bytes] = []
    if problem != 0:
        text = bytes(buf).split(b"\0", 1)[0]
        for sep in b"\t\n:":
            text = text.replace(bytes([sep]), b" ")
        raw += [p for p in text.split(b" ") if p]
    if problem is not None:
        raw.append(bytes(buf[problem:]).split(b"\0", 1)[0])  # do_preload even when empty
    return [p.decode("utf-8", "surrogateescape") for p in raw]
