"""What mapping an object's PT_LOAD segments does before the loader reads its dynamic section.

Mirrors the program-header pass of `_dl_map_object_from_fd` (elf/dl-load.c) and `_dl_map_segments`
(elf/dl-map-segments.h): the checks that end a load with a message, the mmap calls the kernel refuses, and
the memset of a segment's last file page that faults when that page lies past the end of the file.  These
come before `elf_get_dynamic_info`, so they win over anything wrong in the dynamic section or its strings.
Pure: segments in, an outcome out.  The address space is judged here; what the host's memory grants
(the overcommit charge, page protections) is `ldsim.vm`'s, which owns the kernel's constants and messages.
"""

from __future__ import annotations

from ldsim.elf import PT, EIClass, Segment
from ldsim.record import NamedTuple
from ldsim.vm import MAP_SEGMENT_FAILED, MAP_ZERO_FILL_FAILED, TASK_SIZE

PAGE = 4096
ET_DYN = 3
# The top of the user address space: a 47-bit x86-64 process, a 32-bit process on a 64-bit kernel
# (IA32_PAGE_OFFSET).  An mmap longer than that fails with ENOMEM (get_unmapped_area).
TASK_SIZE_64, TASK_SIZE_32 = TASK_SIZE[EIClass.ELF64], TASK_SIZE[EIClass.ELF32]
MMAP_MIN_ADDR = 0x10000  # vm.mmap_min_addr's default
MAX_LFS_FILESIZE = (1 << 63) - 1  # file_mmap_ok: a file offset at or past it is EOVERFLOW
# ld.so reserves an object's whole span top-down below mmap_base, which the kernel puts the stack gap
# (at most ~16 GiB with the stack's randomization) plus at most 2**28 random pages (mmap_rnd_bits: 1 TiB)
# under the top of a 64-bit address space: a segment or bss ending further than this past the reservation
# would end past TASK_SIZE (MAP_FIXED: ENOMEM).  Nearer, it depends on ASLR and on what is mapped there.
ROOM_ABOVE_64 = (1 << 40) + (1 << 35)

NO_LOADS = "object file has no loadable segments"
NOT_ALIGNED = "ELF load command address/offset not page-aligned"
EXEC_DLOPEN = "cannot dynamically load executable"
NO_DYNAMIC = "object file has no dynamic section"
MAP_FAILED, ZERO_FILL_FAILED = MAP_SEGMENT_FAILED, MAP_ZERO_FILL_FAILED  # the messages are vm's


class LoadCmd(NamedTuple):
    """dl-load.h `struct loadcmd`, computed in ElfW(Addr) arithmetic (wrapping at the word size)."""

    mapstart: int
    mapend: int
    dataend: int
    allocend: int
    mapoff: int
    align: int  # p_align


class Mapped(NamedTuple):
    """The outcome: `error` (the loader's message, the load fails), `signal` (the process dies of it), or
    neither (the segments are mapped)."""

    error: str | None = None
    signal: int | None = None


SIGBUS = 7


def load_commands(segments: tuple[Segment, ...], word: int) -> list[LoadCmd] | None:
    """The PT_LOAD segments as load commands, in program-header order; None when one has p_vaddr and
    p_offset not congruent modulo the page size (the loop's first error)."""
    mask = (1 << word) - 1
    out = []
    for s in segments:
        if s.type != PT.LOAD:
            continue
        if (s.vaddr - s.offset) & (PAGE - 1):
            return None
        dataend = (s.vaddr + s.filesz) & mask
        out.append(LoadCmd(s.vaddr & ~(PAGE - 1) & mask, (dataend + PAGE - 1) & ~(PAGE - 1) & mask, dataend,
                           (s.vaddr + s.memsz) & mask, s.offset & ~(PAGE - 1) & mask, s.align))
    return out


def mmap_fails(length: int, offset: int | None, task_size: int) -> bool:
    """Whether Linux's mmap refuses `length` bytes (of the file from `offset`, or anonymous): a zero
    length (EINVAL), more than the address space (ENOMEM), a file range past the largest offset
    (EOVERFLOW, file_mmap_ok)."""
    if length == 0:
        return True
    pages = (length + PAGE - 1) & ~(PAGE - 1)
    if pages == 0 or pages > task_size:
        return True
    return offset is not None and (offset >= MAX_LFS_FILESIZE or MAX_LFS_FILESIZE - offset < pages)


def map_object(e_type: int, segments: tuple[Segment, ...], exe: bool, is_64: bool, file_size: int) -> Mapped:
    """The program-header pass and `_dl_map_segments` for an object opened by ld.so (not the kernel).
    `exe`: __RTLD_OPENEXEC (the program named to ld.so), which may be ET_EXEC."""
    word = 64 if is_64 else 32
    cmds = load_commands(segments, word)
    if cmds is None:
        return Mapped(NOT_ALIGNED)
    if not cmds:
        return Mapped(NO_LOADS)
    if e_type != ET_DYN and not exe:
        return Mapped(EXEC_DLOPEN)
    # l_ld is the last non-empty PT_DYNAMIC's p_vaddr: zero there means none, as in the loader
    l_ld, empty_dynamic = 0, False
    for s in segments:
        if s.type == PT.DYNAMIC:
            if s.filesz == 0:
                empty_dynamic = True
            else:
                l_ld = s.vaddr
    if (l_ld == 0 and e_type == ET_DYN) or empty_dynamic:
        return Mapped(NO_DYNAMIC)
    return _map_segments(e_type, cmds, word, file_size)


def _map_segments(e_type: int, cmds: list[LoadCmd], word: int, file_size: int) -> Mapped:
    """_dl_map_segments: an ET_DYN object is reserved whole by mapping its first segment over the full
    length; every other segment is then mapped at its place, and the bss of each is zeroed."""
    mask = (1 << word) - 1
    task_size = TASK_SIZE_64 if word == 64 else TASK_SIZE_32
    first = cmds[0]
    if e_type == ET_DYN:
        maplength = (cmds[-1].allocend - first.mapstart) & mask
        align = _max_align(cmds)
        if align > PAGE:  # _dl_map_segment reserves room to align the start first
            reserve = maplength + align if maplength >= align else 2 * align
            if mmap_fails(reserve & mask, None, task_size):
                return Mapped(MAP_FAILED)
        if mmap_fails(maplength, first.mapoff, task_size):
            return Mapped(MAP_FAILED)
        has_holes = any(a.mapend != b.mapstart for a, b in zip(cmds, cmds[1:]))
        if has_holes and cmds[-1].mapstart < first.mapend:
            return Mapped(NOT_ALIGNED)
    base, room = _reach(e_type, cmds, word)
    for i, c in enumerate(cmds):
        if (i or e_type != ET_DYN) and c.mapend > c.mapstart \
                and (mmap_fails(c.mapend - c.mapstart, c.mapoff, task_size) or _above(c.mapend, base, room, word)):
            return Mapped(MAP_FAILED)
        outcome = _zero_fill(c, file_size, task_size, base, room, word)
        if outcome is not None:
            return outcome
    return Mapped()


def _reach(e_type: int, cmds: list[LoadCmd], word: int) -> tuple[int, int]:
    """(base, room): a fixed mapping of the object cannot end more than `room` above the file address
    `base`.  An ET_EXEC's addresses are absolute.  An ET_DYN object whose first segment asks for an
    address gives it to mmap as a hint (ELF_PREFERRED_ADDRESS), which the kernel grants where it is free
    (raised to mmap_min_addr: round_hint_to_min), low in the address space; otherwise the object is
    reserved top-down, below mmap_base (ROOM_ABOVE_64 from the top at most)."""
    mask = (1 << word) - 1
    task_size = TASK_SIZE_64 if word == 64 else TASK_SIZE_32
    if e_type != ET_DYN:
        return 0, task_size
    first = cmds[0]
    maplength = (cmds[-1].allocend - first.mapstart) & mask
    hint = max(first.mapstart, MMAP_MIN_ADDR)
    if first.mapstart and hint + maplength <= task_size:  # a hint past the top is not used
        return first.mapstart, task_size - hint
    return (first.mapstart + maplength + PAGE - 1) & ~(PAGE - 1) & mask, ROOM_ABOVE_64 if word == 64 else task_size


def _above(end: int, base: int, room: int, word: int) -> bool:
    """Whether a fixed mapping ending at `end` (an address of the file's) ends more than `room` above
    `base`; an end below `base` (inside the reservation, or before it) is not."""
    rel = (end - base) & ((1 << word) - 1)
    return room < rel < 1 << (word - 1)


def _max_align(cmds: list[LoadCmd]) -> int:
    """p_align_max: the largest power-of-two p_align (others are ignored)."""
    return max((c.align for c in cmds if c.align and not c.align & (c.align - 1)), default=0)


def _zero_fill(c: LoadCmd, file_size: int, task_size: int, base: int, room: int, word: int) -> Mapped | None:
    """The bss of one segment: the rest of its last file page is cleared with memset — a page wholly
    past the end of the file faults (SIGBUS) — and whole pages after it are mapped anonymous."""
    if c.allocend <= c.dataend:
        return None
    zero, zeroend = c.dataend, c.allocend
    zeropage = min((zero + PAGE - 1) & ~(PAGE - 1), zeroend)
    if zeropage > zero:
        page_offset = c.mapoff + ((zero & ~(PAGE - 1)) - c.mapstart)
        if page_offset >= (file_size + PAGE - 1) & ~(PAGE - 1):
            return Mapped(signal=SIGBUS)
    if zeroend > zeropage and (mmap_fails(zeroend - zeropage, None, task_size)
                               or _above((zeroend + PAGE - 1) & ~(PAGE - 1), base, room, word)):
        return Mapped(ZERO_FILL_FAILED)
    return None


PT_GNU_RELRO = 0x6474E552


def relro_unmapped(e_type: int, segments: tuple[Segment, ...], is_64: bool) -> bool:
    """Whether _dl_protect_relro's mprotect (elf/dl-reloc.c, after the object's relocations) meets
    pages nothing maps (ENOMEM): its PT_GNU_RELRO (the last one) beyond the object's reach (`_reach`).
    Nearer, what is mapped there decides: taken as mapped."""
    word = 64 if is_64 else 32
    mask = (1 << word) - 1
    relro = [s for s in segments if s.type == PT_GNU_RELRO]
    cmds = load_commands(segments, word)
    if not relro or not cmds or not is_64:
        return False
    start = relro[-1].vaddr & ~(PAGE - 1) & mask
    end = (relro[-1].vaddr + relro[-1].memsz) & ~(PAGE - 1) & mask
    if start == end:
        return False
    base, room = _reach(e_type, cmds, word)
    return _above(end, base, room, word) or _above(start, base, room, word)
