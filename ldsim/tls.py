"""The static TLS block of the initial thread, which ld.so lays out and allocates in `init_tls`
(elf/rtld.c) before any relocation, in every mode: `_dl_tls_static_surplus_init` and
`_dl_determine_tlsoffset` (elf/dl-tls.c, the TLS_TCB_AT_TP layout of x86), then
`_dl_allocate_tls_storage` through rtld's `__minimal_malloc` (elf/dl-minimal-malloc.c), one anonymous
mmap.  When the kernel refuses that mapping (ldsim.vm), ld.so ends: "cannot allocate TLS data structures
for initial thread", exit 127."""

from __future__ import annotations

from ldsim.elf import PT, EIClass, ElfFile, EMachine
from ldsim.record import NamedTuple
from ldsim.tunables import Tunables
from ldsim.vm import PAGE_SIZE, AnonMemory, mmap_granted

# TLS_TCB_SIZE, sizeof (struct pthread) of this glibc 2.36 build: what _dl_get_tls_static_info reports
# minus the blocks and the surplus (x86-64 2368, i386 1216)
_TCB_SIZE = {(EIClass.ELF64, EMachine.X86_64): 2368, (EIClass.ELF32, EMachine.I386): 1216}
_TCB_ALIGNMENT = 64  # sysdeps/x86/nptl/tls.h (TCB_ALIGNMENT)
_LIBC_IE_TLS = _OTHER_IE_TLS = 144
_DEFAULT_NNS, _OPTIONAL_TLS, _DL_NNS = 4, 512, 16
_LEGACY_TLS = 1664 - ((_DEFAULT_NNS - 1) * _LIBC_IE_TLS + _DEFAULT_NNS * _OTHER_IE_TLS + _OPTIONAL_TLS)


class TlsBlock(NamedTuple):
    """One module's PT_TLS as ld.so records it: l_tls_blocksize, l_tls_align, l_tls_firstbyte_offset,
    l_tls_initimage_size."""
    size: int
    align: int
    firstbyte_offset: int
    image_size: int


def tls_block(elf: ElfFile | None) -> TlsBlock | None:
    """The last PT_TLS with a non-zero p_memsz (_dl_map_object_from_fd, and dl_main for the program)."""
    block = None
    for seg in elf.segments if elf is not None else ():
        if seg.type == PT.TLS and seg.memsz:
            off = seg.vaddr & (seg.align - 1) if seg.align else 0
            block = TlsBlock(seg.memsz, seg.align, off, seg.filesz)
    return block


def _roundup(x: int, y: int, m: int) -> int:
    """glibc's roundup with a divisor known only at run time: a division (SIGFPE when y is 0), in
    size_t arithmetic modulo m."""
    return (x + y - 1) % m // y * y % m


def static_surplus(tunables: Tunables, m: int) -> int:
    """_dl_tls_static_surplus_init(0): tls_static_surplus computes in int, so an optional_static_tls
    past INT_MAX wraps, and a negative result becomes a huge size_t."""
    nns = min(tunables.nns or _DEFAULT_NNS, _DL_NNS)
    opt = _OPTIONAL_TLS if tunables.optional_static_tls is None else tunables.optional_static_tls
    opt = (opt + (1 << 31)) % (1 << 32) - (1 << 31)  # (int) opt_tls
    total = (nns - 1) * _LIBC_IE_TLS + nns * _OTHER_IE_TLS + opt + _LEGACY_TLS
    return ((total + (1 << 31)) % (1 << 32) - (1 << 31)) % m


def static_size(blocks: list[TlsBlock], surplus: int, tcb_size: int, m: int) -> tuple[int, int] | None:
    """_dl_determine_tlsoffset, TLS_TCB_AT_TP: (dl_tls_static_size, dl_tls_static_align), blocks in
    slotinfo order, each placed below the previous one or in the gap alignment left (size_t arithmetic
    modulo m); None where a block's alignment is 0 (roundup divides by it: SIGFPE)."""
    max_align, freetop, freebottom, offset = _TCB_ALIGNMENT, 0, 0, 0
    for b in blocks:
        if b.align == 0:
            return None
        firstbyte = -b.firstbyte_offset & (b.align - 1)
        max_align = max(max_align, b.align)
        if (freebottom - freetop) % m >= b.size:
            off = (_roundup((freetop + b.size - firstbyte) % m, b.align, m) + firstbyte) % m
            if off <= freebottom:
                freetop = off
                continue
        off = (_roundup((offset + b.size - firstbyte) % m, b.align, m) + firstbyte) % m
        if off > (offset + b.size + freebottom - freetop) % m:
            freetop, freebottom = offset, (off - b.size) % m
        offset = off
    return (_roundup((offset + surplus) % m, max_align, m) + tcb_size) % m, max_align


def storage_allocated(size: int, align: int, ei_class: int, memory: AnonMemory | None) -> bool:
    """_dl_allocate_tls_storage: malloc (size + alignment + sizeof (void *)); rtld's minimal malloc
    maps what does not fit in its current page, rounded up to pages, plus one page (NULL when the
    rounding wraps).  A request small enough for the page left over is always granted."""
    word = 8 if ei_class == EIClass.ELF64 else 4
    mask = (1 << (8 * word)) - 1
    n = (size + align + word) & mask
    if n < PAGE_SIZE:
        return True  # in the tail of ld.so's data segment or a page mapped before
    nup = (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & mask
    if nup == 0:
        return False
    return mmap_granted(nup + PAGE_SIZE, ei_class, memory)


def initial_tls(elfs: list[ElfFile | None], ei_class: int, e_machine: int, tunables: Tunables,
                memory: AnonMemory | None) -> str | None:
    """What init_tls's layout and allocation do with the chain's objects (in chain order): None when
    all is well (or the ABI is not modelled), "SIGFPE" for an alignment of 0, "ENOMEM" when the block
    cannot be mapped."""
    tcb = _TCB_SIZE.get((ei_class, e_machine))
    blocks = [b for b in map(tls_block, elfs) if b is not None]
    if tcb is None:
        return None
    m = 1 << (64 if ei_class == EIClass.ELF64 else 32)
    laid = static_size(blocks, static_surplus(tunables, m), tcb, m)
    if laid is None:
        return "SIGFPE"
    return None if storage_allocated(*laid, ei_class, memory) else "ENOMEM"


def init_image_too_large(elfs: list[ElfFile | None]) -> bool:
    """_dl_allocate_tls_init, once every startup object is relocated (not in trace mode): it asserts for
    each module that the block holds its initialization image, a PT_TLS whose p_filesz exceeds its
    p_memsz fails (elf/dl-tls.c)."""
    return any(b.size < b.image_size for b in map(tls_block, elfs) if b is not None)
