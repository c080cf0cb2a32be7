"""Differential tests of _dl_allocate_tls_init at the start (elf/dl-tls.c, called by dl_main once every
object but ld.so is relocated, never in trace mode): it asserts for each startup TLS module that its block
(p_memsz) holds its initialization image (p_filesz).  A PT_TLS patched to the contrary, in a library or
in the program, is "Inconsistency detected by ld.so", exit 127, after the relocation lines."""

from __future__ import annotations

import pytest

from tests.conformance.test_memory_limits import PROG, _cc, _compare, patch_tls_field

pytestmark = pytest.mark.conformance


def _shrink_tls_memsz(path: str) -> None:
    """p_memsz of the file's PT_TLS = its p_filesz - 8."""
    patch_tls_field(path, 40, lambda filesz, memsz: filesz - 8)


@pytest.mark.parametrize("mode", ["run", "run-debug", "ldso-debug", "trace", "ldd"])
@pytest.mark.parametrize("where", ["library", "program"])
def test_a_tls_image_larger_than_its_block(tmp_path, where: str, mode: str) -> None:
    root = str(tmp_path)
    tls = "__thread long t[8] = {1, 2, 3};\nvoid *gt(void) { return t; }\n"
    if where == "library":
        _cc(root, "libt.so", tls, "-shared", "-Wl,-soname,libt.so")
        _cc(root, "m", PROG, "-lt")
        _shrink_tls_memsz(f"{root}/libt.so")
    else:
        _cc(root, "m", tls + "int main(void) { return 0; }\n")
        _shrink_tls_memsz(f"{root}/m")
    _compare(f"{root}/m", mode, root)
