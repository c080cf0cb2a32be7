"""Unit checks of the hash functions, hash-table lookups and the DFS init order (glibc-loader.md §5.2, §6.1)."""

from __future__ import annotations

import os

import pytest

from ldsim.elf import parse_elf
from ldsim.initfini import sort_maps, startup_initfini
from ldsim.linkmap import Kind, LinkMap
from ldsim.symbols import STB, SymbolTable, elf_hash, gnu_hash

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def test_hash_functions() -> None:
    """dl_new_hash and _dl_elf_hash on known values."""
    assert gnu_hash(b"") == 5381
    assert gnu_hash(b"printf") == 0x156B2BB8
    assert elf_hash(b"printf") == 0x077905A6
    assert elf_hash(b"GLIBC_2.2.5") == 0x09691A75


@pytest.mark.skipif(not os.path.exists(LIBC), reason="no host libc")
def test_lookup_goes_through_the_gnu_hash_chain() -> None:
    with open(LIBC, "rb") as f:
        tab = SymbolTable(parse_elf(f.read()))
    assert tab.gnu and tab.nbuckets > 0
    hits = [tab.symbol(i) for i in tab.chain("printf", gnu_hash(b"printf"))]
    printf = [s for s in hits if s.name == "printf"]
    assert printf and printf[0].bind == STB.GLOBAL
    version = tab.versions[tab.versym(printf[0].index) & 0x7FFF]
    assert version.name == "GLIBC_2.2.5"
    assert list(tab.chain("no_such_symbol_ldsim", gnu_hash(b"no_such_symbol_ldsim"))) == []


def _maps(names: str) -> dict[str, LinkMap]:
    return {n: LinkMap(name=n, names=[n], kind=Kind.MAIN if n == "m" else Kind.LIB) for n in names.split()}


def test_dfs_order_of_the_verified_example() -> None:
    """exe→{A,B,libc}, A→C, B→{C,D,E}, C→D, libc→ld: init ld, E, D, C, libc, B, A (§6.1)."""
    m = _maps("m A B libc C D E ld")
    for who, deps in {"m": "A B libc", "A": "C", "B": "C D E", "C": "D", "libc": "ld"}.items():
        m[who].deps = [m[d] for d in deps.split()]
    order = startup_initfini(m["m"], [m[n] for n in "m A B libc C D E ld".split()], None)
    assert [x.name for x in reversed(order)] == "ld E D C libc B A m".split()


def test_cycle_keeps_first_map_first() -> None:
    m = _maps("m X Y")
    m["m"].deps = [m["Y"], m["X"]]
    m["X"].deps = [m["Y"]]
    m["Y"].deps = [m["X"]]
    out = sort_maps([m["m"], m["Y"], m["X"]], lambda x: [x, *x.deps], force_first=True)
    assert out[0] is m["m"] and len(out) == 3
