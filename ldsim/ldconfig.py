"""ldconfig 2.36 emulation: directory list, scanning, link plan, cache entries (elf/ldconfig.c).

Pure given a World: `plan_ldconfig` returns what ldconfig would print, link and store; `apply_plan`
performs it on the host filesystem under the World's root.  Mirrors `main`, `add_dir_1`,
`add_glibc_hwcaps_subdirectories`, `search_dir`, `create_links`, `manual_link` (elf/ldconfig.c),
`process_file` (elf/readlib.c) and `process_elf_file` (elf/readelflib.c, sysdeps/unix/sysv/linux/x86).
The aux cache (/var/cache/ldconfig/aux-cache) is loaded unless `-i` or `-C`, consulted before reading a
file, and written after the cache, as `load_aux_cache`/`search_aux_cache`/`save_aux_cache` do.

ELF reading: a private struct reader mirroring readelflib.c, because ldconfig's reading differs from
ld.so's (check_ptr only bounds start pointers, i386 libc6 detection, ISA level from PT_GNU_PROPERTY);
`ldsim.elf` models the loader's view.
"""

from __future__ import annotations

import os
import stat as S
import struct
from dataclasses import dataclass, field
from typing import Literal

from ldsim import ldcache
from ldsim.ldcache import NewEntry, libcmp
from ldsim.ldconf import LIB_TYPES, expand_conf
from ldsim.world import World

LD_SO_CONF = "/etc/ld.so.conf"
LD_SO_CACHE = "/etc/ld.so.cache"
SYSTEM_DIRS = ("/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/lib/", "/usr/lib/")

FLAG_ANY, FLAG_LIBC4, FLAG_ELF, FLAG_ELF_LIBC5, FLAG_ELF_LIBC6 = -1, 0x0000, 0x0001, 0x0002, 0x0003
FLAG_X8664_LIB64, FLAG_X8664_LIBX32 = 0x0300, 0x0800
LIB_TYPE_FLAGS = dict(zip(LIB_TYPES, (FLAG_LIBC4, FLAG_ELF_LIBC5, FLAG_ELF_LIBC6, FLAG_ELF_LIBC6)))

HWCAP_NAMES = ("sse2", "x86_64", "avx512_1")  # ldconfig's x86 table: bits 0..2
PLATFORMS = ("i586", "i686", "haswell", "xeon_phi")  # bits 48..51
TLS_SUBPATH, TLS_HWCAP_BIT = "tls", 63
HWCAP_IMPORTANT = 0x7
GLIBC_HWCAPS = "glibc-hwcaps"

KNOWN_INTERPRETERS = ("/lib/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2", "/libx32/ld-linux-x32.so.2",
                      "/lib64/ld-linux-x86-64.so.2")
KNOWN_LIBS = ("libc.so.6", "libm.so.6")
# ld_sonames[]: the missing commas after the riscv names glue three strings together in glibc
LD_SONAMES = (
    "ld-kfreebsd-x86-64.so.1", "ld-linux-aarch64.so.1", "ld-linux-aarch64_be.so.1", "ld-linux-armhf.so.3",
    "ld-linux-ia64.so.2", "ld-linux-mipsn8.so.1",
    "ld-linux-riscv64-lp64.so.1" "ld-linux-riscv64-lp64d.so.1" "ld-linux-x32.so.2",
    "ld-linux-x86-64.so.2", "ld-linux.so.2", "ld-linux.so.3", "ld.so.1", "ld64.so.1", "ld64.so.2",
)

Stream = Literal[1, 2]


def error_lines(msg: str, e: OSError | int | None = None) -> list[str]:
    """`error (status, errnum, msg)`: newlines inside the message (often a trailing one) split lines."""
    num = e.errno if isinstance(e, OSError) else e
    text = "ldconfig: " + msg + (": " + os.strerror(num) if num else "")
    return text.split("\n")


@dataclass(frozen=True)
class Options:
    """ldconfig's command line.  `hwcap_mask` stands for LD_HWCAP_MASK (strtoul'd by the caller)."""

    config_file: str = LD_SO_CONF
    cache_file: str = LD_SO_CACHE
    fmt: ldcache.CacheFormat = "new"
    dirs: tuple[str, ...] = ()
    build_cache: bool = True  # -N / -n clear it
    only_cline: bool = False  # -n
    link: bool = True  # -X clears it
    manual_link: bool = False  # -l
    verbose: bool = False
    hwcap_mask: int = HWCAP_IMPORTANT
    generator: str = ldcache.GENERATOR_2_36
    root_mode: bool = False  # -r without chroot privilege: relative includes are fatal
    ignore_aux_cache: bool = False  # -i, and -C (a non-standard cache): the aux cache is not loaded
    free_fds: int | None = None  # descriptors free below RLIMIT_NOFILE (None: stop include cycles early)
    cache_file_shown: str | None = None  # the name in messages when -r could not chroot (chroot_canon's)


@dataclass(frozen=True)
class LinkAction:
    """`unlink(path)` or `symlink(target, path)`; paths as seen inside the root."""

    kind: Literal["unlink", "symlink"]
    path: str
    target: str = ""


@dataclass
class DirEntry:
    """struct dir_entry."""

    path: str
    flag: int
    from_file: str
    from_line: int
    dev: int
    ino: int
    hwcaps: str | None = None


AUX_CACHE = "/var/cache/ldconfig/aux-cache"  # _PATH_LDCONFIG_AUX_CACHE
AUX_CACHEMAGIC = b"glibc-ld.so.auxcache-2.0"
_AUX_HEADER = struct.Struct("<24sII")  # magic, nlibs, len_strings
_AUX_ENTRY = struct.Struct("<QQQQiII4x")  # id (ino, ctime, size, dev), flags, soname, isa_level, padding
_PRIMES = (1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287, 1048573, 2097143, 4194301,
           8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909, 1073741789, 2147483647)
AuxId = tuple  # (ino, ctime, size, dev), each uint64


def aux_id(st: os.stat_result) -> AuxId:
    return (st.st_ino, st.st_ctime_ns // 1_000_000_000, st.st_size, st.st_dev)


class AuxCache:
    """The auxiliary cache of elf/cache.c: soname, flags and ISA level of each file read, keyed by
    (ino, ctime, size, dev), in a chained hash table whose bucket order is the file's entry order."""

    def __init__(self, size: int = _PRIMES[3]) -> None:
        self.buckets: list[list[list]] = [[] for _ in range(size)]  # entries [id, flags, isa, soname, used]

    @staticmethod
    def _hash(i: AuxId) -> int:
        """Mirrors `aux_cache_entry_id_hash`."""
        ino, ctime, size, dev = i
        ret = ((((ino * 11 + ctime) * 11 + size) * 11) + dev) & ldcache.U64
        return (ret ^ (ret >> 32)) & 0xFFFFFFFF

    def search(self, i: AuxId) -> list | None:
        """Mirrors `search_aux_cache`: a hit is marked used (saved again)."""
        for entry in self.buckets[self._hash(i) % len(self.buckets)]:
            if entry[0] == i:
                entry[4] = True
                return entry
        return None

    def insert(self, i: AuxId, flags: int, isa_level: int, soname: str | None, used: bool) -> None:
        """Mirrors `insert_to_aux_cache`: at the head of its chain."""
        self.buckets[self._hash(i) % len(self.buckets)].insert(0, [i, flags, isa_level, soname, used])

    @classmethod
    def load(cls, data: bytes | None) -> AuxCache:
        """Mirrors `load_aux_cache`: a missing or malformed file gives an empty table."""
        if data is None or len(data) < _AUX_HEADER.size:
            return cls()
        magic, nlibs, len_strings = _AUX_HEADER.unpack_from(data)
        if magic != AUX_CACHEMAGIC or len(data) != _AUX_HEADER.size + nlibs * _AUX_ENTRY.size + len_strings:
            return cls()
        aux = cls(next((p for p in _PRIMES if p >= nlibs), nlibs))
        strings = _AUX_HEADER.size + nlibs * _AUX_ENTRY.size
        for k in range(nlibs):
            ino, ctime, size, dev, flags, soname, isa = _AUX_ENTRY.unpack_from(data, _AUX_HEADER.size + k * _AUX_ENTRY.size)
            name = _cstring(data, strings + soname) if soname else None
            aux.insert((ino, ctime, size, dev), flags, isa, name, False)
        return aux

    def to_bytes(self) -> bytes:
        """Mirrors `save_aux_cache`'s contents: used entries, bucket by bucket, names after an empty one."""
        used = [e for chain in self.buckets for e in chain if e[4]]
        strings = bytearray(b"\0")
        entries = bytearray()
        for i, flags, isa, soname, _ in used:
            off = 0
            if soname is not None:
                off = len(strings)
                strings += soname.encode("utf-8", "surrogateescape") + b"\0"
            entries += _AUX_ENTRY.pack(*i, flags, off, isa)
        return _AUX_HEADER.pack(AUX_CACHEMAGIC, len(used), len(strings)) + entries + strings


@dataclass
class Plan:
    dirs: list[DirEntry] = field(default_factory=list)
    entries: list[NewEntry] = field(default_factory=list)  # in add_to_cache order
    hwcaps_names: list[str] = field(default_factory=list)  # every glibc-hwcaps name met
    actions: list[LinkAction] = field(default_factory=list)
    unlinked: set[str] = field(default_factory=set)  # stale links search_dir removed: gone for create_links
    aux: AuxCache | None = None
    output: list[tuple[Stream, str]] = field(default_factory=list)  # lines, stdout=1 stderr=2
    exit_status: int = 0
    aborts: bool = False  # glibc 2.36 writes past its old-format array (see old_array_overflows)

    def out(self, text: str) -> None:
        self.output.append((1, text))

    def err(self, msg: str, e: OSError | int | None = None) -> None:
        self.output.extend((2, line) for line in error_lines(msg, e))

    def cache_bytes(self, opts: Options) -> bytes:
        return ldcache.build_cache(self.entries, opts.fmt, opts.generator, self.hwcaps_names)


# ------------------------------------------------------------------------------------------ names


def is_dso(name: str) -> bool:
    """Mirrors `_dl_is_dso` (elf/dl-is_dso.h)."""
    return ((name.startswith("lib") or name.startswith("ld-")) and ".so" in name) \
        or name.startswith("ld.so.") or name.startswith("ld64.so.")


def is_hwcap_platform(name: str, hwcap_mask: int) -> bool:
    """Mirrors `is_hwcap_platform` (elf/ldconfig.c)."""
    if name in HWCAP_NAMES and (1 << HWCAP_NAMES.index(name)) & hwcap_mask:
        return True
    return name in PLATFORMS or name == TLS_SUBPATH


def path_hwcap(path: str) -> int:
    """Mirrors `path_hwcap`: trailing hwcap/platform/tls components, each adding its bit."""
    hwcap = 0
    parts = path.split("/")
    while len(parts) > 1:
        last = parts.pop()
        if last in HWCAP_NAMES:
            bit = HWCAP_NAMES.index(last)
        elif last in PLATFORMS:
            bit = 48 + PLATFORMS.index(last)
        elif last == TLS_SUBPATH:
            bit = TLS_HWCAP_BIT
        else:
            break
        hwcap = (hwcap + (1 << bit)) & ldcache.U64
    return hwcap


def implicit_soname(lib: str, flag: int) -> str:
    """Mirrors `implicit_soname` (elf/readlib.c): a.out names keep only the major number."""
    if flag & 0xFF != FLAG_LIBC4:
        return lib
    i = lib.find(".so.")
    if i >= 0:
        j = lib.find(".", i + 4)
        if j >= 0:
            return lib[:j]
    return lib


# --------------------------------------------------------------------------------------- ELF reader


class _Truncated(Exception):
    pass


@dataclass(frozen=True)
class _Layout:
    ehdr: struct.Struct  # e_type e_machine ... phoff ... phentsize phnum
    phdr: struct.Struct
    dyn: struct.Struct
    nhdr: struct.Struct
    addr: int


_L32 = _Layout(struct.Struct("<16xHHIIIIIHHH"), struct.Struct("<IIIIIIII"), struct.Struct("<iI"),
               struct.Struct("<III"), 4)
_L64 = _Layout(struct.Struct("<16xHHIQQQIHHH"), struct.Struct("<IIQQQQQQ"), struct.Struct("<qQ"),
               struct.Struct("<III"), 8)
PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_GNU_PROPERTY = 2, 3, 1, 0x6474E553
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME = 0, 1, 5, 14
NT_GNU_PROPERTY_TYPE_0, GNU_PROPERTY_X86_ISA_1_NEEDED = 5, 0xC0008002


@dataclass
class _ElfInfo:
    flag: int
    soname: str | None
    isa_level: int


PAGE_SIZE = 4096


def _mapped(data: bytes) -> bytes:
    """The file as ldconfig's mmap shows it: the last page is filled with zeros past the end."""
    return data + bytes(-len(data) % PAGE_SIZE)


def _check_ptr(off: int, file_length: int) -> None:
    """Mirrors readelflib.c's `check_ptr`: a pointer past the end of the file (not at it) is truncation."""
    if off < 0 or off > file_length:
        raise _Truncated


def _unpack(st: struct.Struct, mem: bytes, off: int) -> tuple:
    """A read through a pointer: zeros past the end of the file, within its last page."""
    if off < 0 or off + st.size > len(mem):
        raise _Truncated  # ldconfig would fault outside its mapping; we call it truncated
    return st.unpack_from(mem, off)


def _cstring(mem: bytes, off: int) -> str:
    if off < 0 or off > len(mem):
        raise _Truncated
    end = mem.find(b"\0", off)
    return mem[off:end if end >= 0 else len(mem)].decode("utf-8", "surrogateescape")


def _isa_level(data: bytes, L: _Layout, off: int, size: int) -> int:
    """The PT_GNU_PROPERTY walk of readelflib.c with x86 `read_gnu_property`."""
    level = 0
    pos = off
    while pos + L.nhdr.size - off < size:
        namesz, descsz, ntype = _unpack(L.nhdr, data, pos)
        if namesz == 4 and ntype == NT_GNU_PROPERTY_TYPE_0 and data[pos + 12:pos + 16] == b"GNU\0":
            if descsz < 8 or descsz % L.addr:
                return level
            p = pos + 16
            end = p + descsz
            last = 0
            while True:
                ptype, datasz = struct.unpack_from("<II", data, p) if p + 8 <= len(data) else (0, 0)
                if ptype < last:
                    return level
                p += 8
                if p + datasz > end:
                    return level
                last = ptype
                if ptype > GNU_PROPERTY_X86_ISA_1_NEEDED:
                    return level
                if ptype == GNU_PROPERTY_X86_ISA_1_NEEDED:
                    if datasz == 4 and p + 4 <= len(data):
                        needed = struct.unpack_from("<I", data, p)[0]
                        if needed:
                            level = needed.bit_length() - 1
                    return level
                p += (datasz + L.addr - 1) & ~(L.addr - 1)
                if end - p < 8:
                    return level
        step = 12 + ((namesz + L.addr - 1) & ~(L.addr - 1)) + ((descsz + L.addr - 1) & ~(L.addr - 1))
        pos += step
    return level


def _process_elf_class(plan: Plan, opts: Options, data: bytes, file_name: str, cls: int) -> _ElfInfo | None:
    """Mirrors `process_elf32_file`/`process_elf64_file` (elf/readelflib.c)."""
    want = 1 if cls == 32 else 2
    if data[4] != want:
        if opts.verbose:
            if data[4] == 1:
                plan.err(f"{file_name} is a 32 bit ELF file.\n")
            elif data[4] == 2:
                plan.err(f"{file_name} is a 64 bit ELF file.\n")
            else:
                plan.err(f"Unknown ELFCLASS in file {file_name}.\n")
        return None
    L = _L32 if cls == 32 else _L64
    length, mem = len(data), _mapped(data)
    e_type, _m, _v, _entry, phoff, _sh, _f, _eh, _phentsize, phnum = _unpack(L.ehdr, mem, 0)
    _check_ptr(phoff, length)
    info = _ElfInfo(FLAG_ELF, None, 0)
    dyn_addr = dyn_size = 0
    phdrs = []
    for i in range(phnum):
        _check_ptr(phoff + i * L.phdr.size, length)  # the start of each header only
        ph = _unpack(L.phdr, mem, phoff + i * L.phdr.size)
        if cls == 32:
            p_type, p_offset, p_vaddr, _pa, p_filesz, _ms, _fl, p_align = ph
        else:
            p_type, _fl, p_offset, p_vaddr, _pa, p_filesz, _ms, p_align = ph
        phdrs.append((p_type, p_offset, p_vaddr, p_filesz))
        if p_type == PT_DYNAMIC:
            if dyn_addr:
                plan.err("more than one dynamic segment\n")
            dyn_addr, dyn_size = p_offset & 0xFFFFFFFF, p_filesz  # dynamic_addr is an unsigned int
        elif p_type == PT_INTERP:
            _check_ptr(p_offset, length)
            if _cstring(mem, p_offset) in KNOWN_INTERPRETERS:
                info.flag = FLAG_ELF_LIBC6
        elif p_type == PT_GNU_PROPERTY and p_align == L.addr:
            info.isa_level = _isa_level(mem, L, p_offset, p_filesz)
    if dyn_size == 0:
        return None
    _check_ptr(dyn_addr, length)
    strtab = None
    pos = dyn_addr
    while True:  # the DT_STRTAB search checks each entry after reading its tag
        tag, val = _unpack(L.dyn, mem, pos)
        if tag == DT_NULL:
            break
        _check_ptr(pos, length)
        if tag == DT_STRTAB:
            # ElfW(Off) loadoff = -1, also its "not found" mark: a segment whose address minus offset
            # is all ones counts as none (loadoff 0)
            off_mask = (1 << cls) - 1
            loadoff = off_mask
            for p_type, p_offset, p_vaddr, p_filesz in phdrs:
                if p_type == PT_LOAD and p_vaddr <= val < p_vaddr + p_filesz:
                    loadoff = (p_vaddr - p_offset) & off_mask
                    break
            if loadoff == off_mask:
                loadoff = 0
            # `file_contents + d_val - loadoff` on 64-bit pointers: an unsigned 32-bit loadoff of a
            # segment whose offset exceeds its address puts the table ~4 GiB below the mapping; in
            # 64-bit files the subtraction wraps
            strtab = val - loadoff if cls == 32 else ((val - loadoff + (1 << 63)) & off_mask) - (1 << 63)
            _check_ptr(strtab, length)
            break
        pos += L.dyn.size
    if strtab is None:
        return None
    pos = dyn_addr
    while True:  # DT_NEEDED and DT_SONAME: entries unchecked, names checked
        tag, val = _unpack(L.dyn, mem, pos)
        if tag == DT_NULL:
            break
        pos += L.dyn.size
        if tag in (DT_NEEDED, DT_SONAME):
            _check_ptr(strtab + val, length)
            name = _cstring(mem, strtab + val)
            if tag == DT_NEEDED:
                if info.flag == FLAG_ELF and name in KNOWN_LIBS:
                    info.flag = FLAG_ELF_LIBC6
            else:
                info.soname = name
            if info.soname is not None and info.flag != FLAG_ELF:
                break
    return info


def _process_elf(plan: Plan, opts: Options, data: bytes, file_name: str) -> _ElfInfo | None:
    """Mirrors the x86 `process_elf_file` (sysdeps/unix/sysv/linux/x86/readelflib.c)."""
    machine = struct.unpack_from("<H", data, 18)[0]
    ei_class = data[4]
    file_flag = 0
    if machine == 62:
        file_flag = FLAG_X8664_LIB64 | FLAG_ELF_LIBC6 if ei_class == 2 else FLAG_X8664_LIBX32 | FLAG_ELF_LIBC6
    elif not (machine == 3 and ei_class == 1):
        if opts.verbose:
            plan.err(f"{file_name} is for unknown machine {machine}.\n")
        return None
    try:
        info = _process_elf_class(plan, opts, data, file_name, 32 if ei_class == 1 else 64)
    except _Truncated:
        plan.err(f"file {file_name} is truncated\n")
        return None
    if info is not None and file_flag:
        info.flag = file_flag
    return info


def process_file(plan: Plan, opts: Options, world: World, path: str, file_name: str, lib: str,
                 is_link: bool) -> _ElfInfo | None:
    """Mirrors `process_file` (elf/readlib.c): None when the file is not a usable library."""
    try:
        st = world.stat(path)
        data = world.read(path) if not S.S_ISDIR(st.st_mode) else None
    except OSError:
        if not (is_link and ".so" in file_name):
            plan.err(f"Input file {file_name} not found.\n")
        return None
    size = st.st_size
    if size < 64:  # sizeof (struct exec) and sizeof (Elf64_Ehdr)
        if size == 0:
            plan.err(f"File {file_name} is empty, not checked.")
        elif data is not None and data[:4] == b"\x7fELF"[:min(size, 4)]:
            plan.err(f"File {file_name} is too small, not checked.")
        return None
    if data is None:  # fopen succeeds on a directory, mmap does not
        plan.err(f"Cannot mmap file {file_name}.\n")
        return None
    if struct.unpack_from("<I", data, 0)[0] & 0xFFFF in (0o413, 0o314):  # a.out ZMAGIC / QMAGIC
        return _ElfInfo(FLAG_LIBC4, implicit_soname(lib, FLAG_LIBC4), 0)
    if data[:4] != b"\x7fELF":
        head = data[:512]
        if b"GROUP" not in head and b"GNU ld script" not in head \
                and not (len(file_name) > 7 and file_name.endswith("-gdb.py")):
            plan.err(f"{file_name} is not an ELF file - it has the wrong magic bytes at the start.\n")
        return None
    if struct.unpack_from("<H", data, 16)[0] != 3:  # ET_DYN
        return None
    return _process_elf(plan, opts, data, file_name)


# ------------------------------------------------------------------------------------------ dir list


class _DirList:
    """The `dir_entries` list with `add_single_dir`'s (dev, ino) de-duplication."""

    def __init__(self, plan: Plan, opts: Options, world: World) -> None:
        self.plan, self.opts, self.world = plan, opts, world

    def add_single(self, entry: DirEntry, verbose: bool) -> bool:
        for old in self.plan.dirs:
            if (old.dev, old.ino) == (entry.dev, entry.ino):
                if self.opts.verbose and verbose:
                    self.plan.err(f"Path `{entry.path}' given more than once")
                    self.plan.output.append((2, f"(from {entry.from_file}:{entry.from_line} and "
                                                f"{old.from_file}:{old.from_line})"))
                old.flag = entry.flag
                return False
        self.plan.dirs.append(entry)
        return True

    def add_glibc_hwcaps(self, entry: DirEntry) -> None:
        """Mirrors `add_glibc_hwcaps_subdirectories`: readdir order, non-hidden, no ':', a directory."""
        base = entry.path + "/" + GLIBC_HWCAPS
        try:
            names = self.world.listdir(base)
        except OSError:
            return
        for name in names:
            if name.startswith(".") or ":" in name:
                continue
            try:
                if S.S_ISREG(self.world.lstat(base + "/" + name).st_mode):
                    continue
                st = self.world.stat(base + "/" + name)
            except OSError:
                continue
            if S.S_ISDIR(st.st_mode):
                if name not in self.plan.hwcaps_names:
                    self.plan.hwcaps_names.append(name)
                sub = DirEntry(f"{entry.path}/{GLIBC_HWCAPS}/{name}", entry.flag, entry.from_file,
                               entry.from_line, st.st_dev, st.st_ino, hwcaps=name)
                self.add_single(sub, False)

    def add_dir_1(self, line: str, lib_type: str | None, from_file: str, from_line: int) -> None:
        """Mirrors `add_dir_1` after the text split (done by ldconf for config lines)."""
        flag = FLAG_ANY
        if lib_type is not None:
            flag = LIB_TYPE_FLAGS.get(lib_type, FLAG_ANY)
        path = line
        if not path:
            return
        try:
            st = self.world.stat(path)
        except OSError as e:
            if self.opts.verbose:
                self.plan.err(f"Can't stat {path}", e)
            return
        entry = DirEntry(path, flag, from_file, from_line, st.st_dev, st.st_ino)
        if self.add_single(entry, True):
            self.add_glibc_hwcaps(entry)


def _split_type(arg: str) -> tuple[str, str | None]:
    """`add_dir_1`'s canonification of a command-line directory: '=TYPE', trailing space, '/'."""
    t = None
    if "=" in arg:
        arg, t = arg.split("=", 1)
    return arg.rstrip(" \t\n\v\f\r").rstrip("/"), t


# ------------------------------------------------------------------------------------------ scanning


@dataclass
class _Dlib:
    name: str
    soname: str
    flag: int
    is_link: bool
    isa_level: int


def _create_links(plan: Plan, opts: Options, world: World, path: str, libname: str, soname: str) -> None:
    """Mirrors `create_links` (elf/ldconfig.c)."""
    full_lib, full_so = f"{path}/{libname}", f"{path}/{soname}"
    do_link = do_remove = True
    gone = full_so in plan.unlinked  # ldconfig unlinked it while scanning, before any create_links
    try:
        st_so = None if gone else world.stat(full_so)
    except OSError:
        st_so = None
    if st_so is not None:
        try:
            st_lib = world.stat(full_lib)
        except OSError:
            plan.err(f"Can't stat {full_lib}\n")
            return
        if soname in LD_SONAMES:
            if opts.verbose:
                plan.err(f"{full_lib} is the dynamic linker, ignoring\n")
            do_link = False
        if (st_lib.st_dev, st_lib.st_ino) == (st_so.st_dev, st_so.st_ino):
            do_link = False
        else:
            try:
                if not S.S_ISLNK(world.lstat(full_so).st_mode):
                    plan.err(f"{full_so} is not a symbolic link\n")
                    do_link = do_remove = False
            except OSError:
                pass
    else:
        try:
            do_remove = not gone and S.S_ISLNK(world.lstat(full_so).st_mode)
        except OSError:
            do_remove = False
    line = f"\t{soname} -> {libname}"
    if do_link and opts.link:
        if do_remove:
            plan.actions.append(LinkAction("unlink", full_so))
        if _symlink_fails(world, full_so):
            plan.err(f"Can't link {full_so} to {libname}")
            line += " (SKIPPED)"
        else:
            plan.actions.append(LinkAction("symlink", full_so, libname))
            line += " (changed)"
    if opts.verbose:
        plan.out(line)


NAME_MAX, PATH_MAX = 255, 4096


def _symlink_fails(world: World, path: str) -> bool:
    """Whether symlink(2) would refuse `path` whatever its target: a name too long (ENAMETOOLONG), or
    a parent that is no directory (ENOENT, ENOTDIR), as for a soname holding a '/' (/opt/a//usr/x)."""
    raw = path.encode("utf-8", "surrogateescape")
    if len(raw) >= PATH_MAX or any(len(part) > NAME_MAX for part in raw.split(b"/")):
        return True
    try:
        return not S.S_ISDIR(world.stat(path.rsplit("/", 1)[0] or "/").st_mode)
    except OSError:
        return True


def _scan_entry(plan: Plan, opts: Options, world: World, dirs: _DirList, entry: DirEntry, name: str,
                dlibs: list[_Dlib]) -> None:
    """One readdir entry of `search_dir`."""
    file_name = f"{entry.path}/{name}"
    try:
        lst = world.lstat(file_name)
    except OSError as e:
        plan.err(f"Cannot lstat {file_name}", e)
        return
    mode = lst.st_mode
    if not (S.S_ISLNK(mode) or S.S_ISREG(mode) or S.S_ISDIR(mode)):
        return
    if not is_dso(name) and (S.S_ISREG(mode) or (entry.hwcaps is None
                                                 and not is_hwcap_platform(name, opts.hwcap_mask))):
        return
    if name.endswith(".#prelink#") or (len(name) >= 17 and name[-17:-6] == ".#prelink#."):
        return
    is_link = S.S_ISLNK(mode)
    ident = lst
    if is_link:
        try:
            ident = world.stat(file_name)
        except OSError as e:
            if opts.verbose:
                plan.err(f"Cannot stat {file_name}", e)
            if opts.link and ".so." in name:
                plan.actions.append(LinkAction("unlink", file_name))
                plan.unlinked.add(file_name)
            return
        is_dir = S.S_ISDIR(ident.st_mode)
    else:
        is_dir = S.S_ISDIR(mode)
    if entry.hwcaps is None and is_dir and is_hwcap_platform(name, opts.hwcap_mask):
        dirs.add_single(DirEntry(file_name, entry.flag, entry.from_file, entry.from_line,
                                 ident.st_dev, ident.st_ino), False)
        return
    if not S.S_ISREG(mode) and not is_link:
        return
    ident_id = aux_id(ident)
    cached = plan.aux.search(ident_id) if plan.aux is not None else None
    if cached is not None:  # read before, in an earlier run or under another name in this one
        info = _ElfInfo(cached[1], cached[3], cached[2])
    else:
        info = process_file(plan, opts, world, file_name, file_name, name, is_link)
        if info is None:
            return
        if opts.build_cache and plan.aux is not None:
            plan.aux.insert(ident_id, info.flag, info.isa_level, info.soname, True)
    flag = info.flag
    soname = info.soname if info.soname is not None else implicit_soname(name, flag)
    if is_link and name != soname and not (name.endswith(".so") and soname.startswith(name)):
        is_link = False
    if is_link:
        soname = name
    if flag == FLAG_ELF and entry.flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6):
        flag = entry.flag
    if opts.verbose:
        for kind, wanted in (("libc5", FLAG_ELF_LIBC5), ("libc6", FLAG_ELF_LIBC6), ("libc4", FLAG_LIBC4)):
            if flag == wanted and entry.flag not in (wanted, FLAG_ANY):
                plan.err(f"{kind} library {file_name} in wrong directory")
    for d in dlibs:
        if d.soname == soname:
            if (not is_link and d.is_link) or (is_link == d.is_link and libcmp(d.name, name) < 0):
                if d.flag != flag:
                    if d.flag == FLAG_ELF and flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6):
                        d.flag = flag
                    elif d.flag in (FLAG_ELF_LIBC5, FLAG_ELF_LIBC6) and flag == FLAG_ELF:
                        d.flag = flag
                    else:
                        plan.err(f"libraries {d.name} and {name} in directory {entry.path} have same "
                                 f"soname but different type.")
                d.name, d.is_link, d.isa_level = name, is_link, info.isa_level
            return
    dlibs.insert(0, _Dlib(name, soname, flag, is_link, info.isa_level))


def search_dir(plan: Plan, opts: Options, world: World, dirs: _DirList, entry: DirEntry) -> None:
    """Mirrors `search_dir` (elf/ldconfig.c)."""
    hwcap = path_hwcap(entry.path) if entry.hwcaps is None else 0
    if opts.verbose:
        if entry.hwcaps is not None:
            head = f'{entry.path}: (hwcap: "{entry.hwcaps}")'
        elif hwcap:
            head = f"{entry.path}: (hwcap: 0x{hwcap:016x})"
        else:
            head = f"{entry.path}:"
        plan.out(f"{head} (from {entry.from_file}:{entry.from_line})")
    try:
        names = world.listdir(entry.path)
    except OSError as e:
        if opts.verbose:
            plan.err(f"Can't open directory {entry.path}", e)
        return
    dlibs: list[_Dlib] = []
    for name in names:
        _scan_entry(plan, opts, world, dirs, entry, name, dlibs)
    for d in dlibs:
        if entry.hwcaps is None:
            if not d.is_link:
                _create_links(plan, opts, world, entry.path, d.name, d.soname)
            filename = d.soname
        else:
            if opts.verbose:
                plan.out(f"\t{d.soname} -> {d.name}")
            filename = d.name
        if opts.build_cache:
            plan.entries.append(NewEntry(entry.path, filename, d.soname, d.flag, d.isa_level, hwcap,
                                         entry.hwcaps))


# ------------------------------------------------------------------------------------------ main


def _emit_conf(plan: Plan, opts: Options, world: World, dirs: _DirList) -> bool:
    conf = expand_conf(world, opts.config_file, root_mode=opts.root_mode, free_fds=opts.free_fds)
    diags = list(conf.diagnostics)
    for i, d in enumerate(conf.dirs + [None]):
        while diags and diags[0].after <= i:
            diag = diags.pop(0)
            if diag.ldsim_only:
                plan.output.append((2, "ldsim: " + diag.message))
            elif not diag.verbose_only or opts.verbose:
                plan.err(diag.message)
            if diag.fatal:
                plan.exit_status = 1
                return False
        if d is not None:
            dirs.add_dir_1(d.path, d.lib_type, d.file, d.line)
    return True


def _manual_link(plan: Plan, opts: Options, world: World, library: str) -> None:
    """Mirrors `manual_link` (elf/ldconfig.c)."""
    if "/" in library:
        path, libname = library.rsplit("/", 1)
        path = path or "/"
    else:
        path, libname = ".", library
    try:
        st = world.lstat(library)
    except OSError as e:
        plan.err(f"Cannot lstat {library}", e)
        return
    if not S.S_ISREG(st.st_mode):
        plan.err(f"Ignored file {library} since it is not a regular file.")
        return
    info = process_file(plan, opts, world, library, library, libname, False)
    if info is None:
        plan.err(f"No link created since soname could not be found for {library}")
        return
    soname = info.soname if info.soname is not None else implicit_soname(libname, info.flag)
    _create_links(plan, opts, world, path, libname, soname)


def plan_ldconfig(world: World, opts: Options) -> Plan:
    """Mirrors ldconfig's `main` (after option parsing) without touching anything."""
    plan = Plan()
    dirs = _DirList(plan, opts, world)
    if opts.manual_link:
        for lib in opts.dirs:
            _manual_link(plan, opts, world, lib)
        return plan
    for arg in opts.dirs:
        if opts.build_cache and not arg.startswith("/"):
            plan.err(f"relative path `{arg}' used to build cache")
            plan.exit_status = 1
            return plan
        path, t = _split_type(arg)
        if t is not None and t not in LIB_TYPES:
            plan.err(f"{t} is not a known library type")
        dirs.add_dir_1(path, t, "<cmdline>", 0)
    if not opts.only_cline:
        if not _emit_conf(plan, opts, world, dirs):
            return plan
        for d in SYSTEM_DIRS:
            dirs.add_dir_1(d.rstrip("/"), None, "<builtin>", 0)
    aux_data = None
    if not opts.ignore_aux_cache:
        try:
            aux_data = world.read(AUX_CACHE)
        except OSError:
            pass
    plan.aux = AuxCache.load(aux_data)
    i = 0
    while i < len(plan.dirs):  # search_dir may append legacy hwcap subdirectories
        search_dir(plan, opts, world, dirs, plan.dirs[i])
        i += 1
    if opts.build_cache and opts.fmt != "new":
        plan.aborts = old_array_overflows(plan.entries, opts.fmt)
    return plan


def old_array_overflows(entries: list[NewEntry], fmt: str) -> bool:
    """Whether glibc 2.36's save_cache writes past its old-format array: it stores a non-legacy entry's
    strings at libs[idx_new] (every entry counted) in an array sized for the non-legacy ones, so only a
    legacy-hwcap entry sorted before others pushes a write out.  What the overflow does then depends on
    the malloc heap (nothing seen, an abort, a SIGSEGV); without it ldconfig ends normally."""
    ordered = ldcache.sort_entries(entries)
    n_old = sum(1 for e in ordered if e.hwcap == 0)
    if fmt == "compat":
        n_old = (n_old + 1) & ~1
    return any(e.hwcap == 0 and i >= n_old for i, e in enumerate(ordered))


# ------------------------------------------------------------------------------------------ effects


def _host_dir(world: World, path: str) -> str:
    """The host path of `path`'s directory (resolved inside the root) joined with its last name."""
    parent, name = os.path.split(path)
    return os.path.join(world.host_path(parent or "/"), name)


def canon_in_unenterable_root(world: World, root: str, name: str) -> tuple[str | None, int]:
    """Mirrors `chroot_canon` (elf/chroot_canon.c) for a -r root that chroot(2) refused because it is
    missing or not a directory (ldconfig then translates paths itself): no component can be found, so
    the result is ROOT/NAME when only the last one is missing, else (None, errno of the lstat)."""
    parts: list[str] = []
    i, n = 0, len(name)
    while i < n:
        while i < n and name[i] == "/":
            i += 1
        j = name.find("/", i)
        j = n if j < 0 else j
        comp, i = name[i:j], j
        if not comp or comp == ".":
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        parts.append(comp)
        try:
            world.lstat("/" + "/".join(parts))
        except OSError as e:
            if j == n:  # a missing last component is fine
                break
            return None, e.errno or 0
    return root + "/" + "/".join(parts), 0


def apply_plan(world: World, opts: Options, plan: Plan) -> list[str]:
    """Perform the link actions, then write the cache as `save_cache` does (temp file `CACHE~`, then
    rename).  Returns the stderr lines: ldsim's own for a link it could not make, ldconfig's fatal
    messages for the cache (which end the run: exit 1)."""
    errors: list[str] = []
    for act in plan.actions:
        try:
            host = _host_dir(world, act.path)
            if act.kind == "unlink":
                os.unlink(host)
            else:
                tmp = host + ".ldsim~"
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                os.symlink(act.target, tmp)
                os.replace(tmp, host)
        except OSError as e:
            errors.append(f"ldsim: {act.path}: {e.strerror}")
    if opts.build_cache and not opts.manual_link and plan.exit_status == 0:
        failed = _save_cache(world, opts, plan.cache_bytes(opts))
        errors += failed
        if not failed and plan.aux is not None:
            _save_aux_cache(world, plan.aux.to_bytes())
    return errors


def _save_aux_cache(world: World, data: bytes) -> None:
    """Mirrors the writing half of `save_aux_cache`: the directory made (0700) if missing, every
    failure silent, a temporary file that could not be finished removed."""
    directory = os.path.dirname(AUX_CACHE)
    try:
        world.stat(directory)
    except OSError:
        try:
            os.mkdir(_host_dir(world, directory), 0o700)
        except OSError:
            return
    try:
        host_tmp = _host_dir(world, AUX_CACHE + "~")
        fd = os.open(host_tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        try:
            os.write(fd, data)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.rename(host_tmp, _host_dir(world, AUX_CACHE))
    except OSError:
        try:
            os.unlink(host_tmp)
        except OSError:
            pass


def _save_cache(world: World, opts: Options, data: bytes) -> list[str]:
    """Mirrors the writing half of `save_cache` (elf/cache.c): an existing `CACHE~` is truncated and
    reused (a symlink there fails: O_NOFOLLOW), each failure is fatal with its own message."""
    name, temp_name = opts.cache_file, opts.cache_file + "~"
    shown = opts.cache_file_shown or name
    try:
        host_tmp = _host_dir(world, temp_name)
        fd = os.open(host_tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        return error_lines(f"Can't create temporary cache file {shown}~", e)
    try:
        try:
            os.write(fd, data)
        except OSError as e:
            return error_lines("Writing of cache data failed", e)
        try:
            os.chmod(host_tmp, 0o644)  # "make sure user can always read cache file"
        except OSError as e:
            return error_lines(f"Changing access rights of {temp_name} to 0644 failed", e)
        try:
            os.fsync(fd)
        except OSError as e:
            return error_lines("Writing of cache data failed", e)
    finally:
        os.close(fd)
    try:
        os.rename(host_tmp, _host_dir(world, name))
    except OSError as e:
        return error_lines(f"Renaming of {temp_name} to {name} failed", e)
    return []
