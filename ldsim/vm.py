"""Whether the kernel grants ld.so's mmap calls (mm/mmap.c do_mmap, mm/util.c __vm_enough_memory): the
mappings of `_dl_map_segments` (elf/dl-map-segments.h) and the initial thread's TLS block (ldsim.tls).
A request fails past the top of the address space an mmap may use, whatever the memory; a private
writable one is also charged against the overcommit policy, which depends on the machine (`AnonMemory`,
read at the edge).

Not modelled: whether a length below that top finds a free range between the mappings already there (a
32-bit process asking for 3 GiB does not), RLIMIT_AS and RLIMIT_DATA, the strict mode's commit limit."""

from __future__ import annotations

from ldsim.elf import EIClass, Segment
from ldsim.record import Frozen

PAGE_SIZE = 4096  # GLRO(dl_pagesize) on x86
# the top of the address space an mmap without a hint may use (x86-64 DEFAULT_MAP_WINDOW, i386 compat
# TASK_SIZE)
TASK_SIZE = {EIClass.ELF64: (1 << 47) - PAGE_SIZE, EIClass.ELF32: 0xFFFFE000}
OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS = 0, 1
_PF_X, _PF_W, _PF_R = 1, 2, 4
MAP_SEGMENT_FAILED = "failed to map segment from shared object"  # DL_MAP_SEGMENTS_ERROR_MAP_SEGMENT
MAP_ZERO_FILL_FAILED = "cannot map zero-fill pages"  # DL_MAP_SEGMENTS_ERROR_MAP_ZERO_FILL


class AnonMemory(Frozen):
    """Host fact: what decides whether the kernel grants a large private writable mapping
    (__vm_enough_memory): the vm.overcommit_memory mode and, for the heuristic mode, RAM plus swap in
    pages.  Mode 2 (a commit limit shared with every process) cannot be known beforehand."""

    __slots__ = _fields = ("overcommit", "ram_swap_pages")

    def __init__(self, overcommit: int, ram_swap_pages: int) -> None:
        object.__setattr__(self, "overcommit", overcommit)
        object.__setattr__(self, "ram_swap_pages", ram_swap_pages)


def read_host_memory(proc: str = "/proc") -> AnonMemory | None:
    """This machine's overcommit mode and MemTotal + SwapTotal (the edge: called by the CLI only)."""
    try:
        # bytes, not text: a text file's codec import would cost every start more than the reads
        with open(f"{proc}/sys/vm/overcommit_memory", "rb") as f:
            mode = int(f.read().strip())
        kb = 0
        with open(f"{proc}/meminfo", "rb") as f:
            for line in f.read().splitlines():
                if line.startswith((b"MemTotal:", b"SwapTotal:")):
                    kb += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return AnonMemory(mode, kb * 1024 // PAGE_SIZE)


def mmap_granted(length: int, ei_class: int, memory: AnonMemory | None, writable: bool = True,
                 at: int | None = None) -> bool:
    """mmap(at, length, ..., MAP_PRIVATE): the page-rounded length wrapping to 0 or, with MAP_FIXED
    at `at`, the range reaching past the top; else no room for it below the top; a writable one is
    refused by the heuristic overcommit when it needs more pages than RAM plus swap."""
    mask = (1 << (64 if ei_class == EIClass.ELF64 else 32)) - 1
    length = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & mask
    top = TASK_SIZE[ei_class]
    if length == 0 or length > top or (at is not None and at > top - length):
        return False
    if writable and memory is not None and memory.overcommit == OVERCOMMIT_GUESS:
        return length // PAGE_SIZE <= memory.ram_swap_pages
    return True


def _zero_fill_granted(load: Segment, bias: int, ei_class: int, memory: AnonMemory | None) -> bool:
    """The anonymous pages past the file's data up to p_memsz, mapped with the segment's protection."""
    zero = bias + load.vaddr + load.filesz
    zeroend = bias + load.vaddr + load.memsz
    zeropage = min((zero + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), zeroend)
    if zeroend <= zeropage:
        return True
    return mmap_granted(zeroend - zeropage, ei_class, memory, bool(load.flags & _PF_W), zeropage)


def map_segments_error(loads: tuple[Segment, ...], align: int, fixed: bool, ei_class: int,
                       memory: AnonMemory | None) -> str | None:
    """_dl_map_segments: the error it returns, or None.  A relocatable object (`fixed` False) first
    reserves the whole span with the first segment (or, when the largest p_align is above the page
    size, with an inaccessible anonymous mapping `align` longer, then the first segment over it); the
    later segments and the zero-filled tails then go inside it.  An ET_EXEC maps each segment at its
    address.  The file-backed part of a writable segment is charged too."""
    first = loads[0]
    start = first.vaddr & ~(PAGE_SIZE - 1)
    length = loads[-1].vaddr + loads[-1].memsz - start  # maplength
    bias = 0
    if not fixed:
        if align > PAGE_SIZE:
            reserve = length + align if length >= align else 2 * align
            if not mmap_granted(reserve, ei_class, memory, writable=False):
                return MAP_SEGMENT_FAILED
        if not mmap_granted(length, ei_class, memory, bool(first.flags & _PF_W)):
            return MAP_SEGMENT_FAILED
        bias = -start  # the span now starts at 0: every later request lies inside it
    for i, load in enumerate(loads):
        mapstart = bias + (load.vaddr & ~(PAGE_SIZE - 1))
        mapend = bias + ((load.vaddr + load.filesz + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
        if (fixed or i) and mapend > mapstart and not mmap_granted(
                mapend - mapstart, ei_class, memory, bool(load.flags & _PF_W), mapstart):
            return MAP_SEGMENT_FAILED
        if not _zero_fill_granted(load, bias, ei_class, memory):
            return MAP_ZERO_FILL_FAILED
    return None


def page_protections(loads: tuple[Segment, ...], fixed: bool, textrel: bool) -> list[tuple[int, int, int]]:
    """The object's pages while it is relocated and run, as (start, end, PF_* flags) in p_vaddr terms,
    later entries over earlier ones: the reservation with the first segment's protection, the holes
    made inaccessible, each segment's file pages and zero-filled pages (_dl_map_segments); DT_TEXTREL
    adds write permission to every segment while the object is relocated (_dl_relocate_object).  ld.so
    and the kernel map alike."""
    def up(x: int) -> int:
        return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)

    def down(x: int) -> int:
        return x & ~(PAGE_SIZE - 1)

    def prot(load: Segment) -> int:
        return load.flags & 7 | (_PF_W if textrel else 0)

    first, last = loads[0], loads[-1]
    out = []
    if not fixed:
        out.append((down(first.vaddr), up(last.vaddr + last.memsz), prot(first)))
        if up(first.vaddr + first.filesz) < down(last.vaddr):
            out.append((up(first.vaddr + first.filesz), down(last.vaddr), 0))
    for load in loads:
        out.append((down(load.vaddr), up(load.vaddr + load.filesz), prot(load)))
        if load.memsz > load.filesz:
            out.append((up(load.vaddr + load.filesz), up(load.vaddr + load.memsz), prot(load)))
    return out


def _faults(protections: list[tuple[int, int, int]], bias: int, vaddr: int, ei_class: int, need: int) -> bool:
    """Whether an access needing `need` (PF_W, PF_X) at p_vaddr `vaddr` of an object mapped at `bias`
    faults: a page of the object without it, page 0, or an address past the top of the address space.
    Elsewhere (another object's pages, or none) depends on where the kernel put things: not a fault."""
    bits = 64 if ei_class == EIClass.ELF64 else 32
    addr = (bias + vaddr) % (1 << bits)
    if addr < PAGE_SIZE or (bits == 64 and addr >= TASK_SIZE[ei_class]):
        return True
    for start, end, flags in reversed(protections):
        if start <= vaddr < end:
            return not flags & need
    return False


def write_faults(protections: list[tuple[int, int, int]], bias: int, vaddr: int, ei_class: int) -> bool:
    """A relocation's store at p_vaddr `vaddr` (see _faults)."""
    return _faults(protections, bias, vaddr, ei_class, _PF_W)


def call_faults(protections: list[tuple[int, int, int]], bias: int, addr: int, ei_class: int) -> bool:
    """A call to the absolute address `addr` (an init or fini function): its page must be executable."""
    return _faults(protections, bias, addr - bias, ei_class, _PF_X)


def read_faults(protections: list[tuple[int, int, int]], bias: int, addr: int, ei_class: int) -> bool:
    """A read at the absolute address `addr` (a COPY relocation's source)."""
    return _faults(protections, bias, addr - bias, ei_class, _PF_R)
