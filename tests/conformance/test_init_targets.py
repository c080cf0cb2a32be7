"""Differential tests of the functions _dl_init, libc's call_init and _dl_fini call (elf/dl-init.c,
csu/libc-start.c, elf/dl-fini.c): DT_INIT, the DT_INIT_ARRAY entries (as relocation left them), the
program's DT_PREINIT_ARRAY, DT_FINI_ARRAY and DT_FINI.  One that lies in a page its object maps without
execute permission faults right after its `calling init`, `initialize program` or `calling fini` line:
SIGSEGV.  A library's or the program's dynamic entry or array word is patched to point at read-only data;
the control points DT_INIT at a function that does nothing."""

from __future__ import annotations

import struct

import pytest

from ldsim.elf import DT, parse_elf
from tests.conformance.test_memory_limits import PROG, _cc, _compare
from tests.conformance.test_relocation_stores import _patch_dyn, _rodata, _symbol

pytestmark = pytest.mark.conformance

CODE = ('const char ro_pad[64] = "pad";\nvoid nop(void) {}\n'
        "__attribute__((constructor)) static void ctor(void) {}\n"
        "__attribute__((destructor)) static void dtor(void) {}\n")


def _patch_array(path: str, tag: int, value) -> None:
    """Point the first entry of the array at dynamic tag `tag` at value(elf): through its relative
    relocation's addend when it has one (PIC), else the word itself."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    slot = elf.dyn(tag)
    rela = elf.dyn(DT.RELA)
    if rela is not None:
        off = elf.vaddr_to_offset(rela)
        for i in range((elf.dyn(DT.RELASZ) or 0) // 24):
            where, info = struct.unpack_from("<QQ", data, off + 24 * i)
            if where == slot and info & 0xFFFFFFFF == 8:
                struct.pack_into("<q", data, off + 24 * i + 16, value(elf))
                break
        else:
            rela = None
    if rela is None:
        struct.pack_into("<Q", data, elf.vaddr_to_offset(slot), value(elf))
    with open(path, "wb") as f:
        f.write(data)


# name -> (the object patched: "lib" or "prog", program link flags, patch(path))
CASES = {
    "lib-dt-init": ("lib", (), lambda p: _patch_dyn(p, DT.INIT, _rodata)),
    "lib-dt-init-nop": ("lib", (), lambda p: _patch_dyn(p, DT.INIT, lambda e: _symbol(e, "nop"))),
    "lib-init-array": ("lib", (), lambda p: _patch_array(p, DT.INIT_ARRAY, _rodata)),
    "lib-fini-array": ("lib", (), lambda p: _patch_array(p, DT.FINI_ARRAY, _rodata)),
    "lib-dt-fini": ("lib", (), lambda p: _patch_dyn(p, DT.FINI, _rodata)),
    "prog-init-array": ("prog", (), lambda p: _patch_array(p, DT.INIT_ARRAY, _rodata)),
    "prog-dt-init": ("prog", (), lambda p: _patch_dyn(p, DT.INIT, _rodata)),
    "prog-fini-array": ("prog", (), lambda p: _patch_array(p, DT.FINI_ARRAY, _rodata)),
    "prog-init-array-no-pie": ("prog", ("-no-pie",), lambda p: _patch_array(p, DT.INIT_ARRAY, lambda e: 0)),
}
PREINIT = ('static void pre(void) {}\n'
           '__attribute__((section(".preinit_array"), used)) static void (*pa[])(void) = {pre};\n')


@pytest.mark.parametrize("mode", ["run", "run-debug", "ldso-debug"])
@pytest.mark.parametrize("case", [*CASES, "prog-preinit-array"])
def test_an_init_or_fini_function_in_a_page_not_executable(tmp_path, case: str, mode: str) -> None:
    root = str(tmp_path)
    if case == "prog-preinit-array":
        what, flags, patch = "prog", (), lambda p: _patch_array(p, DT.PREINIT_ARRAY, _rodata)
    else:
        what, flags = CASES[case][:2]
        patch = CASES[case][2]
    _cc(root, "libl.so", CODE + "void *gt(void) { return 0; }\n", "-shared", "-Wl,-soname,libl.so")
    _cc(root, "m", CODE + PREINIT + PROG, "-ll", *flags)
    patch(f"{root}/libl.so" if what == "lib" else f"{root}/m")
    _compare(f"{root}/m", mode, root)


@pytest.mark.parametrize("size", [0x10, 0x100, 1 << 40])
def test_the_init_array_size_as_call_init_counts_it(tmp_path, size: int) -> None:
    """DT_INIT_ARRAYSZ / sizeof (ElfW(Addr)) in an unsigned int: 2^40 bytes are no entry at all; 0x100
    runs past the array into words that are no functions (SIGSEGV); 0x10 reaches the next array's
    function, which returns."""
    root = str(tmp_path)
    _cc(root, "libl.so", CODE + "void *gt(void) { return 0; }\n", "-shared", "-Wl,-soname,libl.so")
    _cc(root, "m", PROG, "-ll")
    _patch_dyn(f"{root}/libl.so", DT.INIT_ARRAYSZ, lambda elf: size)
    _compare(f"{root}/m", "run-debug", root)
