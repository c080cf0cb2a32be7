"""Differential tests of where relocation processing stores (elf/do-rel.h, elf/dynamic-link.h,
sysdeps/x86_64/dl-machine.h): every relative, RELR, symbolic and PLT relocation writes its word at
l_addr + r_offset, elf_machine_runtime_setup writes GOT[1] and GOT[2] of a lazily bound object; a store
into a page the object maps without write permission (its read-only data or text, unless DT_TEXTREL
made it writable for relocation) or past the address space faults: SIGSEGV, after whatever the relocations before it printed.
Libraries whose relocation entries were patched run for real and through ldsim."""

from __future__ import annotations

import struct

import pytest

from ldsim.elf import DT, PT, parse_elf
from tests.conformance.test_memory_limits import PROG, _cc, _compare

pytestmark = pytest.mark.conformance

LIB = ("const char ro_pad[64] = \"pad\";\nextern int ext;\nstatic int x = 1;\nint *px = &x;\nint *pe = &ext;\nint ext_fn(void);\n"
       "int call(void) { return ext_fn(); }\nvoid *gt(void) { return px; }\n")
EXT = "int ext = 2;\nint ext_fn(void) { return 3; }\n"
NONCANONICAL = 0x4000000000000000


def _symbol(elf, name: str) -> int:
    """A symbol's address from the section headers' .symtab (as nm reads it)."""
    import io

    from elftools.elf.elffile import ELFFile
    return ELFFile(io.BytesIO(elf.data)).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]


def _rodata(elf) -> int:
    """`ro_pad`: read-only data nothing reads."""
    return _symbol(elf, "ro_pad")


def _patch_entry(path: str, table: int, size: int, rtype: int, value) -> None:
    """Set r_offset of the first entry of the table at dynamic tag `table` whose type is `rtype` to
    value(elf); a relative one is px's (the others set up what the init calls use)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(table))
    for i in range((elf.dyn(size) or 0) // 24):
        where, info = struct.unpack_from("<QQ", data, off + 24 * i)
        if info & 0xFFFFFFFF == rtype and (rtype != 8 or where == _symbol(elf, "px")):
            struct.pack_into("<Q", data, off + 24 * i, value(elf))
            break
    else:
        raise AssertionError("no such entry")
    with open(path, "wb") as f:
        f.write(data)


def _patch_dyn(path: str, tag: int, value) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    seg = next(s for s in elf.segments if s.type == PT.DYNAMIC)
    for at in range(seg.offset, seg.offset + seg.filesz - 15, 16):
        t, = struct.unpack_from("<q", data, at)
        if t == tag:
            struct.pack_into("<Q", data, at + 8, value(elf))
    with open(path, "wb") as f:
        f.write(data)


def _patch_relr(path: str, value) -> None:
    """Replace the first address entry of DT_RELR with value(elf)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    struct.pack_into("<Q", data, elf.vaddr_to_offset(elf.dyn(DT.RELR)), value(elf))
    with open(path, "wb") as f:
        f.write(data)


# name -> (extra link flags of libl.so, patch(path))
CASES = {
    "relative-to-rodata": ((), lambda p: _patch_entry(p, DT.RELA, DT.RELASZ, 8, _rodata)),
    "relative-noncanonical": ((), lambda p: _patch_entry(p, DT.RELA, DT.RELASZ, 8, lambda e: NONCANONICAL)),
    "glob-dat-to-rodata": ((), lambda p: _patch_entry(p, DT.RELA, DT.RELASZ, 6, _rodata)),
    "jump-slot-to-rodata": ((), lambda p: _patch_entry(p, DT.JMPREL, DT.PLTRELSZ, 7, _rodata)),
    "pltgot-in-rodata": ((), lambda p: _patch_dyn(p, DT.PLTGOT, _rodata)),
    "relr-to-rodata": (("-Wl,-z,pack-relative-relocs",), lambda p: _patch_relr(p, _rodata)),
    # DT_TEXTREL: every segment is writable while the object is relocated
    "textrel-relative-to-rodata": (("-Wl,-z,notext", "-fno-pic", "-mcmodel=large"),
                                 lambda p: _patch_entry(p, DT.RELA, DT.RELASZ, 8, _rodata)),
}
MODES = ("run", "run-debug", "ldso-debug", "trace", "ldd")


@pytest.mark.parametrize("mode", [*MODES, "run-lazy"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_relocation_store_into_a_read_only_page(tmp_path, case: str, mode: str) -> None:
    root = str(tmp_path)
    flags, patch = CASES[case]
    _cc(root, "libext.so", EXT, "-shared", "-Wl,-soname,libext.so")
    _cc(root, "libl.so", LIB, "-shared", "-Wl,-soname,libl.so", "-lext", *flags)
    _cc(root, "m", PROG, "-ll", "-lext")
    patch(f"{root}/libl.so")
    if mode == "run-lazy":  # lazy binding: the PLT range and GOT setup only
        _compare(f"{root}/m", "run", root, {"LD_DEBUG": "reloc,bindings"})
    else:
        _compare(f"{root}/m", mode, root)


def _patch_dynsym_value(path: str, name: str, value: int) -> None:
    import io

    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        data = bytearray(f.read())
    dynsym = ELFFile(io.BytesIO(bytes(data))).get_section_by_name(".dynsym")
    for i, sym in enumerate(dynsym.iter_symbols()):
        if sym.name == name:
            struct.pack_into("<Q", data, dynsym["sh_offset"] + 24 * i + 8, value)
    with open(path, "wb") as f:
        f.write(data)


# where the library's `dv` is moved: a page of the gap between its segments (mapped PROT_NONE), or
# past the address space; "data" (its own .data) is the control
COPY_SOURCES = {"hole": lambda elf: 0x1000, "noncanonical": lambda elf: NONCANONICAL,
                "data": lambda elf: _symbol(elf, "dv")}


@pytest.mark.parametrize("mode", ["run", "run-debug", "ldso-debug", "trace", "ldd"])
@pytest.mark.parametrize("source", list(COPY_SOURCES))
def test_a_copy_relocation_reading_an_unreadable_page(tmp_path, source: str, mode: str) -> None:
    """R_X86_64_COPY's memcpy reads the definition (MIN of both sizes): from a page the library maps
    without read permission, or past the address space, SIGSEGV (ldsim copied nothing and went on)."""
    root = str(tmp_path)
    _cc(root, "libl.so", "int dv[4] = {1};\nint *g(void) { return dv; }\n", "-shared", "-Wl,-soname,libl.so",
        "-Wl,-z,max-page-size=0x10000", "-Wl,-z,separate-code")
    _cc(root, "m", "extern int dv[4];\nint main(void) { return dv[0] - 1; }\n", "-ll", "-no-pie", "-fno-pic")
    with open(f"{root}/libl.so", "rb") as f:
        value = COPY_SOURCES[source](parse_elf(f.read()))
    _patch_dynsym_value(f"{root}/libl.so", "dv", value)
    _compare(f"{root}/m", mode, root)
