"""Dynamic symbol tables the way ld.so reads them: DT_SYMTAB/DT_STRTAB entries reached only through the
DT_GNU_HASH (bloom filter, buckets, chains) or DT_HASH tables, DT_VERSYM, and the per-object version
array `l_versions` built by `_dl_check_map_versions` (elf/dl-version.c).

Never scans a symbol table: a name is found by walking its hash chain (musl's `gnu_lookup`/`sysv_lookup`,
glibc's `do_lookup_x`).  Tables are built lazily, once per ElfFile, in a `SymbolTables` the caller owns.
"""

from __future__ import annotations

import struct
from itertools import accumulate, repeat
from operator import mul as _mul
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

from ldsim.elf import DT, ElfFile
from ldsim.record import Frozen, NamedTuple
from ldsim.elf import elf_hash  # noqa: F401  (the SysV hash, re-exported)

VER_FLG_BASE = 0x1
SHN_UNDEF = 0
SHN_ABS = 0xFFF1


class STB:
    LOCAL = 0
    GLOBAL = 1
    WEAK = 2
    GNU_UNIQUE = 10


class STT:
    NOTYPE = 0
    OBJECT = 1
    FUNC = 2
    SECTION = 3
    FILE = 4
    COMMON = 5
    TLS = 6
    GNU_IFUNC = 10


class STV:
    DEFAULT = 0
    INTERNAL = 1
    HIDDEN = 2
    PROTECTED = 3


ALLOWED_STT = frozenset((STT.NOTYPE, STT.OBJECT, STT.FUNC, STT.COMMON, STT.TLS, STT.GNU_IFUNC))
_SYM64 = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size
_SYM32 = struct.Struct("<IIIBBH")  # Elf32_Sym: name, value, size, info, other, shndx
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


def unpack_sym32(data, off: int) -> tuple[int, int, int, int, int, int]:
    """An Elf32_Sym in Elf64_Sym's field order (name, info, other, shndx, value, size): the order the
    lookup code reads."""
    name, value, size, info, other, shndx = _SYM32.unpack_from(data, off)
    return name, info, other, shndx, value, size
_new_sym = tuple.__new__  # Sym's fields in order, without NamedTuple's Python-level __new__


class Sym(NamedTuple):
    """One ElfW(Sym) with its index and resolved name (a tuple: hundreds of thousands are made a scan)."""

    index: int
    name: str
    info: int
    other: int
    shndx: int
    value: int
    size: int

    @property
    def bind(self) -> int:
        return self.info >> 4

    @property
    def type(self) -> int:
        return self.info & 0xF

    @property
    def visibility(self) -> int:
        return self.other & 3

    @property
    def binds_local(self) -> bool:
        """dl_symbol_visibility_binds_local_p: hidden and internal symbols are local."""
        return (self.other & 3) in (STV.INTERNAL, STV.HIDDEN)


class Version(Frozen):
    """An `r_found_version`: a version index's name and hash; filename set for needed versions."""

    __slots__ = _fields = ("name", "hash", "hidden", "filename")

    def __init__(self, name: str, hash: int, hidden: bool = False, filename: str | None = None) -> None:
        _set = object.__setattr__
        _set(self, "name", name)
        _set(self, "hash", hash)
        _set(self, "hidden", hidden)
        _set(self, "filename", filename)


def gnu_hash(name: bytes) -> int:
    """dl_new_hash: h = h*33 + c from 5381, i.e. 5381*33**n + sum(c[i] * 33**(n-1-i)) modulo 2**32,
    evaluated with C-level map and sum (a scan hashes ~100k names)."""
    n = len(name)
    if n < len(_POW33):
        return (5381 * _POW33[n] + sum(map(_mul, name[::-1], _POW33))) & 0xFFFFFFFF
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


_POW33 = list(accumulate(repeat(33, 4095), lambda p, m: p * m & 0xFFFFFFFF, initial=1))  # 33**k mod 2**32




class SymbolTable:
    """The lookup structures `_dl_setup_hash` (elf/dl-lookup.c) prepares for one object."""

    def __init__(self, elf: ElfFile) -> None:
        self.elf = elf
        self.data = elf.data
        self._syms: dict[int, Sym] = {}
        self.relocs: dict[tuple[int, int], list] = {}  # relocation ranges decoded by ldsim.relocate
        # (name, version key, plt) -> what do_lookup_x finds here: a pure function of the file, memoised
        # by ldsim.relocate for whole-root scans (see `Binder.undefined_now`)
        self.defs: dict[tuple, tuple] = {}
        self.references: list[int] | None = None  # distinct r_info of the BIND_NOW lookups, in order
        self.has_versyms = False
        # the ELF class decides the layouts: Elf32_Sym/Elf64_Sym, and the GNU bloom filter's words are
        # ElfW(Addr) (do_lookup_x: __ELF_NATIVE_CLASS bits)
        if elf.is_64:
            self.syment, self.unpack_sym, self.word, self.wlog = 24, _SYM64.unpack_from, _U64, 6
        else:
            self.syment, self.unpack_sym, self.word, self.wlog = 16, unpack_sym32, _U32, 5
        self.wmask = (1 << self.wlog) - 1
        symtab = elf.dyn(DT.SYMTAB)
        strtab = elf.dyn(DT.STRTAB)
        self.symtab = elf.vaddr_to_offset(symtab) if symtab is not None else None
        self.strtab = elf.vaddr_to_offset(strtab) if strtab is not None else None
        self.nbuckets = 0
        self.gnu = False
        self.unreadable = False
        if self.symtab is None or self.strtab is None:
            # _dl_setup_hash reads l_nbuckets anyway; do_lookup_x then loads D_PTR (map, l_info[DT_SYMTAB])
            # and l_info[DT_STRTAB] of such a map: an absent tag is a NULL l_info.  (A pointer outside the
            # file is read only at a matching chain entry: not modelled, the map is skipped.)
            ht = elf.dyn(DT.GNU_HASH) if elf.dyn(DT.GNU_HASH) is not None else elf.dyn(DT.HASH)
            off = elf.vaddr_to_offset(ht) if ht is not None else None
            self.unreadable = (symtab is None or strtab is None) and off is not None \
                and off + 4 <= len(self.data) and struct.unpack_from("<I", self.data, off)[0] != 0
            return
        gh = elf.dyn(DT.GNU_HASH)
        if gh is not None and (off := elf.vaddr_to_offset(gh)) is not None:
            self._setup_gnu(off)
        else:
            h = elf.dyn(DT.HASH)
            if h is not None and (off := elf.vaddr_to_offset(h)) is not None:
                self._setup_sysv(off)
        vs = elf.dyn(DT.VERSYM)
        self.versym_off = elf.vaddr_to_offset(vs) if vs is not None else None
        self.versions = _versions(elf)
        # l_versyms is set only when the object has version records (_dl_check_map_versions)
        self.has_versyms = bool(elf.verneed or elf.verdef) and self.versym_off is not None

    versym_off: int | None = None
    unreadable = False  # a hash table without DT_SYMTAB or DT_STRTAB: a lookup here is SIGSEGV
    versions: dict[int, Version] = {}
    keyed_versions: dict[int, tuple] | None = None  # ldsim.relocate's memo keys of `versions`

    def _setup_gnu(self, off: int) -> None:
        d = self.data
        nbuckets, symbias, bitmask_nwords, shift = struct.unpack_from("<IIII", d, off)
        self.gnu = True
        self.nbuckets = nbuckets
        self.symbias = symbias
        self.bloom_mask = bitmask_nwords - 1
        # do_lookup_x shifts the 32-bit hash by l_gnu_shift as read: x86's shr takes the count modulo 32
        self.shift = shift & 31
        self.bloom_off = off + 16
        self.buckets_off = self.bloom_off + self.word.size * bitmask_nwords
        self.chain_off = self.buckets_off + 4 * nbuckets

    def _setup_sysv(self, off: int) -> None:
        nbucket, nchain = struct.unpack_from("<II", self.data, off)
        self.nbuckets = nbucket
        self.buckets_off = off + 8
        self.chain_off = self.buckets_off + 4 * nbucket

    def symbol(self, idx: int) -> Sym:
        s = self._syms.get(idx)
        if s is None:
            name_off, info, other, shndx, value, size = self.unpack_sym(self.data, self.symtab + self.syment * idx)
            end = self.data.find(b"\0", self.strtab + name_off)
            name = bytes(self.data[self.strtab + name_off:end]).decode("utf-8", "surrogateescape")
            s = self._syms[idx] = _new_sym(Sym, (idx, name, info, other, shndx, value, size))
        return s

    def brief(self, idxs: list[int]) -> list[tuple[bytes, int, int, int | None]]:
        """(name, st_info, st_other, versym) of each symbol index, the name as the bytes `symbol` decodes:
        each entry unpacked where it lies and its name cut from the file, no Sym made (a scan asks this for
        each file's 300k references; one `symbol` call each was a third of its undefined-symbol check;
        unpacking every entry up to the highest index and copying DT_STRTAB made 3x the entries and
        36 MB of copies).  An index or name outside the tables takes the one-by-one way."""
        if not idxs:
            return []
        d = self.data
        size = len(d)
        symtab, strtab, vo, ent = self.symtab, self.strtab, self.versym_off, self.syment
        if symtab + ent * (max(idxs) + 1) > size or (vo is not None and vo + 2 * (max(idxs) + 1) > size):
            return [self._brief1(i) for i in idxs]
        unpack = self.unpack_sym
        vunpack = _U16.unpack_from
        find = d.find
        out = []
        append = out.append
        for i in idxs:
            o, info, other, _, _, _ = unpack(d, symtab + ent * i)
            o += strtab
            end = find(b"\0", o)
            if end < 0:
                append(self._brief1(i))
                continue
            append((d[o:end], info, other, vunpack(d, vo + 2 * i)[0] if vo is not None else None))
        return out

    def _brief1(self, idx: int) -> tuple[bytes, int, int, int | None]:
        s = self.symbol(idx)
        return s.name.encode("utf-8", "surrogateescape"), s.info, s.other, self.versym(idx)

    def versym(self, idx: int) -> int | None:
        if self.versym_off is None:
            return None
        return _U16.unpack_from(self.data, self.versym_off + 2 * idx)[0]

    def may_define(self, new_hash: int) -> bool:
        """The GNU bloom filter's answer (True for SysV tables): False means the name is not here."""
        if not self.gnu:
            return self.nbuckets != 0
        w = self.word
        word = w.unpack_from(self.data, self.bloom_off + w.size * ((new_hash >> self.wlog) & self.bloom_mask))[0]
        m = self.wmask
        return bool((word >> (new_hash & m)) & (word >> ((new_hash >> self.shift) & m)) & 1)

    def bloom_words(self) -> tuple[int, ...] | None:
        """The GNU bloom filter's words, unpacked once (None for SysV tables, or a filter the file does not
        hold whole): `may_define` without a read per question, for the ~400k names a scan finds absent."""
        f = self._bloom
        if f is False:
            f = None
            if self.gnu:
                n = self.bloom_mask + 1
                if 0 < n and self.bloom_off + self.word.size * n <= len(self.data):
                    f = struct.unpack_from(f"<{n}{self.word.format[-1]}", self.data, self.bloom_off)
            self._bloom = f
        return f

    _bloom: tuple[int, ...] | None | bool = False

    def chain(self, name: str, new_hash: int) -> Iterator[int]:
        """Indices of the hash chain `do_lookup_x` walks for `name` (GNU: hash-equal entries only)."""
        if self.nbuckets == 0:
            return
        d = self.data
        if self.gnu:
            if not self.may_define(new_hash):
                return
            bucket = struct.unpack_from("<I", d, self.buckets_off + 4 * (new_hash % self.nbuckets))[0]
            if bucket == 0:
                return
            idx = bucket
            while True:
                h = struct.unpack_from("<I", d, self.chain_off + 4 * (idx - self.symbias))[0]
                if ((h ^ new_hash) >> 1) == 0:
                    yield idx
                if h & 1:
                    return
                idx += 1
        else:
            old = elf_hash(name.encode("utf-8", "surrogateescape"))
            idx = struct.unpack_from("<I", d, self.buckets_off + 4 * (old % self.nbuckets))[0]
            seen = 0
            while idx != 0 and seen < 1 << 20:
                yield idx
                idx = struct.unpack_from("<I", d, self.chain_off + 4 * idx)[0]
                seen += 1


def _versions(elf: ElfFile) -> dict[int, Version]:
    """l_versions: needed versions by vna_other, then defined non-base versions by vd_ndx."""
    out: dict[int, Version] = {}
    for vn in elf.verneed:
        for aux in vn.entries:
            out[aux.other & 0x7FFF] = Version(aux.name, aux.hash, bool(aux.other & 0x8000), vn.file)
    for vd in elf.verdef:
        if not vd.flags & VER_FLG_BASE and vd.names:
            out[vd.index & 0x7FFF] = Version(vd.names[0], vd.hash)
    return out


class SymbolTables:
    """Symbol tables built on demand, one per parsed file; owned by whoever owns the FileCache."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[ElfFile, SymbolTable]] = {}
        self._hashes: dict[str, int] = {}
        self.raw_hashes: dict[bytes, int] = {}  # the same, by the names' bytes (the scan's checks)
        # ldsim.relocate's memo of lookups past a program's own object: per sequence of tables, per type
        # class, memo key -> found or not
        self.tail_memos: dict[tuple, tuple[dict, ...]] = {}

    def gnu_hash(self, name: str) -> int:
        """dl_new_hash of a name, computed once per run (a thousand programs look up `free`)."""
        h = self._hashes.get(name)
        if h is None:
            h = self._hashes[name] = gnu_hash(name.encode("utf-8", "surrogateescape"))
        return h

    def hash_of(self, name: bytes) -> int:
        """`gnu_hash` of a raw name, computed once per run."""
        h = self.raw_hashes.get(name)
        if h is None:
            h = self.raw_hashes[name] = gnu_hash(name)
        return h

    def of(self, elf: ElfFile) -> SymbolTable:
        hit = self._by_id.get(id(elf))
        if hit is None or hit[0] is not elf:
            hit = self._by_id[id(elf)] = (elf, SymbolTable(elf))
        return hit[1]
