"""Which ELF ABIs the running kernel executes: a host fact, like the CPU.

An x86-64 kernel runs x86-64 programs and, with IA32 emulation, i386 ones; x32 programs (ELFCLASS32,
EM_X86_64) only when it was built with CONFIG_X86_X32_ABI (and, on Debian, booted with syscall.x32=y).
Elsewhere execve fails with ENOEXEC (fs/binfmt_elf.c: elf_check_arch / compat_elf_check_arch), and so
does ldd's `RTLD --version` for the x32 loader, which the script then skips.

Asking the kernel costs a ctypes import and a fork, so it is asked once, and only when an x32 file is met.
"""

from __future__ import annotations

import errno
import os
import struct

from ldsim.elf import EIClass, EMachine

X32 = (int(EIClass.ELF32), int(EMachine.X86_64))
_EM_486 = 6
# the x86 binfmts: the ELF class whose structures they read (ehdr size, e_phentsize offset, phdr size)
_LAYOUT = {2: (64, 54, 56), 1: (52, 42, 32)}
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
    """An x32 system call (getpid with the x32 bit): ENOSYS unless the kernel has the x32 ABI enabled
    (arch/x86/entry/common.c, do_syscall_x32).  Made in a forked child: a seccomp filter that admits
    only the native ABI (systemd's SystemCallArchitectures=native) may kill the caller instead."""
    if os.uname().machine != "x86_64":
        return False
    import ctypes  # before the fork: the child imports nothing
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = libc.syscall(_X32_SYSCALL_BIT | _NR_GETPID) == os.getpid()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def interp_errno(program_head: bytes, interp_head: bytes, abis: KernelAbis | None) -> int | None:
    """The errno execve fails with when an x86 program's PT_INTERP is not an interpreter its binfmt can
    load, or None.  load_elf_binary (fs/binfmt_elf.c, compat_binfmt_elf.c for 32-bit programs) reads the
    interpreter's ELF header in the program's own class (a short read: EIO), then wants the ELF magic,
    its binfmt's machine (elf_check_arch: EM_X86_64; compat_elf_check_arch: EM_386/EM_486, or x32's
    EM_X86_64 when the kernel has x32) and program headers of its class's size: ELIBBAD otherwise.
    None too for programs of other machines (binfmt_misc may run those)."""
    if len(program_head) < 20 or program_head[:4] != b"\x7fELF":
        return None
    ei_class, machine = program_head[4], struct.unpack_from("<H", program_head, 18)[0]
    if (ei_class, machine) not in ((2, EMachine.X86_64), (1, EMachine.I386), (1, _EM_486), X32):
        return None
    ehdr_size, phentsize_at, phentsize = _LAYOUT[ei_class]
    if len(interp_head) < ehdr_size:
        return errno.EIO
    if interp_head[:4] != b"\x7fELF":
        return errno.ELIBBAD
    interp_machine = struct.unpack_from("<H", interp_head, 18)[0]
    if ei_class == 2:
        arch_ok = interp_machine == EMachine.X86_64
    else:
        arch_ok = interp_machine in (EMachine.I386, _EM_486) or (
            interp_machine == EMachine.X86_64 and (abis is None or abis.executes(X32)))
    if not arch_ok or struct.unpack_from("<H", interp_head, phentsize_at)[0] != phentsize:
        return errno.ELIBBAD
    return None
