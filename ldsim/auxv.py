"""The auxiliary vector the kernel hands a new process (fs/binfmt_elf.c `create_elf_tables`), which
LD_SHOW_AUXV makes ld.so print (`_dl_show_auxv`, sysdeps/unix/sysv/linux/dl-sysdep.c).

Most entries are facts of the kernel and the CPU, the same for every process of the machine: their types,
order and values are read once from this process's own vector, at the edge (`read_host_auxv`).  The rest
describe the one execve: the executed file's program headers and entry, the interpreter's base, the ids,
AT_SECURE, the file name given to execve, and addresses (vDSO, AT_RANDOM) that differ at every run."""

from __future__ import annotations

import os
import struct
from enum import IntEnum

from ldsim.elf import PT, EIClass, ElfFile, EMachine
from ldsim.record import Frozen


class AT(IntEnum):
    """The a_type values of elf.h (glibc 2.36)."""
    NULL = 0
    IGNORE = 1
    EXECFD = 2
    PHDR = 3
    PHENT = 4
    PHNUM = 5
    PAGESZ = 6
    BASE = 7
    FLAGS = 8
    ENTRY = 9
    NOTELF = 10
    UID = 11
    EUID = 12
    GID = 13
    EGID = 14
    PLATFORM = 15
    HWCAP = 16
    CLKTCK = 17
    FPUCW = 18
    DCACHEBSIZE = 19
    ICACHEBSIZE = 20
    UCACHEBSIZE = 21
    IGNOREPPC = 22
    SECURE = 23
    BASE_PLATFORM = 24
    RANDOM = 25
    HWCAP2 = 26
    EXECFN = 31
    SYSINFO = 32
    SYSINFO_EHDR = 33
    L1I_CACHESIZE = 40
    L1I_CACHEGEOMETRY = 41
    L1D_CACHESIZE = 42
    L1D_CACHEGEOMETRY = 43
    L2_CACHESIZE = 44
    L2_CACHEGEOMETRY = 45
    L3_CACHESIZE = 46
    L3_CACHEGEOMETRY = 47
    MINSIGSTKSZ = 51


class KernelAuxv(Frozen):
    """The running kernel's vector as this process got it: (a_type, a_val) in order, AT_NULL left out;
    AT_PLATFORM's string; the ids this process runs with; the (ELF class, machine) of processes that get
    such a vector (a 32-bit program gets the compat one, which is not known here)."""

    __slots__ = _fields = ("vector", "platform", "ids", "abi")

    def __init__(self, vector: tuple[tuple[int, int], ...], platform: str, ids: tuple[int, int, int, int],
                 abi: tuple[int, int]) -> None:
        _set = object.__setattr__
        _set(self, "vector", vector)
        _set(self, "platform", platform)
        _set(self, "ids", ids)
        _set(self, "abi", abi)


def parse_auxv(data: bytes) -> tuple[tuple[int, int], ...]:
    """/proc/PID/auxv of a 64-bit little-endian process: Elf64_auxv_t records up to AT_NULL."""
    out = []
    for a_type, a_val in struct.iter_unpack("<QQ", data[:len(data) - len(data) % 16]):
        if a_type == AT.NULL:
            break
        out.append((a_type, a_val))
    return tuple(out)


def read_host_auxv() -> KernelAuxv | None:
    """This process's own vector (the edge: called by the CLI only).  None where it cannot be read, or on
    a machine whose loader ldsim does not run natively here."""
    if os.uname().machine != "x86_64" or struct.calcsize("P") != 8:
        return None
    try:
        with open("/proc/self/auxv", "rb") as f:
            vector = parse_auxv(f.read())
    except OSError:
        return None
    ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    return KernelAuxv(vector, os.uname().machine, ids, (int(EIClass.ELF64), int(EMachine.X86_64)))


_RANDOM = 0x7FFFFFFFE3B9  # a plausible stack address (masked in comparisons)


def exec_auxv(kernel: KernelAuxv, executed: ElfFile, *, interp_base: int, vdso: int, pie_base: int,
              ids: tuple[int, int, int, int], secure: bool, execfn: str) -> tuple[tuple[int, int | str], ...]:
    """The vector of one execve of `executed` (a program, or ld.so run as one: then interp_base is 0),
    with the addresses where the simulated process has its vDSO and, when ET_DYN, the executed file."""
    bias = pie_base if executed.e_type == 3 else 0
    phdr = next((s.vaddr for s in executed.segments if s.type == PT.PHDR), None)
    if phdr is None:  # the kernel's phdr_addr: where the first PT_LOAD maps e_phoff
        phdr = next((s.vaddr + executed.e_phoff - s.offset for s in executed.segments
                     if s.type == PT.LOAD and s.offset <= executed.e_phoff < s.offset + s.filesz), 0)
    own = {AT.PHDR: bias + phdr, AT.PHENT: 56 if executed.is_64 else 32, AT.PHNUM: executed.e_phnum,
           AT.BASE: interp_base, AT.ENTRY: bias + executed.e_entry, AT.UID: ids[0], AT.EUID: ids[1],
           AT.GID: ids[2], AT.EGID: ids[3], AT.SECURE: int(secure), AT.EXECFN: execfn,
           AT.PLATFORM: kernel.platform, AT.SYSINFO_EHDR: vdso, AT.RANDOM: _RANDOM}
    vector = tuple((t, own.get(t, v)) for t, v in kernel.vector)
    return vector if executed.is_64 else _compat(vector, vdso)


_COMPAT_PLATFORM = "i686"  # arch/x86/include/asm/elf.h: COMPAT_ELF_PLATFORM
_WORD32 = 0xFFFFFFFF  # an i386 process's unsigned long
_VSYSCALL_OFFSET = 0x5E0  # __kernel_vsyscall in the 32-bit vDSO: not known here (masked in comparisons)


def _compat(vector: tuple[tuple[int, int | str], ...], vdso: int) -> tuple[tuple[int, int | str], ...]:
    """An x86-64 kernel's vector for an i386 process (compat_binfmt_elf): ARCH_DLINFO_IA32 puts
    AT_SYSINFO (the vDSO's __kernel_vsyscall) before AT_SYSINFO_EHDR, AT_PLATFORM is "i686", the rest
    is the native vector's, its words 32 bits wide."""
    out: list[tuple[int, int | str]] = []
    for t, v in vector:
        if t == AT.SYSINFO_EHDR:
            out.append((AT.SYSINFO, (vdso + _VSYSCALL_OFFSET) & _WORD32))
        if t == AT.PLATFORM:
            v = _COMPAT_PLATFORM
        out.append((t, v & _WORD32 if isinstance(v, int) else v))
    return tuple(out)
