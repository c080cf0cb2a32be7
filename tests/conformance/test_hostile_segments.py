"""Differential tests of corrupt program headers: what mapping the segments does (`_dl_map_object_from_fd`,
`_dl_map_segments`) before the loader reads anything of the dynamic section.

A program and the library it needs are built with gcc once; each case rewrites one field of a PT_LOAD or
PT_DYNAMIC header (or cuts the file) of one of them, and `ld.so PROG` (LD_TRACE_LOADED_OBJECTS, LD_WARN,
LD_BIND_NOW; also `--list`) is compared between the real loader and ldsim at test time.  When the
library is the corrupt one, the loader's message names it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same, build_foo_world

pytestmark = pytest.mark.conformance

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_GNU_RELRO = 1, 2, 3, 0x6474E552
P_FLAGS, P_OFFSET, P_VADDR, P_FILESZ, P_MEMSZ, P_ALIGN = 4, 8, 16, 32, 40, 48  # Elf64_Phdr field offsets
PAGE = 4096
HUGE = 1 << 48  # more than a 47-bit address space


def _phdrs(data: bytes) -> list[tuple[int, tuple[int, ...]]]:
    """(file offset of the header, its fields) of each program header of a 64-bit file."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    return [(phoff + 56 * i, struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i)) for i in range(phnum)]


def _nth(data: bytes, p_type: int, n: int) -> int:
    """File offset of the n-th program header of `p_type` (n = -1: the last)."""
    return [at for at, f in _phdrs(data) if f[0] == p_type][n]


def set_field(p_type: int, n: int, field: int, value: int) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        out = bytearray(data)
        struct.pack_into("<I" if field < 8 else "<Q", out, _nth(data, p_type, n) + field, value)
        return bytes(out)
    return edit


def retype_loads(data: bytes) -> bytes:
    out = bytearray(data)
    for at, f in _phdrs(data):
        if f[0] == PT_LOAD:
            struct.pack_into("<I", out, at, 0x6FFFFFFF)  # a type the loader ignores
    return bytes(out)


def cut_before_bss(data: bytes) -> bytes:
    """Cut the file at the page holding the end of the last PT_LOAD's file data: the memset that clears
    the rest of that page (its bss) touches a page wholly past the end of the file."""
    f = _phdrs(data)[[a for a, _ in _phdrs(data)].index(_nth(data, PT_LOAD, -1))][1]
    end = f[2] + f[5]
    assert f[6] > f[5] and end % PAGE, "the last PT_LOAD has no partial bss page to clear"
    return data[:end & ~(PAGE - 1)]


def set_dyn(tag: int, value: int, field: int = 8) -> Callable[[bytes], bytes]:
    """The value (field 8) or the tag (field 0) of the dynamic section's first `tag` entry."""
    def edit(data: bytes) -> bytes:
        f = _phdrs(data)[[a for a, _ in _phdrs(data)].index(_nth(data, PT_DYNAMIC, 0))][1]
        out = bytearray(data)
        for at in range(f[2], f[2] + f[5], 16):
            if struct.unpack_from("<q", data, at)[0] == tag:
                struct.pack_into("<Q", out, at + field, value)
                return bytes(out)
        raise AssertionError(f"no dynamic tag {tag:#x}")
    return edit


DT_PLTRELSZ, DT_RELASZ = 2, 8
def move_relro(by: int) -> Callable[[bytes], bytes]:
    """PT_GNU_RELRO's p_vaddr moved `by` bytes up."""
    def edit(data: bytes) -> bytes:
        at = _nth(data, PT_GNU_RELRO, 0)
        out = bytearray(data)
        struct.pack_into("<Q", out, at + P_VADDR, struct.unpack_from("<Q", data, at + P_VADDR)[0] + by)
        return bytes(out)
    return edit


def set_phoff(value: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:32] + struct.pack("<Q", value) + data[40:]


EDITS: dict[str, Callable[[bytes], bytes]] = {
    # open_verify's pread of the program headers: short (no errno) or refused (a negative loff_t: EINVAL)
    "phoff-past-eof": set_phoff(0x100000),
    "phoff-negative": set_phoff(0xDA70000000000040),
    "phoff-end-past-loff-max": set_phoff((1 << 63) - 1),
    # checked while reading the program headers, before strings the file offset no longer reaches
    "first-load-offset-not-congruent": set_field(PT_LOAD, 0, P_OFFSET, 1),
    "first-load-vaddr-not-congruent": set_field(PT_LOAD, 0, P_VADDR, 0x10),
    "no-load-segment": retype_loads,
    "dynamic-at-vaddr-0": set_field(PT_DYNAMIC, 0, P_VADDR, 0),
    # elf_get_dynamic_info reads the dynamic section at p_vaddr, in the mapping: never at p_offset
    "dynamic-offset-0": set_field(PT_DYNAMIC, 0, P_OFFSET, 0),
    "dynamic-offset-past-eof": set_field(PT_DYNAMIC, 0, P_OFFSET, 0x100000),
    "dynamic-in-a-segment-without-access": set_field(PT_LOAD, -1, P_FLAGS, 0),
    "hash-in-a-segment-without-access": set_field(PT_LOAD, 0, P_FLAGS, 0),
    # _dl_setup_hash reads the hash table (in the first segment) before any string is read
    "first-load-offset-past-eof": set_field(PT_LOAD, 0, P_OFFSET, 0x100000),
    "first-load-not-a-load": set_field(PT_LOAD, 0, 0, 0x6FFFFFFF),
    "first-load-vaddr-wraps": set_field(PT_LOAD, 0, P_VADDR, 0xFFFFFFFFFFFFF000),
    "first-load-memsz-0": set_field(PT_LOAD, 0, P_MEMSZ, 0),  # mmap maps p_filesz's pages all the same
    # dl_main takes PT_INTERP's name at its p_vaddr, in the mapping (the kernel's reading: test_exec_bad_interp)
    "interp-offset-past-eof": set_field(PT_INTERP, 0, P_OFFSET, 0x100000),
    "interp-size-0": set_field(PT_INTERP, 0, P_FILESZ, 0),
    "interp-size-past-eof": set_field(PT_INTERP, 0, P_FILESZ, 0x100000),
    # elf_dynamic_do_Rela walks `r < end`: a size that makes end wrap past 2**64 relocates nothing more
    "relasz-wraps": set_dyn(DT_RELASZ, (1 << 64) - 1),
    "pltrelsz-wraps": set_dyn(DT_PLTRELSZ, (1 << 64) - 1),
    # a name to read and no DT_STRTAB: D_PTR of the NULL l_info entry
    "no-strtab": set_dyn(5, 0x6FFFFEF0, field=0),  # DT_STRTAB's entry turned into an unknown tag
    # _dl_protect_relro after the relocations (LD_WARN): mprotect of pages nothing can map, ENOMEM
    "relro-256-tib-above": move_relro(0xFFFF00000000),
    # _dl_map_segments
    "first-load-overlaps-the-last": set_field(PT_LOAD, 0, P_FILESZ, 0x100000),
    "first-load-far-above-the-others": set_field(PT_LOAD, 0, P_VADDR, 1 << 32),
    "last-load-huge": set_field(PT_LOAD, -1, P_MEMSZ, HUGE),
    "huge-alignment": set_field(PT_LOAD, 1, P_ALIGN, HUGE),
    "second-load-offset-overflows": set_field(PT_LOAD, 1, P_OFFSET, 0xFFFFFFFFFFFF0000),
    "first-load-huge-bss": set_field(PT_LOAD, 0, P_MEMSZ, HUGE),
    # past the object's reservation, a fixed mapping ending more than mmap_base's distance from the top
    # of the address space (2**28 random pages and the stack gap) above it fails whatever ASLR chose
    "second-load-bss-of-16-tib": set_field(PT_LOAD, 1, P_MEMSZ, 1 << 44),
    "second-load-2-tib-above": set_field(PT_LOAD, 1, P_VADDR, (2 << 40) + 0x1000),
    # ... unless the first segment's address, an mmap hint, put the object low: the mapping fits (the
    # hash table, in the segment made another type, is then read where nothing is mapped: SIGSEGV)
    "hinted-object-2-tib-above": lambda d: set_field(PT_LOAD, 1, P_VADDR, (2 << 40) + 0x2000)(
        set_field(PT_LOAD, 0, 0, 0x6FFFFFFF)(d)),
    "bss-page-past-eof": cut_before_bss,
}
TRACE = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("hostile_segments")
    return build_foo_world(d)


def _world(built: str, root: str, target: str, edit: Callable[[bytes], bytes]) -> str:
    os.makedirs(root)
    for name in ("prog", "libfoo.so.1"):
        shutil.copy2(f"{built}/{name}", f"{root}/{name}")
    with open(f"{root}/{target}", "rb") as f:
        data = edit(f.read())
    with open(f"{root}/{target}", "wb") as f:
        f.write(data)
    return f"{root}/prog"


# the library has no PT_INTERP and no PLT relocations
PROG_ONLY = {"interp-offset-past-eof", "interp-size-0", "interp-size-past-eof", "pltrelsz-wraps"}
CASES = [pytest.param(edit, target, id=f"{edit}-{target}") for edit in EDITS for target in ("prog", "libfoo.so.1")
         if target == "prog" or edit not in PROG_ONLY]


@pytest.mark.parametrize(("edit", "target"), CASES)
def test_corrupt_segments(built, tmp_path, edit: str, target: str) -> None:
    prog = _world(built, str(tmp_path / "w"), target, EDITS[edit])
    env = {"LD_LIBRARY_PATH": str(tmp_path / "w")}
    for argv, e in (([prog], {**TRACE, **env}), (["--list", prog], env)):
        real = oracle.run([oracle.RTLD, *argv], e, str(tmp_path), timeout=20)
        assert_same(real, oracle.sim_ldso_argv(argv, e, str(tmp_path)))


@pytest.mark.parametrize("edit", ["interp-offset-past-eof", "interp-size-0", "interp-size-past-eof"])
def test_exec_bad_interp(built, tmp_path, edit: str) -> None:
    """execve reads PT_INTERP at p_offset (load_elf_binary): a size below 2 or above PATH_MAX is ENOEXEC,
    a short read EIO; `ldsim run` reports the same errno's text in its one line, exit 126."""
    prog = _world(built, str(tmp_path / "w"), "prog", EDITS[edit])
    with pytest.raises(OSError) as failed:
        subprocess.run([prog], env={}, capture_output=True, timeout=20)
    sim = oracle.ldsim_run(prog, {}, str(tmp_path))
    expected = f"ldsim: {prog}: cannot execute: {os.strerror(failed.value.errno)}\n".encode()
    assert (sim.status, sim.stdout, sim.stderr) == (126, b"", expected)
