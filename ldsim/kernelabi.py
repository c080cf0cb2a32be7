"""Which ELF ABIs the running kernel executes: a host fact, like the CPU.

An x86-64 kernel runs x86-64 programs and, with IA32 emulation, i386 ones; x32 programs (ELFCLASS32,
EM_X86_64) only when it was built with CONFIG_X86_X32_ABI (and, on Debian, booted with syscall.x32=y).
Elsewhere execve fails with ENOEXEC (fs/binfmt_elf.c: elf_check_arch / compat_elf_check_arch), and so
does ldd's `RTLD --version` for the x32 loader, which the script then skips.

Asking the kernel costs a ctypes import, so it is asked once, and only when an x32 file is met.
"""

from __future__ import annotations

import os

from ldsim.elf import EIClass, EMachine

X32 = (int(EIClass.ELF32), int(EMachine.X86_64))
_X32_SYSCALL_BIT = 0x40000000  # arch/x86/include/uapi/asm/unistd.h
_NR_GETPID = 39  # x32's getpid: the number of x86-64's, with the x32 bit


class KernelAbis:
    """The running kernel's answer for the ABI it may lack (x32), asked on first need and kept: an
    explicit memo owned by the invocation, not module state.  `x32` given: that answer, never asked."""

    __slots__ = ("_x32",)

    def __init__(self, x32: bool | None = None) -> None:
        self._x32 = x32

    def executes(self, abi: tuple[int, int]) -> bool:
        """Whether execve accepts an ELF file of this (class, machine); only x32 is in doubt here."""
        if abi != X32:
            return True
        if self._x32 is None:
            self._x32 = probe_x32()
        return self._x32


def probe_x32() -> bool:
    """An x32 system call from this x86-64 process: ENOSYS unless the kernel has the x32 ABI enabled
    (arch/x86/entry/common.c, do_syscall_x32)."""
    if os.uname().machine != "x86_64":
        return False
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(_X32_SYSCALL_BIT | _NR_GETPID) == os.getpid()
    except (OSError, AttributeError):
        return False
