"""Finding a file for a name: directory records with the loader's existence memory, `open_path`,
`open_verify`, and the search order of `_dl_map_object` as a generator of steps (elf/dl-load.c).

DT_NEEDED, LD_PRELOAD and dlopen all come through `Searcher.search`.
"""

from __future__ import annotations

import errno as E
import stat as stat_mod
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterator

from ldsim import events as ev
from ldsim.config import LoaderConfig
from ldsim.dst import DstValues, expand
from ldsim.elf import EIClass, read_ident
from ldsim.glibc import Profile
from ldsim.hwcaps import Cpu, active_subdirs, capstr, platform_bit
from ldsim.ldcache import LdCache, hwcaps_priorities, parse_cache
from ldsim.linkmap import Found, Kind, LinkMap
from ldsim.record import Frozen, Record, Value
from ldsim.world import PROC_SELF_EXE, Opened, World

UNKNOWN, EXISTING, NONEXISTING = 0, 1, 2
ELFOSABI_SYSV, ELFOSABI_GNU = 0, 3


class LoadError(Exception):
    """`_dl_signal_error`: objname, message, errno (0 = no strerror suffix)."""

    def __init__(self, objname: str, message: str, errcode: int = 0) -> None:
        super().__init__(message)
        self.objname = objname
        self.message = message
        self.errcode = errcode


class DirRecord(Record):
    """`struct r_search_path_elem`: shared process-wide; label and owner are the creator's.
    dirname has its trailing '/' ("" for the current directory); status: one per capstr entry."""

    __slots__ = _fields = ("dirname", "what", "where", "status")

    def __init__(self, dirname: str, what: str, where: str | None, status: list[int]) -> None:
        self.dirname = dirname
        self.what = what
        self.where = where
        self.status = status


class Candidate(Value):
    """A file tried during a search and what became of it (for `why`).
    outcome: "absent", "other class", "other machine", "not setuid", "loaded", "unreadable", ..."""

    __slots__ = _fields = ("path", "outcome")

    def __init__(self, path: str, outcome: str) -> None:
        self.path = path
        self.outcome = outcome


class StepOutcome(Value):
    """One search list of a request and what it gave (for `why`): "found", "not found", "skipped: ...".
    cached: the path the cache lookup returned, if any."""

    __slots__ = _fields = ("step", "outcome", "cached")

    def __init__(self, step: Step, outcome: str, cached: str | None = None) -> None:
        self.step = step
        self.outcome = outcome
        self.cached = cached


class SearchResult(Value):
    """How one search went: the file found, and (for `why`) every candidate and list, in order.
    record=False: tried and steps are None, nothing is kept (a run that is only rendered)."""

    __slots__ = _fields = ("opened", "path", "found", "other_class", "tried", "steps")

    def __init__(self, opened: Opened | None, path: str | None, found: Found | None, other_class: bool = False,
                 tried: list[Candidate] | None = None, steps: list[StepOutcome] | None = None,
                 record: bool = True) -> None:
        self.opened = opened
        self.path = path
        self.found = found
        self.other_class = other_class
        self.tried = ([] if tried is None else tried) if record else None
        self.steps = ([] if steps is None else steps) if record else None  # every list of the search, in order

    def candidate(self, path: str, outcome: str) -> None:
        if self.tried is not None:
            self.tried.append(Candidate(path, outcome))

    def step_outcome(self, step: Step, outcome: str, cached: str | None = None) -> None:
        if self.steps is not None:
            self.steps.append(StepOutcome(step, outcome, cached))


class PathStep(Frozen):
    """One search list of `_dl_map_object`, in order.  step: RPATH, LD_LIBRARY_PATH / --library-path,
    RUNPATH, system search path; disable_on_miss: a list none of whose directories exists is dropped for
    good (not env/system); holder: (map, "rpath_dirs"|"runpath_dirs") to disable."""

    __slots__ = _fields = ("step", "owner", "records", "disable_on_miss", "holder")

    def __init__(self, step: str, owner: LinkMap | None, records: list[DirRecord], disable_on_miss: bool,
                 holder: tuple[LinkMap, str] | None = None) -> None:
        _set = object.__setattr__
        _set(self, "step", step)
        _set(self, "owner", owner)
        _set(self, "records", records)
        _set(self, "disable_on_miss", disable_on_miss)
        _set(self, "holder", holder)


class CacheStep(Frozen):
    __slots__ = ()


CACHE_STEP = CacheStep()  # it has no state: one for every search
Step = PathStep | CacheStep


class Searcher:
    """The search state of one simulated process: records, capstr, the cache, the last errno."""

    def __init__(self, world: World, profile: Profile, cpu: Cpu, cfg: LoaderConfig,
                 emit: Callable[[ev.Event], None], argv0: Callable[[], str], files=None,
                 executable: Callable[[], str | None] = lambda: None) -> None:
        self.world = world
        self.executable = executable  # the file the process executes: what /proc/self/exe opens
        self.files = files  # the caller's FileCache: the ld.so cache is parsed once per process
        self.profile = profile
        self.cpu = cpu
        self.cfg = cfg
        self.emit = emit
        self.argv0 = argv0
        self.quiet = not int(cfg.debug)  # no LD_DEBUG category: debug events are not even built
        if files is None:
            self.capstr = capstr(profile, cpu, cfg.hwcaps)
        else:  # a pure function of these: computed once per ldsim process
            memo = files.memo.setdefault("capstr", {})
            key = (profile, cpu, cfg.hwcaps)
            if key not in memo:
                memo[key] = capstr(profile, cpu, cfg.hwcaps)
            self.capstr = list(memo[key])
        self.all_dirs: dict[str, DirRecord] = {}
        # _dl_init_paths makes these before any other record, and a shared record keeps its creator's
        # label: made on first use, but always before another list's records (see fillin)
        self._system: list[DirRecord] | None = None
        self.env: list[DirRecord] | None = None  # None: not initialised yet (ld.so PROG before init_paths)
        self.errno = 0
        self._cache: LdCache | None = None
        self._cache_loaded = False
        self._lookups: dict[tuple, str | None] = {}
        # files that passed open_verify's checks for this profile, by id (kept alive in the value)
        self._verified: dict[int, tuple[Opened]] = (files.memo.setdefault(("verified", profile), {})
                                                    if files is not None else {})
        self._lookup_args: tuple | None = None
        # glibc_hwcaps_priorities (elf/dl-cache.c): made at the first lookup that meets a glibc-hwcaps
        # entry, from the subdirectories active then, and kept while the cache stays mapped (all of
        # startup).  Before _dl_init_paths none are active (`ld.so NAME` looks NAME up first): all 0.
        self._hwcaps_prio: tuple[int, ...] | None = None

    @property
    def system(self) -> list[DirRecord]:
        """The system directories' records, made when first needed (most searches end in the cache)."""
        if self._system is None:
            self._system = [self._record(d, "system search path", None) for d in self.profile.system_dirs]
        return self._system

    def _open(self, path: str) -> Opened:
        """world.open, through the run's FileCache when there is one.  /proc/self/exe is the simulated
        process's executable (ld.so itself when it was run as a program), not ldsim's: the file its
        link names in the world (World.exe_link) is opened."""
        if path == PROC_SELF_EXE:
            exe = self.executable()
            if exe is not None:
                path = self.world.exe_link(exe)
        return self.world.open(path) if self.files is None else self.files.open(self.world, path)

    # -- directory records ------------------------------------------------------------------------

    def _record(self, dirname: str, what: str, where: str | None) -> DirRecord:
        rec = self.all_dirs.get(dirname)
        if rec is None:
            init = UNKNOWN if dirname.startswith("/") else EXISTING  # relative dirs are never dropped
            rec = DirRecord(dirname, what, where, [init] * len(self.capstr))
            self.all_dirs[dirname] = rec
        return rec

    def fillin(self, path: str, seps: str, what: str, where: str | None, dst: DstValues) -> list[DirRecord]:
        """fillin_rpath: split, expand DSTs, drop empties, normalise the trailing '/', share records."""
        _ = self.system  # made before any other list's records: a system dir listed here keeps their label
        out: list[DirRecord] = []
        for elem in _split(path, seps):
            if elem:
                elem = expand(elem, dst)
                if not elem:
                    continue
                n = len(elem)
                while n > 1 and elem[n - 1] == "/":
                    n -= 1
                elem = elem[:n]
                if not elem.endswith("/"):
                    elem += "/"
            rec = self._record(elem, what, where)
            if rec not in out:
                out.append(rec)
        return out

    def init_env_paths(self, main_dst: DstValues) -> None:
        """_dl_init_paths' LD_LIBRARY_PATH / --library-path part."""
        llp = self.cfg.library_path
        if llp:
            self.env = self.fillin(llp, ":;", self.cfg.library_path_source, None, main_dst)
        else:
            self.env = []

    # -- the cache -------------------------------------------------------------------------------

    def cache(self) -> LdCache | None:
        if not self._cache_loaded:
            self._cache_loaded = True
            try:
                opened = self._open(self.profile.cache_file)
                if stat_mod.S_ISDIR(opened.st.st_mode) and opened.st.st_size:
                    # _dl_sysdep_read_whole_file: open and fstat succeed, mmap fails with ENODEV
                    raise OSError(E.ENODEV, "mmap")
                if self.files is None:
                    self._cache = parse_cache(bytes(opened.data or b""))
                else:
                    self._cache = self.files.derived(opened, "ld.so.cache", lambda o: parse_cache(bytes(o.data or b"")))
                    self._lookups = self.files.derived(opened, "ld.so.cache lookups", lambda o: {})
            except OSError as e:
                self.errno = e.errno or 0
                self._cache = None
        return self._cache

    def cache_lookup(self, name: str) -> str | None:
        if not self.quiet:
            self.emit(ev.SearchCache(self.profile.cache_file))
        cache = self.cache()
        if cache is None:
            return None
        args = self._lookup_args
        if args is None:
            args = self._lookup_args = self._cache_lookup_args()
        active = () if self.env is None else args[1]
        prio = self._hwcaps_prio
        key = (name, args, prio if prio is not None else active)
        try:
            hit, met_hwcaps = self._lookups[key]
        except KeyError:  # a pure function of the cache, these arguments and the priorities
            met: list[tuple[int, ...]] = []

            def priority(index: int) -> int:
                if not met:
                    met.append(prio if prio is not None else tuple(hwcaps_priorities(cache, active)))
                return met[0][index] if index < len(met[0]) else 0

            hit = cache.lookup(name, flags_wanted=args[0], hwcaps_subdirs=args[1], hwcap_mask_bits=args[2],
                               platform_bit=args[3], isa_level=args[4], platform_mask=args[5],
                               isa_levels=args[6], priority=priority)
            met_hwcaps = bool(met)
            self._lookups[key] = (hit, met_hwcaps)
        if met_hwcaps and prio is None:  # this lookup made the array: it stays
            self._hwcaps_prio = tuple(hwcaps_priorities(cache, active))
        return hit

    def _cache_lookup_args(self) -> tuple:
        """What a cache lookup needs of the profile, CPU and hwcaps options (the same for every process
        of a run with these: worked out once)."""
        p, cpu, hwcaps = self.profile, self.cpu, self.cfg.hwcaps
        memo = self.files.memo.setdefault("cache lookup args", {}) if self.files is not None else {}
        key = (p, cpu, hwcaps)
        args = memo.get(key)
        if args is None:
            mask = p.hwcap_important if hwcaps.hwcap_mask is None else hwcaps.hwcap_mask
            args = memo[key] = (p.cache_flags, tuple(active_subdirs(p, cpu, hwcaps)), cpu.hwcap & mask,
                                platform_bit(p, cpu), max(0, cpu.isa.bit_length() - 1),
                                ((1 << len(p.platforms)) - 1) << 48,  # _DL_HWCAP_PLATFORM
                                p.arch in ("x86_64", "i386"))  # sysdeps/x86/dl-isa-level.h
        return args

    # -- opening ---------------------------------------------------------------------------------

    def open_verify(self, path: str, res: SearchResult) -> Opened | None:
        """open_verify: None = skipped (search goes on, errno set); LoadError = fatal for the request."""
        try:
            opened = self._open(path)
        except OSError as e:
            self.errno = e.errno or E.ENOENT
            res.candidate(path, "absent" if e.errno == E.ENOENT else E.errorcode.get(e.errno, "error"))
            return None
        self.errno = 0
        if self._verified.get(id(opened), (None,))[0] is opened:
            return opened  # this file passed these checks before
        if opened.data is None:
            res.candidate(path, "unreadable")
            raise LoadError(path, "cannot read file data", opened.read_errno)
        head = bytes(opened.data[:64])
        ident = read_ident(head)
        p = self.profile
        if ident is None or len(head) < (64 if p.ei_class == EIClass.ELF64 else 52):
            res.candidate(path, "too short")
            raise LoadError(path, "file too short", 0)
        abi_ok = (ident.abiversion == 0 if ident.osabi == ELFOSABI_SYSV
                  else ident.osabi == ELFOSABI_GNU and ident.abiversion < p.libc_abi_max)
        expected = (ident.magic_ok and ident.ei_class == p.ei_class and ident.ei_data == 1
                    and ident.ei_version == 1 and ident.osabi in (ELFOSABI_SYSV, ELFOSABI_GNU) and abi_ok
                    and ident.pad_zero)
        if not expected:
            if not ident.magic_ok:
                msg = "invalid ELF header"
            elif ident.ei_class != p.ei_class:
                res.other_class = True
                res.candidate(path, "wrong ELF class")
                self.errno = E.ENOENT
                return None
            elif ident.e_machine != p.e_machine:
                res.candidate(path, f"wrong machine ({ident.e_machine})")
                self.errno = E.ENOENT
                return None
            elif ident.ei_data != 1:
                msg = "ELF file data encoding not little-endian"
            elif ident.ei_version != 1:
                msg = "ELF file version ident does not match current one"
            elif ident.osabi not in (ELFOSABI_SYSV, ELFOSABI_GNU):
                msg = "ELF file OS ABI invalid"
            elif not abi_ok:
                msg = "ELF file ABI version invalid"
            elif not ident.pad_zero:
                msg = "nonzero padding in e_ident"
            else:
                msg = "internal error"
            res.candidate(path, msg)
            raise LoadError(path, msg, 0)
        if ident.e_version != 1:
            raise LoadError(path, "ELF file version does not match current one", 0)
        if ident.e_machine != p.e_machine:
            res.candidate(path, f"wrong machine ({ident.e_machine})")
            self.errno = E.ENOENT
            return None
        if ident.e_type not in (2, 3):
            raise LoadError(path, "only ET_DYN and ET_EXEC can be loaded", 0)
        if ident.e_phentsize != (56 if p.ei_class == EIClass.ELF64 else 32):
            raise LoadError(path, "ELF file's phentsize not the expected size", 0)
        read_errno = _phdrs_read_errno(opened, p.ei_class == EIClass.ELF64)
        if read_errno is not None:
            # the pread of the program headers fails (EINVAL) or comes back short (errno stays 0)
            raise LoadError(path, "cannot read file data", read_errno)
        self._verified[id(opened)] = (opened,)  # holding it keeps its id from being reused
        return opened

    def open_path(self, name: str, step: PathStep, secure_preload: bool, res: SearchResult) -> Opened | None:
        """open_path: every record of the list, every hwcaps subdirectory, stopping at the first file."""
        current_what = None
        any_dir = False
        records = step.records
        for i, rec in enumerate(records):
            if current_what != rec.what:
                current_what = rec.what
                if not self.quiet:
                    self._print_search_path(records[i:], rec.what, rec.where)
            here_any = False
            for cnt, sub in enumerate(self.capstr):
                if rec.status[cnt] == NONEXISTING:
                    continue
                path = rec.dirname + sub + name
                if not self.quiet:
                    self.emit(ev.TryFile(path))
                opened = self.open_verify(path, res)
                if rec.status[cnt] == UNKNOWN:
                    if opened is not None:
                        rec.status[cnt] = EXISTING
                    else:
                        d = (rec.dirname + sub)[:-1]
                        try:
                            st = self.world.stat(d) if self.files is None else self.files.stat(self.world, d)
                            rec.status[cnt] = EXISTING if stat_mod.S_ISDIR(st.st_mode) else NONEXISTING
                        except OSError as e:
                            self.errno = e.errno or E.ENOENT
                            rec.status[cnt] = NONEXISTING
                here_any |= rec.status[cnt] != NONEXISTING
                if (opened is not None and secure_preload and self.cfg.secure
                        and not opened.st.st_mode & stat_mod.S_ISUID):
                    # open_path: with __RTLD_SECURE (preloads) and __libc_enable_secure, a file found in a
                    # directory must be set-user-ID, else it is closed and treated as absent (ENOENT)
                    if res.tried is not None:
                        res.tried[-1:] = []
                    res.candidate(path, "not set-user-ID")
                    opened = None
                    self.errno = E.ENOENT
                if opened is not None:
                    res.found = Found(step.step, step.owner.name if step.owner else None, rec.dirname, sub, path)
                    return opened
            if here_any and self.errno not in (E.ENOENT, E.EACCES):
                return None
            any_dir |= here_any
        if not any_dir and step.disable_on_miss and step.holder is not None:
            setattr(step.holder[0], step.holder[1], False)
        return None

    def _print_search_path(self, records: list[DirRecord], what: str, where: str | None) -> None:
        dirs: list[str] = []
        for rec in records:
            if rec.what != what:  # a new line starts with the next label (records keep their creator's)
                break
            for cnt, sub in enumerate(self.capstr):
                if rec.status[cnt] != NONEXISTING:
                    full = rec.dirname + sub
                    if full == "/":
                        dirs.append("/")
                    else:
                        dirs.append(full[:-1] if full else "")
        shown = None if where is None else (where or self.argv0())
        self.emit(ev.SearchPath(tuple(dirs), what, shown))


LOFF_MAX = (1 << 63) - 1


def _phdrs_read_errno(opened: Opened, is64: bool) -> int | None:
    """open_verify's pread of e_phnum program headers at e_phoff: None when the file holds them, else
    the errno its failure leaves — EINVAL for an offset or end past the largest loff_t (a negative
    pread64 offset, rw_verify_area), 0 for a short read (no strerror in the message)."""
    import struct
    data = opened.data or b""
    if is64:
        phoff, = struct.unpack_from("<Q", data, 32)
        phnum, = struct.unpack_from("<H", data, 56)
        size = 56
    else:
        phoff, = struct.unpack_from("<I", data, 28)
        phnum, = struct.unpack_from("<H", data, 44)
        size = 32
    end = phoff + phnum * size
    if end <= len(data):
        return None
    return E.EINVAL if end > LOFF_MAX else 0


def _split(path: str, seps: str) -> list[str]:
    """strsep over several separators: empty elements are kept."""
    out, cur = [], []
    for ch in path:
        if ch in seps:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def search_steps(s: Searcher, loader: LinkMap | None, main: LinkMap | None,
                 rpath_of: Callable[[LinkMap], list[DirRecord] | None],
                 runpath_of: Callable[[LinkMap], list[DirRecord] | None],
                 secure_preload: bool, paths_ready: bool = True) -> Iterator[Step]:
    """The search lists of `_dl_map_object` for a name without '/', in order (consumers stop early).

    Before `_dl_init_paths` (the program named to `ld.so` without a '/') only the cache is consulted."""
    if not paths_ready:
        if not s.cfg.inhibit_cache:
            yield CACHE_STEP
        return
    if loader is None or loader.elf is None or loader.elf.runpath is None:
        did_main = False
        m = loader
        while m is not None:
            dirs = rpath_of(m)
            if dirs:
                yield PathStep("RPATH", m, dirs, True, (m, "rpath_dirs"))
                did_main |= m is main
            m = m.loader
        if not did_main and main is not None and main.kind is Kind.MAIN:
            dirs = rpath_of(main)
            if dirs:
                yield PathStep("RPATH", main, dirs, True, (main, "rpath_dirs"))
    if s.env:
        yield PathStep(s.cfg.library_path_source, None, s.env, False)
    if loader is not None:
        dirs = runpath_of(loader)
        if dirs:
            yield PathStep("RUNPATH", loader, dirs, True, (loader, "runpath_dirs"))
    if not (secure_preload and s.cfg.secure) and not s.cfg.inhibit_cache:
        yield CACHE_STEP
    yield PathStep("system search path", None, s.system, False)
