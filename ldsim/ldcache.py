"""ld.so.cache: read it the way ld.so does, write it byte for byte the way ldconfig 2.36 does.

Reader mirrors `_dl_load_cache_lookup` and `search_cache` (elf/dl-cache.c) with the layouts of
sysdeps/generic/dl-cache.h; `ldconfig -p` mirrors `print_cache` (elf/cache.c); the writer mirrors
`save_cache`, `add_to_cache`, `compare` (elf/cache.c) and `stringtable_finalize` (elf/stringtable.c).
Nothing here raises on bad input: a cache ld.so would refuse gives an `LdCache` whose lookups all fail
and whose `error` says why.
"""

from __future__ import annotations

import struct
from functools import cmp_to_key
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Literal, Sequence

from ldsim.record import NamedTuple, Frozen, Value

CACHEMAGIC = b"ld.so-1.7.0"
CACHEMAGIC_NEW = b"glibc-ld.so.cache"
CACHE_VERSION = b"1.1"
CACHEMAGIC_VERSION_NEW = CACHEMAGIC_NEW + CACHE_VERSION

# struct cache_file: char magic[11]; unsigned nlibs  (one padding byte between them)
OLD_HEADER = struct.Struct("<11sxI")
# struct file_entry: int32 flags; uint32 key, value
OLD_ENTRY = struct.Struct("<iII")
# struct cache_file_new: magic[17] version[3] nlibs len_strings flags pad[3] extension_offset unused[3]
NEW_HEADER = struct.Struct("<20sIIB3xI12x")
# struct file_entry_new: flags key value osversion_unused hwcap
NEW_ENTRY = struct.Struct("<iIIIQ")
# struct cache_extension: magic count; struct cache_extension_section: tag flags offset size
EXT_HEADER = struct.Struct("<II")
EXT_SECTION = struct.Struct("<IIII")
U32 = struct.Struct("<I")

ALIGN_CACHE = 8  # __alignof__ (struct cache_file_new) on x86-64
EXTENSION_MAGIC = 0xEAA42174  # (uint32_t) -358342284
EXT_TAG_GENERATOR = 0
EXT_TAG_GLIBC_HWCAPS = 1
EXT_TAG_COUNT = 2

ENDIAN_UNSET, ENDIAN_INVALID, ENDIAN_LITTLE, ENDIAN_BIG = 0, 1, 2, 3

HWCAP_EXTENSION = 1 << 62  # DL_CACHE_HWCAP_EXTENSION
ISA_LEVEL_MASK = (1 << 10) - 1  # DL_CACHE_HWCAP_ISA_LEVEL_MASK
HWCAP_TLS = 1 << 63  # _DL_HWCAP_TLS_MASK
FIRST_PLATFORM = 48  # _DL_FIRST_PLATFORM
HWCAP_PLATFORM = ((1 << 4) - 1) << FIRST_PLATFORM  # _DL_HWCAP_PLATFORM, 4 x86 platforms
U64 = (1 << 64) - 1

X86_64_LIBC6 = 0x0303  # _DL_CACHE_DEFAULT_ID for x86-64
GENERATOR_2_36 = "ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36"

CacheFormat = Literal["new", "compat", "old"] if TYPE_CHECKING else str


def _cstr(data: bytes, off: int) -> bytes:
    """The NUL-terminated string at `off` (the file end terminates it too: never reads past)."""
    if off < 0 or off >= len(data):
        return b""
    end = data.find(b"\0", off)
    return data[off:] if end < 0 else data[off:end]


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _encode(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _c_char(b: int) -> int:
    """A byte as x86-64's signed `char`."""
    return b - 256 if b >= 128 else b


def _int32(v: int) -> int:
    """v as a 32-bit two's-complement int (what the C arithmetic leaves)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def libcmp(a: str | bytes, b: str | bytes) -> int:
    """Mirrors `_dl_cache_libcmp`: digit runs compare as numbers, a digit beats a non-digit.

    Only the sign is meaningful (C returns differences).  Numbers and their difference are C ints
    that wrap: two runs whose values lie 2**31 or more apart compare the wrong way, so the order is
    not transitive for such names."""
    p1 = _encode(a) if isinstance(a, str) else a
    p2 = _encode(b) if isinstance(b, str) else b
    i = j = 0
    n1, n2 = len(p1), len(p2)
    while i < n1:
        c1 = p1[i]
        c2 = p2[j] if j < n2 else 0
        if 48 <= c1 <= 57:
            if 48 <= c2 <= 57:
                v1 = v2 = 0
                while i < n1 and 48 <= p1[i] <= 57:
                    v1 = (v1 * 10 + p1[i] - 48) & 0xFFFFFFFF
                    i += 1
                while j < n2 and 48 <= p2[j] <= 57:
                    v2 = (v2 * 10 + p2[j] - 48) & 0xFFFFFFFF
                    j += 1
                if v1 != v2:
                    return _int32(v1 - v2)  # `val1 - val2` in C's int: the difference wraps too
                continue
            return 1
        if 48 <= c2 <= 57:
            return -1
        if c1 != c2:
            return _c_char(c1) - _c_char(c2)
        i += 1
        j += 1
    c2 = p2[j] if j < n2 else 0
    return 0 - _c_char(c2)


# ---------------------------------------------------------------------------------------------- model


class CacheEntry(Frozen):
    """One entry as stored.  `hwcap` is the raw 64-bit field (0 in the old format); hwcaps_subdir is the
    glibc-hwcaps name as glibc resolves it (see `_hwcaps_name`)."""

    __slots__ = _fields = ("flags", "soname", "path", "hwcap", "hwcaps_subdir", "osversion", "key", "value")

    def __init__(self, flags: int, soname: str, path: str, hwcap: int = 0, hwcaps_subdir: str | None = None,
                 osversion: int = 0, key: int = 0, value: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "flags", flags)
        _set(self, "soname", soname)
        _set(self, "path", path)
        _set(self, "hwcap", hwcap)
        _set(self, "hwcaps_subdir", hwcaps_subdir)
        _set(self, "osversion", osversion)
        _set(self, "key", key)
        _set(self, "value", value)

    @property
    def is_glibc_hwcaps(self) -> bool:
        """Mirrors `dl_cache_hwcap_extension`."""
        return ((self.hwcap >> 32) & ~ISA_LEVEL_MASK) == (HWCAP_EXTENSION >> 32)

    @property
    def isa_level(self) -> int:
        return (self.hwcap >> 32) & ISA_LEVEL_MASK if self.is_glibc_hwcaps else 0


class _Raw(NamedTuple):  # one per cache entry, made at every start: a tuple is ~5x cheaper than a dataclass
    flags: int
    key: int
    value: int
    hwcap: int | None  # None: old-format entry (no hwcap field)


class LdCache(Value):
    """A parsed cache as ld.so sees it.  `format` is None when ld.so would reject the file.
    The underscored fields are what `search_cache` reads: lookups need no `CacheEntry` objects, so
    `entries` (decoded names and paths) is built on first use (`ldd` never asks for them)."""

    _fields = ("format", "entries", "generator", "glibc_hwcaps", "error", "_data", "_strtab", "_strsize", "_raw",
               "_hwcaps_index")

    def __init__(self, format: CacheFormat | None = None, entries: list[CacheEntry] | None = None,
                 generator: str | None = None, glibc_hwcaps: tuple[str, ...] = (), error: str | None = None,
                 _data: bytes = b"", _strtab: int = 0, _strsize: int = 0, _raw: list[_Raw] | None = None,
                 _hwcaps_index: list[int] | None = None) -> None:
        self.format = format
        self._entries = [] if entries is None else entries  # None: to be built from _raw
        self.generator = generator
        self.glibc_hwcaps = glibc_hwcaps  # names of the glibc-hwcaps section, in stored order
        self.error = error
        self._data = _data
        self._strtab = _strtab  # string table base for search_cache
        self._strsize = _strsize  # string_table_size given to search_cache
        self._raw = [] if _raw is None else _raw
        self._hwcaps_index = [] if _hwcaps_index is None else _hwcaps_index  # string offsets of the hwcaps section

    @property
    def entries(self) -> list[CacheEntry]:
        if self._entries is None:
            self._entries = _build_entries(self)
        return self._entries

    @entries.setter
    def entries(self, value: list[CacheEntry]) -> None:
        self._entries = value

    def lookup(
        self,
        name: str,
        *,
        flags_wanted: int = X86_64_LIBC6,
        flags_accepted: Sequence[int] = (),
        platform_mask: int = HWCAP_PLATFORM,
        isa_levels: bool = True,
        hwcaps_subdirs: Sequence[str],
        hwcap_mask_bits: int,
        platform_bit: int | None,
        isa_level: int,
        priority: Callable[[int], int] | None = None,
    ) -> str | None:
        """Mirrors `search_cache` (elf/dl-cache.c) for the x86-64 ld.so.

        hwcaps_subdirs: the active glibc-hwcaps names, highest priority first (prepend + supported
        unmasked builtins).  hwcap_mask_bits: `dl_hwcap & hwcap_mask`.  platform_bit: the bit of
        `_dl_string_platform(AT_PLATFORM)` (50 haswell, 51 xeon_phi) or None when the platform is not
        one of them (then any platform-tagged entry is skipped).  isa_level: the CPU's x86-64 level
        (0 baseline, 1 v2, 2 v3, 3 v4).  priority: `glibc_hwcaps_priority`, index -> priority (0: not
        used), for a caller that keeps the process's array (see `SearchState.cache_lookup`); without it
        the priorities are those of hwcaps_subdirs."""
        if self.format is None:
            return None
        if priority is None:
            prio = hwcaps_priorities(self, hwcaps_subdirs)
            priority = lambda i: prio[i] if i < len(prio) else 0  # noqa: E731
        return _search_cache(self, _encode(name), flags_wanted, priority,
                             hwcap_mask_bits, platform_bit, isa_level, tuple(flags_accepted), platform_mask,
                             isa_levels)


# ---------------------------------------------------------------------------------------------- reader


def _new_header(data: bytes, off: int) -> tuple[bytes, int, int, int, int]:
    return NEW_HEADER.unpack_from(data, off)


def _endian_ok(flags: int) -> bool:
    """Mirrors `cache_file_new_matches_endian`."""
    return flags == 0 or (flags & ENDIAN_BIG) == ENDIAN_LITTLE


def _load_extensions(data: bytes, ext_off: int) -> dict[int, tuple[int, int]] | None:
    """Mirrors `cache_extension_load` + `cache_extension_verify`: tag -> (offset, size); None if bad."""
    if ext_off == 0:
        return {}
    size = len(data)
    if ext_off % 4 or ext_off + EXT_HEADER.size > size:
        return None
    magic, count = EXT_HEADER.unpack_from(data, ext_off)
    if magic != EXTENSION_MAGIC:
        return None
    if ext_off + EXT_HEADER.size + count * EXT_SECTION.size > size:
        return None
    loaded: dict[int, tuple[int, int]] = {}
    for i in range(count):
        tag, _flags, off, sz = EXT_SECTION.unpack_from(data, ext_off + EXT_HEADER.size + i * EXT_SECTION.size)
        if off + sz > size:
            return None
        if tag < EXT_TAG_COUNT:
            loaded[tag] = (off, sz)
    hw = loaded.get(EXT_TAG_GLIBC_HWCAPS)
    if hw is not None and (hw[1] == 0 or hw[0] % 4 or hw[1] % 4):
        del loaded[EXT_TAG_GLIBC_HWCAPS]
    return loaded


def _fill_new(cache: LdCache, data: bytes, new_off: int, nlibs: int, ext_off: int) -> None:
    cache._strtab = new_off
    cache._strsize = len(data)  # ld.so passes cachesize even for the embedded header
    base = new_off + NEW_HEADER.size
    cache._raw = [
        _Raw(f, k, v, h)
        for f, k, v, _o, h in (NEW_ENTRY.unpack_from(data, base + i * NEW_ENTRY.size) for i in range(nlibs))
    ]
    ext = _load_extensions(data, ext_off)
    if ext is None:
        ext = {}
        cache.error = "malformed extension data"
    if EXT_TAG_GENERATOR in ext:
        off, sz = ext[EXT_TAG_GENERATOR]
        cache.generator = _decode(data[off:off + sz])
    if EXT_TAG_GLIBC_HWCAPS in ext:
        off, sz = ext[EXT_TAG_GLIBC_HWCAPS]
        cache._hwcaps_index = [U32.unpack_from(data, off + 4 * i)[0] for i in range(sz // 4)]
        # glibc resolves these from the file start, also in compat files (where they are wrong)
        cache.glibc_hwcaps = tuple(_decode(_cstr(data, o)) if o < len(data) else "" for o in cache._hwcaps_index)


def _hwcaps_name(cache: LdCache, hwcap: int) -> str | None:
    """Mirrors `glibc_hwcaps_string` (elf/cache.c)."""
    if ((hwcap >> 32) & ~ISA_LEVEL_MASK) != (HWCAP_EXTENSION >> 32) or not cache._hwcaps_index:
        return None
    index = hwcap & 0xFFFFFFFF
    if index >= len(cache._hwcaps_index):
        return None
    off = cache._hwcaps_index[index]
    return _decode(_cstr(cache._data, off)) if off < len(cache._data) else None


def _build_entries(cache: LdCache) -> list[CacheEntry]:
    data, base = cache._data, cache._strtab
    out = []
    for r in cache._raw:
        hwcap = r.hwcap or 0
        out.append(CacheEntry(
            flags=r.flags,
            soname=_decode(_cstr(data, base + r.key)),
            path=_decode(_cstr(data, base + r.value)),
            hwcap=hwcap,
            hwcaps_subdir=_hwcaps_name(cache, hwcap) if r.hwcap is not None else None,
            key=r.key,
            value=r.value,
        ))
    return out


def parse_cache(data: bytes) -> LdCache:
    """Mirrors the format detection of `_dl_load_cache_lookup` (elf/dl-cache.c). Never raises."""
    cache = LdCache(_data=data)
    size = len(data)
    if size > NEW_HEADER.size and data.startswith(CACHEMAGIC_VERSION_NEW):
        _magic, nlibs, _strlen, flags, ext_off = _new_header(data, 0)
        if (size - NEW_HEADER.size) // NEW_ENTRY.size >= nlibs:
            if not _endian_ok(flags):
                cache.error = "cache file has wrong endianness"
                return cache
            cache.format = "new"
            _fill_new(cache, data, 0, nlibs, ext_off)
            cache._entries = None  # built from _raw when first asked for
            return cache
    if size > OLD_HEADER.size and data.startswith(CACHEMAGIC):
        nlibs = OLD_HEADER.unpack_from(data, 0)[1]
        if (size - OLD_HEADER.size) // OLD_ENTRY.size >= nlibs:
            off = _align(OLD_HEADER.size + nlibs * OLD_ENTRY.size, ALIGN_CACHE)
            if size >= off + NEW_HEADER.size and data[off:off + 20] == CACHEMAGIC_VERSION_NEW:
                _magic, nnew, _strlen, flags, ext_off = _new_header(data, off)
                if not _endian_ok(flags):
                    cache.error = "cache file has wrong endianness"
                    return cache
                if (size - off - NEW_HEADER.size) // NEW_ENTRY.size < nnew:
                    # ld.so does not check this: it would read past the mapping; we refuse instead.
                    cache.error = "truncated new-format entries"
                    return cache
                cache.format = "compat"
                _fill_new(cache, data, off, nnew, ext_off)
            else:
                cache.format = "old"
                cache._strtab = OLD_HEADER.size + nlibs * OLD_ENTRY.size
                cache._strsize = size - cache._strtab
                cache._raw = [
                    _Raw(*OLD_ENTRY.unpack_from(data, OLD_HEADER.size + i * OLD_ENTRY.size), None)
                    for i in range(nlibs)
                ]
            cache._entries = None  # built from _raw when first asked for
            return cache
    if not data:
        cache.error = "empty file"
    elif data.startswith(CACHEMAGIC_VERSION_NEW) or data.startswith(CACHEMAGIC):
        cache.error = "truncated cache file"
    else:
        cache.error = "not a cache file"
    return cache


# ----------------------------------------------------------------------------------------- ldconfig -p


class PrintFault(Exception):
    """print_cache would read outside its mapping of the file (ldconfig dies of SIGSEGV)."""


def _mem_cstr(mem: bytes, off: int) -> str:
    if off < 0 or off >= len(mem):
        raise PrintFault
    end = mem.find(b"\0", off)
    if end < 0:
        raise PrintFault
    return _decode(mem[off:end])


def print_cache_view(data: bytes) -> tuple[LdCache | None, str | None]:
    """Mirrors how `print_cache` (elf/cache.c) reads a non-empty file, which is not how ld.so does:
    (the cache to list: its format, entries and generator; or None and print_cache's fatal message,
    trailing newline included).  The file is seen through its mapping: zeros to the end of the last
    page; a read beyond raises PrintFault."""
    size = len(data)
    mem = data + bytes(-size % 4096)
    not_cache = (None, "File is not a cache file.\n")
    if size < OLD_HEADER.size:
        return not_cache
    new_off = None
    if mem[:len(CACHEMAGIC)] != CACHEMAGIC:
        if mem[:len(CACHEMAGIC_VERSION_NEW)] != CACHEMAGIC_VERSION_NEW:
            return not_cache
        new_off, strings = 0, 0
    else:
        nlibs = OLD_HEADER.unpack_from(mem)[1]
        if (size - OLD_HEADER.size) // OLD_ENTRY.size < nlibs:
            return not_cache
        strings = OLD_HEADER.size + nlibs * OLD_ENTRY.size
        offset = _align(strings, ALIGN_CACHE)
        if size > offset + NEW_HEADER.size and mem[offset:offset + 20] == CACHEMAGIC_VERSION_NEW:
            new_off = strings = offset
    if new_off is None:
        entries = []
        for i in range(nlibs):
            flags, key, value = OLD_ENTRY.unpack_from(mem, OLD_HEADER.size + i * OLD_ENTRY.size)
            entries.append(CacheEntry(flags, _mem_cstr(mem, strings + key), _mem_cstr(mem, strings + value)))
        return LdCache(format="old", entries=entries), None
    _magic, nlibs, _strlen, flags, ext_off = _new_header(mem, new_off)
    if not _endian_ok(flags):
        return None, "Cache file has wrong endianness.\n"
    ext = _load_extensions(data, ext_off)
    if ext is None:
        return None, "Malformed extension data in cache file {name}\n"
    cache = LdCache(format="new" if new_off == 0 else "compat", _data=data)
    if EXT_TAG_GLIBC_HWCAPS in ext:
        off, sz = ext[EXT_TAG_GLIBC_HWCAPS]
        cache._hwcaps_index = [U32.unpack_from(data, off + 4 * i)[0] for i in range(sz // 4)]
    entries = []
    for i in range(nlibs):
        pos = new_off + NEW_HEADER.size + i * NEW_ENTRY.size
        if pos + NEW_ENTRY.size > len(mem):
            raise PrintFault
        e_flags, key, value, _os, hwcap = NEW_ENTRY.unpack_from(mem, pos)
        entries.append(CacheEntry(e_flags, _mem_cstr(mem, strings + key), _mem_cstr(mem, strings + value),
                                  hwcap, _hwcaps_name(cache, hwcap)))
    cache.entries = entries
    if EXT_TAG_GENERATOR in ext:
        off, sz = ext[EXT_TAG_GENERATOR]
        cache.generator = _decode(data[off:off + sz])
    return cache, None


# ---------------------------------------------------------------------------------------------- lookup


class CacheFault(Exception):
    """ld.so would never finish reading this cache: it writes past its heap and dies of SIGSEGV."""


def hwcaps_priorities(cache: LdCache, active: Sequence[str]) -> list[int]:
    """Mirrors `glibc_hwcaps_priorities_init`: merge the sorted cache array with the sorted active list.
    A string offset past the file stores a 0 but advances neither side (elf/dl-cache.c, 2.36), so
    while an active name is left to merge the loop writes zeros past its array until the process
    faults: CacheFault."""
    right = sorted(((_encode(n), i + 1) for i, n in enumerate(active)), key=lambda t: t[0])  # stable
    result: list[int] = []
    li = ri = 0
    names = cache._hwcaps_index
    while li < len(names) and ri < len(right):
        if names[li] >= len(cache._data):
            raise CacheFault(f"glibc-hwcaps string offset {names[li]} is outside the cache")
        left = _cstr(cache._data, names[li])
        if left == right[ri][0]:
            result.append(right[ri][1])
            li += 1
            ri += 1
        elif left < right[ri][0]:
            result.append(0)
            li += 1
        else:
            ri += 1
    result.extend([0] * (len(names) - li))
    return result


def _isa_compatible(hwcap: int, isa_level: int) -> bool:
    """Mirrors x86 `dl_cache_hwcap_isa_level_compatible`: `1 << level` must be in cpu isa_1 bits."""
    bit = 1 << (((hwcap >> 32) & ISA_LEVEL_MASK) % 32)  # x86 shl masks the count to 5 bits
    supported = (1 << (isa_level + 1)) - 1  # baseline, v2, v3, v4 bits, each level needs the previous
    return bit & supported == bit


def _search_cache(cache: LdCache, name: bytes, wanted: int, priority: Callable[[int], int], hwcap_bits: int,
                  platform_bit: int | None, isa_level: int, accepted: tuple[int, ...] = (),
                  platform_mask: int = HWCAP_PLATFORM, isa_levels: bool = True) -> str | None:
    """Mirrors `search_cache` (elf/dl-cache.c), including its walk bounds.  `accepted`: the flags
    `_dl_cache_check_flags` lets through; `wanted` ends the walk.  ABIs that define their own
    _DL_CACHE_DEFAULT_ID accept only it; the generic sysdeps/generic/dl-cache.h one (3, FLAG_ELF_LIBC6:
    i386, sparc) also accepts the libc5-era flag 1."""
    accepted = accepted or ((1, 3) if wanted == 3 else (wanted,))
    data, base, strsize, libs = cache._data, cache._strtab, cache._strsize, cache._raw
    platform = U64 if platform_bit is None else 1 << platform_bit
    # _DL_HWCAP_PLATFORM: the ABI's platform bits (4 on x86-64, 2 on i386, none on aarch64)
    exclude = ~(hwcap_bits | platform_mask | HWCAP_TLS) & U64

    def key_cmp(i: int) -> int | None:
        k = libs[i].key
        return None if k >= strsize else libcmp(name, _cstr(data, base + k))

    left, right = 0, len(libs) - 1
    best: int | None = None
    best_priority = 0
    while left <= right:
        middle = (left + right) // 2
        cmpres = key_cmp(middle)
        if cmpres is None:
            return None
        if cmpres == 0:
            left = middle
            while middle > 0 and key_cmp(middle - 1) == 0:
                middle -= 1
            while middle <= right:
                lib = libs[middle]
                if middle > left and key_cmp(middle) != 0:
                    break
                middle += 1
                if lib.flags not in accepted or lib.value >= strsize:
                    continue
                named = False
                if lib.hwcap is not None:
                    h = lib.hwcap
                    named = ((h >> 32) & ~ISA_LEVEL_MASK) == (HWCAP_EXTENSION >> 32)
                    if named and isa_levels and not _isa_compatible(h, isa_level):  # generic: always
                        continue
                    if not named and best is not None:
                        break
                    if h & exclude and not named:
                        continue
                    if h & platform_mask and (h & platform_mask) != platform:
                        continue
                    if named:
                        index = h & 0xFFFFFFFF
                        p = priority(index)
                        if p == 0 or (best is not None and p >= best_priority):
                            continue
                        best_priority = p
                best = lib.value
                if not named and lib.flags == wanted:
                    break
            break
        if cmpres < 0:
            left = middle + 1
        else:
            right = middle - 1
    return None if best is None else _decode(_cstr(data, base + best))


# ---------------------------------------------------------------------------------------------- writer


class NewEntry(Frozen):
    """What ldconfig passes to `add_to_cache`: the cache path is `dir/filename`.  hwcap: legacy hwcap of
    the directory (`path_hwcap`); hwcaps_subdir: glibc-hwcaps subdirectory name."""

    __slots__ = _fields = ("dir", "filename", "soname", "flags", "isa_level", "hwcap", "hwcaps_subdir")

    def __init__(self, dir: str, filename: str, soname: str, flags: int, isa_level: int = 0, hwcap: int = 0,
                 hwcaps_subdir: str | None = None) -> None:
        _set = object.__setattr__
        _set(self, "dir", dir)
        _set(self, "filename", filename)
        _set(self, "soname", soname)
        _set(self, "flags", flags)
        _set(self, "isa_level", isa_level)
        _set(self, "hwcap", hwcap)
        _set(self, "hwcaps_subdir", hwcaps_subdir)

    @property
    def path(self) -> str:
        return f"{self.dir}/{self.filename}"


def _align(n: int, a: int) -> int:
    return (n + a - 1) & ~(a - 1)


def compare_entries(e1: NewEntry, e2: NewEntry) -> int:
    """Mirrors `compare` (elf/cache.c): >0 means e1 sorts after e2."""
    res = libcmp(e2.soname, e1.soname)
    if res != 0:
        return res
    if e1.flags != e2.flags:
        return 1 if e1.flags < e2.flags else -1
    if (e1.hwcaps_subdir is None) != (e2.hwcaps_subdir is None):
        return -1 if e1.hwcaps_subdir is not None else 1
    if e1.hwcaps_subdir is not None and e2.hwcaps_subdir is not None:
        a, b = _encode(e1.hwcaps_subdir), _encode(e2.hwcaps_subdir)
        if a != b:
            return -1 if a < b else 1
    b1, b2 = bin(e1.hwcap).count("1"), bin(e2.hwcap).count("1")
    if b1 != b2:
        return 1 if b2 > b1 else -1
    if e1.hwcap != e2.hwcap:
        return 1 if e2.hwcap > e1.hwcap else -1
    return 0


_SAFE_RUN = 1 << 30  # digit runs below this never make libcmp's difference wrap


def _digit_runs_small(soname: str) -> bool:
    value = 0
    for c in soname + "/":
        if "0" <= c <= "9":
            value = value * 10 + ord(c) - 48
            if value >= _SAFE_RUN:
                return False
        else:
            value = 0
    return True


def sort_entries(entries: Iterable[NewEntry]) -> list[NewEntry]:
    """Mirrors the insertion of `add_to_cache` (elf/cache.c): each new entry goes before the first one
    of the list that compares > 0 to it.  For a transitive `compare` that is a stable sort; a digit
    run of 2**30 or more can make libcmp wrap (not transitive), and then only the insertion itself
    gives ldconfig's order."""
    entries = list(entries)
    if all(_digit_runs_small(e.soname) for e in entries):
        return sorted(entries, key=cmp_to_key(compare_entries))  # Python's sort is stable too
    out: list[NewEntry] = []
    for new in entries:
        at = next((i for i, old in enumerate(out) if compare_entries(old, new) > 0), len(out))
        out.insert(at, new)
    return out


def _finalize_key(s: bytes) -> bytes:
    return s[::-1]


def stringtable_finalize(strings: Iterable[str]) -> tuple[bytes, dict[str, int]]:
    """Mirrors `stringtable_finalize` (elf/stringtable.c): reversed-string order, tail merging."""
    uniq = sorted({_encode(s) for s in strings}, key=_finalize_key, reverse=True)
    # finalize_compare sorts by reversed bytes descending and a longer string (sharing the suffix)
    # first; reversed-bytes descending already puts "xabc" before "abc" since the reversal
    # "cbax" > "cba".
    offsets: dict[bytes, int] = {}
    out = bytearray()
    prev: bytes | None = None
    for s in uniq:
        if prev is not None and prev.endswith(s):
            offsets[s] = offsets[prev] + len(prev) - len(s)
        else:
            offsets[s] = len(out)
            out += s + b"\0"
        prev = s
    return bytes(out), {_decode(k): v for k, v in offsets.items()}


def build_cache(entries: Iterable[NewEntry], fmt: CacheFormat = "new", generator: str = GENERATOR_2_36,
                hwcaps_names: Iterable[str] = ()) -> bytes:
    """Mirrors `save_cache` (elf/cache.c).  `hwcaps_names`: every glibc-hwcaps subdirectory name
    ldconfig discovered (they enter the string table even when unused).

    With legacy-hwcap entries and fmt old/compat, glibc 2.36 writes the old array with the new index
    (heap overflow, then abort); this writes what lands inside the array and drops the rest."""
    ordered = sort_entries(entries)
    names = {e.hwcaps_subdir for e in ordered if e.hwcaps_subdir is not None}
    used = sorted(names, key=_encode)
    section_index = {n: i for i, n in enumerate(used)}
    table, off = stringtable_finalize(
        [e.path for e in ordered] + [e.soname for e in ordered] + list(hwcaps_names) + used)

    n_new = len(ordered)
    n_old = sum(1 for e in ordered if e.hwcap == 0)
    if fmt == "compat":
        n_old = (n_old + 1) & ~1
    old_size = OLD_HEADER.size + n_old * OLD_ENTRY.size if fmt != "new" else 0
    new_size = NEW_HEADER.size + n_new * NEW_ENTRY.size if fmt != "old" else 0
    pad = _align(old_size, ALIGN_CACHE) - old_size
    str_offset = new_size

    old_libs: list[list[int]] = [[0, 0, 0] for _ in range(n_old)]
    new_libs = bytearray()
    idx_old = 0
    for idx_new, e in enumerate(ordered):
        if fmt != "new" and e.hwcap == 0:
            if idx_old < n_old:
                old_libs[idx_old][0] = e.flags
                old_libs[idx_old][1] = str_offset + pad
            if idx_new < n_old:  # the 2.36 bug: indexed by idx_new
                old_libs[idx_new][1] = str_offset + off[e.soname]
                old_libs[idx_new][2] = str_offset + off[e.path]
        if fmt != "old":
            hw = e.hwcap
            if e.hwcaps_subdir is not None:
                hw = HWCAP_EXTENSION | (e.isa_level << 32) | section_index[e.hwcaps_subdir]
            new_libs += NEW_ENTRY.pack(e.flags, str_offset + off[e.soname], str_offset + off[e.path], 0, hw)
        if e.hwcap == 0:
            idx_old += 1
    if fmt != "new" and 0 < idx_old < n_old:
        old_libs[idx_old] = list(old_libs[idx_old - 1])

    ext_off = (old_size + (pad if fmt != "new" else 0) if fmt != "old" else old_size) + new_size + len(table)
    ext_off = _align(ext_off, 4)

    out = bytearray()
    if fmt != "new":
        out += OLD_HEADER.pack(CACHEMAGIC, n_old)
        for f, k, v in old_libs:
            out += OLD_ENTRY.pack(f, k & 0xFFFFFFFF, v & 0xFFFFFFFF)
    if fmt != "old":
        if fmt != "new":
            out += b"\0" * pad
        out += NEW_HEADER.pack(CACHEMAGIC_VERSION_NEW, n_new, len(table), ENDIAN_LITTLE, ext_off)
        out += new_libs
    out += table
    if fmt != "old":
        out += b"\0" * (ext_off - len(out))
        out += _extensions(ext_off, [str_offset + off[n] for n in used], generator)
    return bytes(out)


def _extensions(ext_off: int, hwcaps_array: list[int], generator: str) -> bytes:
    """Mirrors `write_extensions` (elf/cache.c): generator section first, hwcaps section if used."""
    gen = _encode(generator)
    dir_size = EXT_HEADER.size + EXT_TAG_COUNT * EXT_SECTION.size
    hwcaps_off = ext_off + dir_size
    hwcaps_size = 4 * len(hwcaps_array)
    gen_off = hwcaps_off - EXT_SECTION.size if not hwcaps_array else hwcaps_off + hwcaps_size
    sections = [(EXT_TAG_GENERATOR, 0, gen_off, len(gen))]
    if hwcaps_array:
        sections.append((EXT_TAG_GLIBC_HWCAPS, 0, hwcaps_off, hwcaps_size))
    out = bytearray(EXT_HEADER.pack(EXTENSION_MAGIC, len(sections)))
    for s in sections:
        out += EXT_SECTION.pack(*s)
    for o in hwcaps_array:
        out += U32.pack(o)
    return bytes(out + gen)
