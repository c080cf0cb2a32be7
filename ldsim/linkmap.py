"""The loader's objects (`struct link_map`) and the parsed-file cache the caller owns."""

from __future__ import annotations

import os
TYPE_CHECKING = False

from ldsim.elf import ElfError, ElfFile, parse_elf
from ldsim.record import Frozen, Record
from ldsim.world import Opened, World

if TYPE_CHECKING:
    from ldsim.symbols import SymbolTables


class Kind:
    """What a link map is.  Plain strings, not an enum.Enum: `enum` costs ~5 ms of every start."""

    MAIN = "main"
    RTLD = "rtld"
    VDSO = "vdso"
    LIB = "lib"


class Found(Frozen):
    """How a search ended: which step found the file (for `why`, `tree` and explanations).

    step: "direct", "RPATH", "LD_LIBRARY_PATH", "--library-path", "RUNPATH", "cache", "system search path",
    "loaded"; owner: the object whose RPATH/RUNPATH it was; directory: the directory record (with its
    trailing '/'), or the cache file; subdir: hwcaps subdirectory inside the directory."""

    __slots__ = _fields = ("step", "owner", "directory", "subdir", "path")

    def __init__(self, step: str, owner: str | None = None, directory: str | None = None, subdir: str = "",
                 path: str = "") -> None:
        _set = object.__setattr__
        _set(self, "step", step)
        _set(self, "owner", owner)
        _set(self, "directory", directory)
        _set(self, "subdir", subdir)
        _set(self, "path", path)


class LinkMap(Record):
    """One loaded (or, in trace mode, faked) object.  Identity matters, so eq is by object."""

    __slots__ = _fields = ("name", "names", "kind", "elf", "faked", "file_id", "loader", "origin", "soname_added",
                           "rpath_dirs", "runpath_dirs", "deps", "found", "map_start", "mode_st", "used",
                           "addr")

    def __init__(self, name: str, names: list[str], kind: Kind, elf: ElfFile | None = None, faked: bool = False,
                 file_id: tuple[int, int] | None = None, loader: LinkMap | None = None, origin: str | None = None,
                 soname_added: bool = False, rpath_dirs: list | None | bool = None,
                 runpath_dirs: list | None | bool = None, deps: list[LinkMap] | None = None,
                 found: Found | None = None, map_start: int = 0, mode_st: int = 0, used: bool = False,
                 addr: int = 0) -> None:
        self.name = name  # l_name: the path it was opened from; "" for the main program
        self.names = names  # l_libname: first the name it was requested by
        self.kind = kind
        self.elf = elf
        self.faked = faked
        self.file_id = file_id
        self.loader = loader  # l_loader: who caused it to be loaded
        self.origin = origin  # $ORIGIN; None = unknown
        self.soname_added = soname_added
        self.rpath_dirs = rpath_dirs  # None: not decomposed yet; False: none/disabled
        self.runpath_dirs = runpath_dirs
        self.deps = [] if deps is None else deps  # l_initfini[1:] as dl-deps builds it
        self.found = found
        self.map_start = map_start
        self.mode_st = mode_st  # st_mode of the file, for the secure-preload set-user-ID test
        self.used = used
        self.addr = addr  # l_addr, the load bias: 0 for an executable and an object mapped where it asked

    def __repr__(self) -> str:  # the fields, without following loader and deps (they form cycles)
        return f"LinkMap(name={self.name!r}, names={self.names!r}, kind={self.kind})"

    @property
    def soname(self) -> str | None:
        return self.elf.soname if self.elf else None

    def name_matches(self, name: str) -> bool:
        """_dl_name_match_p: exact string compare with l_name and every name of the object."""
        return name == self.name or name in self.names


class FileCache:
    """Parsed ELF files keyed by (dev, ino, mtime, size): each file is parsed once per process.

    snapshot=True: the files do not change while this cache lives (one ldsim command), so a file opened
    once is not even stat'ed again."""

    def __init__(self, snapshot: bool = False) -> None:
        self.snapshot = snapshot
        self._by_key: dict[tuple[int, int, int, int], ElfFile | ElfError] = {}
        self._symbols: SymbolTables | None = None
        self._parsed: dict[int, tuple[Opened, ElfFile | ElfError]] = {}  # by id(opened), snapshot only
        self._derived: dict[tuple, object] = {}
        self.memo: dict[str, dict] = {}  # pure functions of the process's inputs, by kind, then arguments
        self._opened: dict[tuple[int, str], Opened | int] = {}
        self._stats: dict[tuple[int, str], os.stat_result | int] = {}

    @property
    def symbols(self) -> SymbolTables:
        """Hash tables and relocations of each parsed file, built on demand (ldsim.symbols is imported
        only when a run looks symbols up: plain `ldd` never does)."""
        if self._symbols is None:
            from ldsim.symbols import SymbolTables
            self._symbols = SymbolTables()
        return self._symbols

    def open(self, world: World, path: str) -> Opened:
        """`world.open(path)`, reused while a stat of the path still names the same file: ldd of many
        programs opens libc hundreds of times, and a stat is one syscall where an open is five."""
        key = (id(world), path)
        hit = self._opened.get(key)
        if hit is not None:
            if self.snapshot:
                if type(hit) is int:  # the errno it failed with
                    raise OSError(hit, os.strerror(hit), path)
                return hit
            try:
                st = world.stat(path)
            except OSError:
                st = None
            old = hit.st
            if st is not None and (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size, st.st_mode) == \
                    (old.st_ino, old.st_dev, old.st_mtime_ns, old.st_size, old.st_mode):
                return hit
        try:
            opened = world.open(path)
        except OSError as e:
            if self.snapshot and e.errno:
                self._opened[key] = e.errno
            raise
        self._opened[key] = opened
        return opened

    def stat(self, world: World, path: str) -> os.stat_result:
        """`world.stat(path)`; asked once per path in a snapshot (the loader's directory checks)."""
        if not self.snapshot:
            return world.stat(path)
        key = (id(world), path)
        hit = self._stats.get(key)
        if hit is None:
            try:
                hit = world.stat(path)
            except OSError as e:
                hit = e.errno or 2
            self._stats[key] = hit
        if type(hit) is int:
            raise OSError(hit, os.strerror(hit), path)
        return hit

    def parse(self, opened: Opened) -> ElfFile:
        if self.snapshot:  # an Opened is reused for its path: its answer, without a key from its stat
            hit = self._parsed.get(id(opened))
            if hit is not None and hit[0] is opened:
                if isinstance(hit[1], ElfError):
                    raise hit[1]
                return hit[1]
        st = opened.st
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._by_key.get(key)
        if hit is None:
            try:
                hit = parse_elf(opened.data if opened.data is not None else b"")
            except ElfError as e:
                hit = e
            except (IndexError, ValueError, OverflowError) as e:  # malformed beyond what the reader checks
                hit = ElfError(f"malformed ELF file ({type(e).__name__})")
            self._by_key[key] = hit
        if self.snapshot:
            self._parsed[id(opened)] = (opened, hit)  # holding it keeps its id from being reused
        if isinstance(hit, ElfError):
            raise hit
        return hit

    def derived(self, opened: Opened, kind: str, make):
        """Another reading of a file (the ld.so cache, its lookups), made once per file identity and kind."""
        st = opened.st
        key = (kind, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = make(opened)
            return value


def file_id(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)
