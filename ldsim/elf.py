"""An immutable snapshot of what ld.so reads from an ELF file: header, program headers, PT_DYNAMIC.

Read the way the loader reads it (program headers, PT_DYNAMIC, DT_STRTAB translated through PT_LOAD), never
through section headers.  This is a small struct-based reader: importing pyelftools costs ~110 ms, which
alone would break the cold-start budget of `ldsim ldd`; pyelftools serves as the cross-check oracle of this
reader in tests/unit/test_elf.py.  Every malformed input raises `ElfError` with a one-line reason.
"""

from __future__ import annotations

import struct

from ldsim.record import Frozen, NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

_setattr = object.__setattr__


class ElfError(Exception):
    """The file is not an ELF file ldsim can read; the message is a one-line reason."""


class NotElf(ElfError):
    """No ELF magic: execve's binary formats all refuse it (ENOEXEC, "Exec format error")."""


class Unmapped(ElfError):
    """The loader would read an address no PT_LOAD segment maps readable (a hole, PROT_NONE, nothing):
    SIGSEGV."""


class StringsError(ElfError):
    """A string or version record the dynamic section points at cannot be read.  `partial`: the file
    without them, for the loader, which maps the object, checks its dynamic section and sets up its hash
    table before it reads any (those faults and errors come first); `cause`: the error itself."""

    def __init__(self, cause: ElfError, partial: ElfFile) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.partial = partial


class PastEof(ElfError):
    """The loader would read a page of a mapped segment that lies wholly past the end of the file: the
    kernel answers with SIGBUS (a truncated file maps without error; only the access faults)."""


PAGE = 4096  # the mapping granule: bytes past EOF up to the end of its page read as zero


class EIClass:
    NONE = 0
    ELF32 = 1
    ELF64 = 2


class EIData:
    NONE = 0
    LSB = 1
    MSB = 2


class EType:
    NONE = 0
    REL = 1
    EXEC = 2
    DYN = 3
    CORE = 4


class EMachine:
    I386 = 3
    MIPS = 8
    PPC = 20
    PPC64 = 21
    S390 = 22
    ARM = 40
    X86_64 = 62
    AARCH64 = 183
    RISCV = 243
    LOONGARCH = 258


class PT:
    LOAD = 1
    DYNAMIC = 2
    INTERP = 3
    NOTE = 4
    PHDR = 6
    TLS = 7
    GNU_EH_FRAME = 0x6474E550
    GNU_STACK = 0x6474E551
    GNU_RELRO = 0x6474E552
    GNU_PROPERTY = 0x6474E553


class DT:
    NULL = 0
    NEEDED = 1
    PLTRELSZ = 2
    PLTGOT = 3
    HASH = 4
    STRTAB = 5
    SYMTAB = 6
    RELA = 7
    RELASZ = 8
    RELAENT = 9
    STRSZ = 10
    SYMENT = 11
    INIT = 12
    FINI = 13
    SONAME = 14
    RPATH = 15
    SYMBOLIC = 16
    REL = 17
    RELSZ = 18
    RELENT = 19
    PLTREL = 20
    DEBUG = 21
    TEXTREL = 22
    JMPREL = 23
    BIND_NOW = 24
    INIT_ARRAY = 25
    FINI_ARRAY = 26
    INIT_ARRAYSZ = 27
    FINI_ARRAYSZ = 28
    RUNPATH = 29
    FLAGS = 30
    PREINIT_ARRAY = 32
    PREINIT_ARRAYSZ = 33
    SYMTAB_SHNDX = 34
    RELRSZ = 35
    RELR = 36
    RELRENT = 37
    GNU_HASH = 0x6FFFFEF5
    VERSYM = 0x6FFFFFF0
    RELACOUNT = 0x6FFFFFF9
    RELCOUNT = 0x6FFFFFFA
    FLAGS_1 = 0x6FFFFFFB
    VERDEF = 0x6FFFFFFC
    VERDEFNUM = 0x6FFFFFFD
    VERNEED = 0x6FFFFFFE
    VERNEEDNUM = 0x6FFFFFFF
    AUXILIARY = 0x7FFFFFFD
    FILTER = 0x7FFFFFFF


class DF:
    ORIGIN = 0x1
    SYMBOLIC = 0x2
    TEXTREL = 0x4
    BIND_NOW = 0x8
    STATIC_TLS = 0x10


class DF1:
    NOW = 0x1
    GLOBAL = 0x2
    GROUP = 0x4
    NODELETE = 0x8
    LOADFLTR = 0x10
    INITFIRST = 0x20
    NOOPEN = 0x40
    ORIGIN = 0x80
    DIRECT = 0x100
    INTERPOSE = 0x400
    NODEFLIB = 0x800
    PIE = 0x08000000


VER_FLG_WEAK = 0x2
# module-level ints for the parser's per-entry tests (a class attribute is a lookup each time)
_DT_NEEDED, _DT_STRTAB, _PT_LOAD = int(DT.NEEDED), int(DT.STRTAB), int(PT.LOAD)
_DEP_TAGS = frozenset((int(DT.NEEDED), int(DT.FILTER), int(DT.AUXILIARY)))
_new = tuple.__new__  # a named tuple from its fields in order, without the Python-level __new__
GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002
NT_GNU_PROPERTY_TYPE_0 = 5

# struct layouts per (class, data): Ehdr, Phdr, Dyn
_LAYOUTS: dict[tuple[int, int], tuple[struct.Struct, struct.Struct, struct.Struct]] = {}
for _cls, _w in ((1, "I"), (2, "Q")):
    for _data, _e in ((1, "<"), (2, ">")):
        if _cls == 2:
            ehdr = struct.Struct(_e + "16sHHIQQQIHHHHHH")
            phdr = struct.Struct(_e + "IIQQQQQQ")
            dyn = struct.Struct(_e + "qQ")
        else:
            ehdr = struct.Struct(_e + "16sHHIIIIIHHHHHH")
            phdr = struct.Struct(_e + "IIIIIIII")
            dyn = struct.Struct(_e + "iI")
        _LAYOUTS[(_cls, _data)] = (ehdr, phdr, dyn)


class Segment(NamedTuple):
    """A program header, in the 64-bit field order whatever the class."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


class Vernaux(NamedTuple):
    name: str
    hash: int
    flags: int
    other: int  # the version index this entry defines in the requester; bit 15 = hidden


class Verneed(NamedTuple):
    file: str
    entries: tuple[Vernaux, ...]
    version: int = 1  # vn_version: the loader accepts only 1 (it checks the first record's)


class Verdef(NamedTuple):
    index: int
    flags: int
    hash: int
    names: tuple[str, ...]  # the version's name (its parents are not read: the loader never does)
    version: int = 1  # vd_version: match_symbol accepts only 1


class Ident(NamedTuple):
    """e_ident and the header fields open_verify checks."""

    magic_ok: bool
    ei_class: int
    ei_data: int
    ei_version: int
    osabi: int
    abiversion: int
    pad_zero: bool
    e_type: int
    e_machine: int
    e_version: int
    e_phentsize: int


_IDENTS: dict[bytes, Ident | None] = {}  # the same files are opened again and again in a batch


def read_ident(head: bytes) -> Ident | None:
    """Decode the first bytes of a file as open_verify does (in host byte order); None when shorter than
    e_ident."""
    if type(head) is not bytes or len(head) > 64:
        return _read_ident(head)
    try:
        return _IDENTS[head]
    except KeyError:
        ident = _IDENTS[head] = _read_ident(head)
        return ident


def _read_ident(head: bytes) -> Ident | None:
    if len(head) < 16:
        return None
    ident = head[:16]
    ei_class, ei_data = ident[4], ident[5]
    # open_verify reads ElfW(Ehdr) in the loader's own (little-endian) byte order whatever EI_DATA says:
    # a big-endian x86-64 file passes the machine test and fails on EI_DATA, it is not skipped
    layout = _LAYOUTS.get((ei_class, 1)) or _LAYOUTS[(2, 1)]
    ehdr_s = layout[0]
    if len(head) < ehdr_s.size:
        fields = None
    else:
        fields = ehdr_s.unpack_from(head, 0)
    return Ident(
        magic_ok=ident[:4] == b"\x7fELF",
        ei_class=ei_class,
        ei_data=ei_data,
        ei_version=ident[6],
        osabi=ident[7],
        abiversion=ident[8],
        pad_zero=ident[9:16] == b"\0" * 7,
        e_type=fields[1] if fields else 0,
        e_machine=fields[2] if fields else 0,
        e_version=fields[3] if fields else 0,
        e_phentsize=fields[9] if fields else 0,
    )


class ElfFile(Frozen):
    """What the loader knows about one file after mapping it.  Single-valued dynamic tags: the last wins,
    as in elf_get_dynamic_info.  dynamic: raw (tag, value) up to DT_NULL; deps: DT_NEEDED / DT_FILTER /
    DT_AUXILIARY in dynamic-section order, as (tag, name); isa_needed: GNU_PROPERTY_X86_ISA_1_NEEDED bits,
    0 when absent; data: the file's bytes and last: tag -> last value (neither compared nor shown)."""

    __slots__ = ("ei_class", "ei_data", "osabi", "abiversion", "e_type", "e_machine", "e_entry", "e_phnum",
                 "e_phoff", "segments", "interp", "has_dynamic", "empty_dynamic", "dynamic", "needed", "soname",
                 "rpath", "runpath", "flags", "flags_1", "deps", "verneed", "verdef", "isa_needed", "interp_error", "data", "last")
    _fields = __slots__[:-2]

    def __init__(self, ei_class: int, ei_data: int, osabi: int, abiversion: int, e_type: int, e_machine: int,
                 e_entry: int, e_phnum: int, e_phoff: int, segments: tuple[Segment, ...], interp: str | None,
                 has_dynamic: bool, empty_dynamic: bool, dynamic: tuple[tuple[int, int], ...],
                 needed: tuple[str, ...], soname: str | None, rpath: str | None, runpath: str | None, flags: int,
                 flags_1: int, deps: tuple[tuple[int, str], ...], verneed: tuple[Verneed, ...],
                 verdef: tuple[Verdef, ...], isa_needed: int, data: Sequence[int],
                 last: dict[int, int] | None = None, interp_error: str | None = None) -> None:
        values = locals()
        for f in self._fields:
            _setattr(self, f, values[f])
        _setattr(self, "data", data)
        _setattr(self, "last", {} if last is None else last)

    def replace(self, **changes) -> ElfFile:
        changes.setdefault("data", self.data)
        changes.setdefault("last", self.last)
        return super().replace(**changes)

    def dyn(self, tag: int) -> int | None:
        """The value of the last entry with `tag`, as elf_get_dynamic_info keeps it."""
        return self.last.get(tag)

    @property
    def effective_rpath(self) -> str | None:
        """DT_RPATH is discarded when DT_RUNPATH is present (get-dynamic-info.h)."""
        return None if self.runpath is not None else self.rpath

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        for seg in self.segments:
            if seg.type == PT.LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return seg.offset + (vaddr - seg.vaddr)
        return None

    @property
    def is_64(self) -> bool:
        return self.ei_class == EIClass.ELF64

    @property
    def little(self) -> bool:
        return self.ei_data == EIData.LSB


ZERO_FILL, OUTSIDE = -1, -2  # what _Partial.mapped_offset finds at an address besides a file offset
STRING_BUDGET = 1 << 24  # bytes of distinct strings one file may make us decode (memory stays bounded)
VERSION_BUDGET = 1 << 16  # Verneed/Vernaux/Verdef/Verdaux records per file (a version index has 15 bits)


def _cstr(data: Sequence[int], off: int, what: str, budget: list[int] | None = None) -> str:
    """The NUL-terminated string at `off`; `budget` (one-element list) bounds the bytes decoded per file,
    so that thousands of entries naming one huge string cannot exhaust memory."""
    if off < 0 or off >= len(data):
        raise ElfError(f"{what} string offset 0x{off:x} outside the file")
    limit = len(data) if budget is None else min(len(data), off + budget[0] + 1)
    end = data.find(b"\0", off, limit) if hasattr(data, "find") else -1
    if end < 0:
        if limit < len(data):
            raise ElfError(f"{what} strings exceed {STRING_BUDGET} bytes")
        raise ElfError(f"{what} string at 0x{off:x} is not terminated")
    if budget is not None:
        budget[0] -= end - off
    return bytes(data[off:end]).decode("utf-8", "surrogateescape")


def parse_elf(data: Sequence[int]) -> ElfFile:
    """Parse an ELF file's loader-visible parts.  `data` is bytes or an mmap of the whole file.
    Any malformation surfaces as ElfError with a one-line reason."""
    try:
        return _parse_elf(data)
    except (struct.error, IndexError, ValueError, OverflowError, MemoryError) as e:
        raise ElfError(f"malformed ELF file ({e.__class__.__name__})") from None


class ProgramHeaders(NamedTuple):
    """The ELF header fields and program headers, all that mapping a file needs."""

    e_type: int
    e_machine: int
    e_entry: int
    e_phoff: int
    e_phnum: int
    segments: tuple[Segment, ...]


def read_program_headers(data: Sequence[int]) -> ProgramHeaders:
    """The header and program headers alone, for the loader's mapping pass, which comes before anything
    in the dynamic section is read; ElfError when they cannot be read."""
    try:
        return _read_program_headers(data)
    except (struct.error, IndexError, ValueError, OverflowError, MemoryError) as e:
        raise ElfError(f"malformed ELF file ({e.__class__.__name__})") from None


def _read_program_headers(data: Sequence[int]) -> ProgramHeaders:
    size = len(data)
    if size < 16 or bytes(data[:4]) != b"\x7fELF":
        raise NotElf("not an ELF file")
    cls, enc = data[4], data[5]
    layout = _LAYOUTS.get((cls, enc))
    if layout is None:
        raise ElfError(f"unsupported ELF class {cls} / data encoding {enc}")
    ehdr_s, phdr_s, _ = layout
    if size < ehdr_s.size:
        raise ElfError("truncated ELF header")
    (_, e_type, e_machine, _, e_entry, e_phoff, _, _, _, e_phentsize, e_phnum, *_rest) = ehdr_s.unpack_from(data, 0)
    if e_phnum and e_phentsize != phdr_s.size:
        raise ElfError(f"program header size {e_phentsize} is not {phdr_s.size}")
    if e_phoff + e_phnum * phdr_s.size > size:
        raise ElfError("program headers extend past the end of the file")
    raw_phdrs = phdr_s.iter_unpack(data[e_phoff:e_phoff + e_phnum * phdr_s.size]) if e_phnum else ()
    if cls == 2:
        segments = tuple([_new(Segment, (t, fl, o, v, fs, ms, al)) for t, fl, o, v, _, fs, ms, al in raw_phdrs])
    else:
        segments = tuple([_new(Segment, (t, fl, o, v, fs, ms, al)) for t, o, v, _, fs, ms, fl, al in raw_phdrs])
    return _new(ProgramHeaders, (e_type, e_machine, e_entry, e_phoff, e_phnum, segments))


def _parse_elf(data: Sequence[int]) -> ElfFile:
    e_type, e_machine, e_entry, e_phoff, e_phnum, segments = _read_program_headers(data)
    size = len(data)
    cls, enc = data[4], data[5]
    dyn_s = _LAYOUTS[(cls, enc)][2]

    interp = None
    dyn_seg = None
    empty_dynamic = False
    prop_seg = None
    interp_error = None
    for seg in segments:
        if seg.type == PT.INTERP:
            if interp is None:  # the kernel reads the first one, ld.so's dl_main sees the last
                interp_error = _kernel_interp_error(data, seg)
            interp = _interp(data, cls, segments, seg)
        elif seg.type == PT.DYNAMIC:
            if seg.filesz == 0:
                empty_dynamic = True
            else:
                dyn_seg = seg
        elif seg.type == PT.GNU_PROPERTY:
            prop_seg = seg

    if any(s.type == PT.LOAD and s.offset + s.filesz > size for s in segments):
        data = _mapped_view(data)
        size = len(data)
        truncated = True
    else:
        truncated = False
    f = _Partial(data, cls, enc, segments)
    dynamic: list[tuple[int, int]] = []
    # elf_get_dynamic_info reads l_ld, PT_DYNAMIC's p_vaddr in the mapped segments (its p_offset is
    # never used): the first read of the object after mapping it
    off = f.mapped_offset(dyn_seg.vaddr) if dyn_seg is not None else None
    if dyn_seg is not None and off is None:
        raise Unmapped("PT_DYNAMIC in no readable segment")
    if off == OUTSIDE:  # not simulated: read where p_offset says
        off = dyn_seg.offset
        if off >= size:
            raise PastEof("PT_DYNAMIC past the end of the file") if truncated else \
                ElfError("PT_DYNAMIC outside the file")
    if off == ZERO_FILL:  # DT_NULL at once
        off = None
    elif off is not None and off >= size:
        if off >= (size + PAGE - 1) & ~(PAGE - 1):
            raise PastEof("PT_DYNAMIC past the end of the file")
        off = None  # the rest of the file's last page reads as zeros: DT_NULL at once
    if dyn_seg is not None and off is not None:
        end = min(size, off + max(dyn_seg.filesz, dyn_seg.memsz))
        whole = (end - off) // dyn_s.size * dyn_s.size
        with memoryview(data) as view:  # no copy: a lying p_memsz may span the whole file
            entries = dyn_s.iter_unpack(view[off:off + whole])
            for tag, val in entries:
                if tag == 0:  # DT_NULL
                    break
                dynamic.append((tag, val))
            else:
                if truncated and whole < dyn_seg.filesz:
                    raise PastEof("PT_DYNAMIC runs past the end of the file")
            del entries

    last: dict[int, int] = dict(dynamic)  # the last entry of each tag wins
    header = dict(ei_class=cls, ei_data=enc, osabi=data[7], abiversion=data[8], e_type=e_type,
                  e_machine=e_machine, e_entry=e_entry, e_phnum=e_phnum, e_phoff=e_phoff, segments=segments,
                  interp=interp, has_dynamic=dyn_seg is not None, empty_dynamic=empty_dynamic,
                  dynamic=tuple(dynamic), flags=last.get(DT.FLAGS, 0), flags_1=last.get(DT.FLAGS_1, 0),
                  isa_needed=_isa_needed(f, prop_seg) if prop_seg is not None else 0, data=data, last=last,
                  interp_error=interp_error)
    try:
        return ElfFile(**header, **_strings(f, dynamic, last))
    except ElfError as e:
        raise StringsError(e, ElfFile(**header, needed=(), soname=None, rpath=None, runpath=None, deps=(),
                                      verneed=(), verdef=())) from None


PATH_MAX = 4096


def _kernel_interp_error(data: Sequence[int], seg: Segment) -> str | None:
    """Why execve refuses the file's PT_INTERP (load_elf_binary, fs/binfmt_elf.c), as strerror says it:
    a size above PATH_MAX or below 2, or no NUL at its end, is ENOEXEC; a short read is EIO."""
    if seg.filesz > PATH_MAX or seg.filesz < 2:
        return "Exec format error"
    if seg.offset + seg.filesz > len(data):
        return "Input/output error"
    if data[seg.offset + seg.filesz - 1] != 0:
        return "Exec format error"
    return None


def _interp(data: Sequence[int], cls: int, segments: Sequence[Segment], seg: Segment) -> str:
    """PT_INTERP's string: where p_offset says (the kernel's reading), else where the mapping shows
    p_vaddr (ld.so's, in dl_main); "" when neither is in the file."""
    off = seg.offset
    if off >= len(data):
        off = mapped_offset(segments, cls == 2, seg.vaddr)
        if off is None or not 0 <= off < len(data):
            return ""
    raw = bytes(data[off:off + min(seg.filesz, PATH_MAX)])
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _strings(f: _Partial, dynamic: list[tuple[int, int]], last: dict[int, int]) -> dict:
    """What the loader reads through DT_STRTAB, later than the mapping: names, paths, version records."""
    strtab_off = None
    if _DT_STRTAB in last:
        strtab_off = f.offset(last[_DT_STRTAB])
        if strtab_off is None:
            raise ElfError("DT_STRTAB does not point into a loadable segment")

    def dstr(val: int, what: str) -> str:
        if strtab_off is None:
            # D_PTR (l, l_info[DT_STRTAB]) dereferences the NULL l_info entry: SIGSEGV at the first read
            raise Unmapped(f"{what} without DT_STRTAB")
        return f.cstr(strtab_off + val, what)

    deps = tuple([(tag, dstr(val, "DT_NEEDED" if tag == _DT_NEEDED else "DT_FILTER"))
                  for tag, val in dynamic if tag in _DEP_TAGS])
    return dict(
        needed=tuple([name for tag, name in deps if tag == _DT_NEEDED]),
        soname=dstr(last[DT.SONAME], "DT_SONAME") if DT.SONAME in last else None,
        rpath=dstr(last[DT.RPATH], "DT_RPATH") if DT.RPATH in last else None,
        runpath=dstr(last[DT.RUNPATH], "DT_RUNPATH") if DT.RUNPATH in last else None,
        deps=deps,
        verneed=_parse_verneed(f, last, strtab_off) if DT.VERNEED in last and strtab_off is not None else (),
        verdef=_parse_verdef(f, last, strtab_off) if DT.VERDEF in last and strtab_off is not None else ())


def _mapped_view(data: Sequence[int]) -> bytes:
    """A file shorter than its PT_LOAD segments as the loader sees it once mapped: zeros after EOF up
    to the end of its page (reads past that page are PastEof)."""
    size = len(data)
    return bytes(data) + b"\0" * (-size % PAGE)


def mapped_offset(segments: Sequence[Segment], is_64: bool, vaddr: int) -> int | None:
    """The file offset whose byte the loader's mapping shows at `vaddr`, page-granular as mmap maps
    a segment (bytes of the file past p_filesz show too); a later segment's pages replace an earlier
    one's (MAP_FIXED).  ZERO_FILL in a segment's anonymous pages; None where the object's reservation
    holds nothing readable (a hole, made PROT_NONE, or a segment without PF_R, PF_W or PF_X);
    OUTSIDE past the reservation, where whatever else is mapped there is read (not known here)."""
    loads = [s for s in segments if s.type == _PT_LOAD]
    if not loads:
        return OUTSIDE
    mask = (1 << (64 if is_64 else 32)) - 1
    for seg in reversed(loads):
        start = seg.vaddr & ~(PAGE - 1)
        file_end = (seg.vaddr + seg.filesz + PAGE - 1) & ~(PAGE - 1) & mask
        mem_end = max(file_end, (seg.vaddr + seg.memsz + PAGE - 1) & ~(PAGE - 1) & mask)
        if start <= vaddr < mem_end:
            if not seg.flags & 7:
                return None
            return (seg.offset & ~(PAGE - 1)) + (vaddr - start) if vaddr < file_end else ZERO_FILL
    low = loads[0].vaddr & ~(PAGE - 1)
    high = (loads[-1].vaddr + loads[-1].memsz) & mask
    return None if low <= vaddr < high else OUTSIDE


class _Partial:
    """Address translation and integer reads during parsing."""

    def __init__(self, data: Sequence[int], cls: int, enc: int, segments: list[Segment]) -> None:
        self.data = data
        self.size = len(data)
        self.end = "<" if enc == 1 else ">"
        self.cls = cls
        self.loads = [s for s in segments if s.type == _PT_LOAD]
        self.string_budget = [STRING_BUDGET]
        self.version_budget = VERSION_BUDGET
        self._strings: dict[int, str] = {}

    def cstr(self, off: int, what: str) -> str:
        """A string of the file, decoded once per offset, within the file's string budget; PastEof
        when a segment maps it from a page wholly past the end of the file."""
        s = self._strings.get(off)
        if s is None:
            if off >= (self.size + PAGE - 1) & ~(PAGE - 1) and any(
                    seg.offset <= off < seg.offset + seg.filesz for seg in self.loads):
                raise PastEof(f"{what} string past the end of the file")
            s = self._strings[off] = _cstr(self.data, off, what, self.string_budget)
        return s

    def spend_version(self) -> None:
        self.version_budget -= 1
        if self.version_budget < 0:
            raise ElfError(f"more than {VERSION_BUDGET} version records")

    def mapped_offset(self, vaddr: int) -> int | None:
        return mapped_offset(self.loads, self.cls == 2, vaddr)

    def offset(self, vaddr: int) -> int | None:
        for seg in self.loads:
            if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return seg.offset + (vaddr - seg.vaddr)
        return None

    def layout(self, fmt: str) -> struct.Struct:
        s = _STRUCTS.get(self.end + fmt)
        if s is None:
            s = _STRUCTS[self.end + fmt] = struct.Struct(self.end + fmt)
        return s

    def unpack(self, fmt: str, off: int, what: str) -> tuple[int, ...]:
        return self.unpack_with(self.layout(fmt), off, what)

    def unpack_with(self, s: struct.Struct, off: int, what: str) -> tuple[int, ...]:
        if off < 0 or off + s.size > self.size:
            raise ElfError(f"{what} outside the file")
        return s.unpack_from(self.data, off)


_STRUCTS: dict[str, struct.Struct] = {}
_MAX_VER = 1 << 16  # more entries than a version index can name means a cycle or garbage


def _parse_verneed(f: _Partial, last: dict[int, int], strtab: int) -> tuple[Verneed, ...]:
    off = f.offset(last[DT.VERNEED])
    if off is None:
        raise ElfError("DT_VERNEED does not point into a loadable segment")
    out = []
    vn_s, aux_s = f.layout("HHIII"), f.layout("IHHII")
    for _ in range(_MAX_VER):
        vn_version, vn_cnt, vn_file, vn_aux, vn_next = f.unpack_with(vn_s, off, "Verneed")
        entries = []
        aoff = off + vn_aux
        # the loader follows vna_next from the first Vernaux, whatever vn_cnt says (_dl_check_map_versions)
        for _ in range(_MAX_VER):
            h, flags, other, name, nxt = f.unpack_with(aux_s, aoff, "Vernaux")
            f.spend_version()
            entries.append(_new(Vernaux, (f.cstr(strtab + name, "Vernaux"), h, flags, other)))
            if nxt == 0:
                break
            aoff += nxt
        f.spend_version()
        out.append(_new(Verneed, (f.cstr(strtab + vn_file, "Verneed"), tuple(entries), vn_version)))
        if vn_next == 0:
            return tuple(out)
        off += vn_next
    raise ElfError("DT_VERNEED chain does not end")


def _parse_verdef(f: _Partial, last: dict[int, int], strtab: int) -> tuple[Verdef, ...]:
    off = f.offset(last[DT.VERDEF])
    if off is None:
        raise ElfError("DT_VERDEF does not point into a loadable segment")
    out = []
    vd_s, aux_s = f.layout("HHHHIII"), f.layout("II")
    for _ in range(_MAX_VER):
        vd_version, vd_flags, vd_ndx, vd_cnt, vd_hash, vd_aux, vd_next = f.unpack_with(vd_s, off, "Verdef")
        # the loader reads the first Verdaux only (the version's name, whatever vd_cnt says: dl-version.c
        # match_symbol, _dl_check_map_versions); the parents' entries may be anything
        name, _ = f.unpack_with(aux_s, off + vd_aux, "Verdaux")
        f.spend_version()
        out.append(_new(Verdef, (vd_ndx, vd_flags, vd_hash, (f.cstr(strtab + name, "Verdaux"),), vd_version)))
        if vd_next == 0:
            return tuple(out)
        off += vd_next
    raise ElfError("DT_VERDEF chain does not end")


def _isa_needed(f: _Partial, seg: Segment) -> int:
    """GNU_PROPERTY_X86_ISA_1_NEEDED from the PT_GNU_PROPERTY note (`_dl_process_pt_gnu_property`)."""
    align = 8 if f.cls == 2 else 4
    if seg.align != align:
        return 0
    off, end = seg.offset, seg.offset + seg.filesz
    if end > len(f.data):
        return 0
    while off + 12 <= end:
        namesz, descsz, ntype = f.unpack("III", off, "note")
        name_off = off + 12
        desc_off = name_off + ((namesz + 3) & ~3)
        if namesz == 4 and ntype == NT_GNU_PROPERTY_TYPE_0 and bytes(f.data[name_off:name_off + 4]) == b"GNU\0":
            if descsz < 8 or descsz % align:
                return 0
            p, pend = desc_off, min(desc_off + descsz, end)
            while p + 8 <= pend:
                ptype, datasz = f.unpack("II", p, "property")
                if ptype == GNU_PROPERTY_X86_ISA_1_NEEDED and datasz == 4:
                    return f.unpack("I", p + 8, "property")[0]
                p += 8 + ((datasz + align - 1) & ~(align - 1))
            return 0
        off = desc_off + ((descsz + align - 1) & ~(align - 1))
    return 0


GNU_PROPERTY_1_NEEDED = 0xB0008000
GNU_PROPERTY_X86_FEATURE_1_AND = 0xC0000002
GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS = 1


def gnu_property_1_needed(elf: ElfFile) -> int:
    """l_1_needed: GNU_PROPERTY_1_NEEDED of the PT_GNU_PROPERTY note, read as _dl_process_property_note
    (sysdeps/x86/dl-prop.h) reads it: 0 when the note is misaligned or ill-formed, when a second GNU
    property note follows, or when a property is out of order or one of the three types it looks for has
    a size other than 4.  Worked out only when asked (a protected definition met by the executable)."""
    seg = None
    for s in elf.segments:
        if s.type == PT.GNU_PROPERTY:
            seg = s
    align = 8 if elf.is_64 else 4
    if seg is None or seg.align != align:
        return 0
    data, end_ = elf.data, "<" if elf.ei_data == 1 else ">"
    start, end = seg.offset, min(seg.offset + seg.memsz, len(data))
    off, seen, needed_1 = start, False, 0
    try:
        while off + 12 < end:
            namesz, descsz, ntype = struct.unpack_from(end_ + "III", data, off)
            desc = off + ((12 + namesz + align - 1) & ~(align - 1))
            if namesz == 4 and ntype == NT_GNU_PROPERTY_TYPE_0 and bytes(data[off + 12:off + 16]) == b"GNU\0":
                if seen:
                    return 0
                seen = True
                if descsz < 8 or descsz % align:
                    return 0
                ptr, ptr_end, last_type = off + 16, off + 16 + descsz, 0
                while True:
                    ptype, datasz = struct.unpack_from(end_ + "II", data, ptr)
                    if ptype < last_type:
                        return 0
                    ptr += 8
                    if ptr + datasz > ptr_end:
                        return 0
                    last_type = ptype
                    if ptype in (GNU_PROPERTY_X86_FEATURE_1_AND, GNU_PROPERTY_X86_ISA_1_NEEDED,
                                 GNU_PROPERTY_1_NEEDED):
                        if datasz != 4:
                            return 0
                        value = struct.unpack_from(end_ + "I", data, ptr)[0]
                        if ptype == GNU_PROPERTY_1_NEEDED:
                            needed_1 = value
                        elif ptype == GNU_PROPERTY_X86_ISA_1_NEEDED:
                            break
                    elif ptype > GNU_PROPERTY_X86_ISA_1_NEEDED:
                        break
                    ptr += (datasz + align - 1) & ~(align - 1)
                    if ptr_end - ptr < 8:
                        break
            off = desc + ((descsz + align - 1) & ~(align - 1))
    except struct.error:
        return 0
    return needed_1


def elf_hash(name: bytes) -> int:
    """The SysV ELF hash, also the hash stored in Verneed/Verdef (`_dl_elf_hash`)."""
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h
