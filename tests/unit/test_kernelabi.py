"""kernelabi: which ELF ABIs execve accepts, and the interpreter checks of load_elf_binary (pure)."""

from __future__ import annotations

import errno
import struct

from ldsim.kernelabi import X32, KernelAbis, interp_errno


def _ehdr(ei_class: int, machine: int, phentsize: int | None = None) -> bytes:
    """An ELF header of that class and machine with the matching (or given) e_phentsize, and what follows
    it in a file (a 52-byte Elf32_Ehdr alone is a short read for the 64-bit binfmt)."""
    ident = b"\x7fELF" + bytes([ei_class, 1, 1]) + bytes(9)
    if ei_class == 2:
        return ident + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 64, 0, 0, 64,
                                   56 if phentsize is None else phentsize, 1, 64, 0, 0) + bytes(64)
    return ident + struct.pack("<HHIIIIIHHHHHH", 3, machine, 1, 0, 52, 0, 0, 52,
                               32 if phentsize is None else phentsize, 1, 40, 0, 0) + bytes(64)


X86_64, I386, X32_HDR = _ehdr(2, 62), _ehdr(1, 3), _ehdr(1, 62)


def test_interpreter_of_the_programs_own_binfmt_is_accepted() -> None:
    assert interp_errno(X86_64, X86_64, KernelAbis(x32=False)) is None
    assert interp_errno(I386, I386, KernelAbis(x32=False)) is None
    assert interp_errno(I386, _ehdr(1, 6), KernelAbis(x32=False)) is None  # EM_486


def test_interpreter_of_another_class_or_machine_is_elibbad() -> None:
    no_x32 = KernelAbis(x32=False)
    assert interp_errno(X86_64, I386, no_x32) == errno.ELIBBAD
    assert interp_errno(I386, X86_64, no_x32) == errno.ELIBBAD
    assert interp_errno(I386, X32_HDR, no_x32) == errno.ELIBBAD
    assert interp_errno(I386, X32_HDR, KernelAbis(x32=True)) is None  # compat_elf_check_arch with x32
    assert interp_errno(X86_64, X32_HDR, no_x32) == errno.ELIBBAD  # read as Elf64: e_phentsize is not 56
    assert interp_errno(X86_64, _ehdr(2, 62, phentsize=32), no_x32) == errno.ELIBBAD


def test_short_or_not_elf_interpreters() -> None:
    assert interp_errno(X86_64, b"#!/bin/sh\n", None) == errno.EIO
    assert interp_errno(I386, I386[:51], None) == errno.EIO
    assert interp_errno(X86_64, I386[:52], None) == errno.EIO  # shorter than an Elf64_Ehdr
    assert interp_errno(X86_64, b"#!/bin/sh\n" + bytes(60), None) == errno.ELIBBAD


def test_programs_of_other_machines_are_not_judged() -> None:
    aarch64 = _ehdr(2, 183)
    assert interp_errno(aarch64, X86_64, None) is None
    assert interp_errno(b"#!/bin/sh\n", X86_64, None) is None


def test_only_x32_is_asked() -> None:
    abis = KernelAbis(x32=False)
    assert abis.executes((2, 62)) and abis.executes((1, 3)) and not abis.executes(X32)
    assert KernelAbis(x32=True).executes(X32)
