"""Differential tests of the IFUNC resolvers ld.so calls while relocating (sysdeps/x86_64/dl-machine.h
elf_machine_rela and elf_machine_lazy_rel; never in trace mode's __RTLD_NOIFUNC passes): for a symbol
bound to an STT_GNU_IFUNC definition, at its definer's address, and for R_X86_64_IRELATIVE, at l_addr +
r_addend (also from a lazily bound DT_JMPREL).  A resolver in a page its object maps without execute
permission faults there: SIGSEGV, after the lookups before it.  The resolver's address is patched to
point at read-only data."""

from __future__ import annotations

import io
import struct

import pytest
from elftools.elf.elffile import ELFFile

from ldsim.elf import DT, parse_elf
from tests.conformance.test_memory_limits import _cc, _compare
from tests.conformance.test_relocation_stores import _rodata

pytestmark = pytest.mark.conformance

IFUNC = ('const char ro_pad[64] = "pad";\nstatic int impl(void) { return 1; }\n'
         'static void *res(void) { return (void *) impl; }\n'
         'int ifn(void) __attribute__((ifunc("res")));\n'
         'static int ifs(void) __attribute__((ifunc("res")));\n'
         'int (*pl)(void) = ifs;\nint callifs(void) { return ifs(); }\n')


def _patch_dynsym(path: str, name: str, value) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    dynsym = ELFFile(io.BytesIO(bytes(data))).get_section_by_name(".dynsym")
    for i, sym in enumerate(dynsym.iter_symbols()):
        if sym.name == name:
            struct.pack_into("<Q", data, dynsym["sh_offset"] + 24 * i + 8, value(parse_elf(bytes(data))))
            break
    with open(path, "wb") as f:
        f.write(data)


def _patch_irelative(path: str, table: int, size: int, value) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(table))
    for i in range((elf.dyn(size) or 0) // 24):
        if struct.unpack_from("<Q", data, off + 24 * i + 8)[0] & 0xFFFFFFFF == 37:  # R_X86_64_IRELATIVE
            struct.pack_into("<q", data, off + 24 * i + 16, value(elf))
            break
    else:
        raise AssertionError("no IRELATIVE entry")
    with open(path, "wb") as f:
        f.write(data)


# name -> (object patched, program link flags, patch)
CASES = {
    "global-ifunc": ("lib", (), lambda p: _patch_dynsym(p, "ifn", _rodata)),
    "irelative": ("lib", (), lambda p: _patch_irelative(p, DT.RELA, DT.RELASZ, _rodata)),
    # a non-PIE program calling its own IFUNC: IRELATIVE in DT_JMPREL, bound lazily or not
    "program-plt-irelative": ("prog", ("-no-pie",), lambda p: _patch_irelative(p, DT.JMPREL, DT.PLTRELSZ, _rodata)),
}
MODES = ("run", "run-debug", "ldso-debug", "trace")


@pytest.mark.parametrize("mode", [*MODES, "run-lazy"])
@pytest.mark.parametrize("case", list(CASES))
def test_an_ifunc_resolver_in_a_page_not_executable(tmp_path, case: str, mode: str) -> None:
    root = str(tmp_path)
    what, flags, patch = CASES[case]
    _cc(root, "libl.so", IFUNC, "-shared", "-Wl,-soname,libl.so")
    prog = ("int ifn(void);\nint (*p)(void) = ifn;\nint main(void) { return 0; }\n" if what == "lib" else
            IFUNC.replace("int (*pl)(void) = ifs;\n", "") + "int main(int c, char **v) { return c > 5 ? callifs() : 0; }\n")
    _cc(root, "m", prog, "-ll", *flags)
    patch(f"{root}/libl.so" if what == "lib" else f"{root}/m")
    if mode == "run-lazy":
        _compare(f"{root}/m", "run", root, {"LD_DEBUG": "reloc,bindings"})
    else:
        _compare(f"{root}/m", mode, root)
