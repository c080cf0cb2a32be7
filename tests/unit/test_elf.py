"""The struct-based reader against pyelftools (the oracle for ELF decoding) over this machine's files,
and its failure mode on damaged input: ElfError, never another exception."""

from __future__ import annotations

import glob
import os
import random

import pytest
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile

from ldsim.elf import ElfError, parse_elf

SAMPLE = sorted(p for p in glob.glob("/usr/lib/x86_64-linux-gnu/*.so*") + glob.glob("/usr/bin/*")
                if os.path.isfile(p))[::7][:120]


def _pyelftools_view(path: str) -> dict:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dyn = next((s for s in elf.iter_segments() if isinstance(s, DynamicSegment)), None)
        interp = next((s.get_interp_name() for s in elf.iter_segments() if s["p_type"] == "PT_INTERP"), None)
        out = {"interp": interp, "needed": [], "soname": None, "rpath": None, "runpath": None}
        if dyn is not None:
            for t in dyn.iter_tags():
                if t.entry.d_tag == "DT_NEEDED":
                    out["needed"].append(t.needed)
                elif t.entry.d_tag == "DT_SONAME":
                    out["soname"] = t.soname
                elif t.entry.d_tag == "DT_RPATH":
                    out["rpath"] = t.rpath
                elif t.entry.d_tag == "DT_RUNPATH":
                    out["runpath"] = t.runpath
        return out


@pytest.mark.parametrize("path", SAMPLE)
def test_reader_agrees_with_pyelftools(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        pytest.skip("not ELF")
    ours = parse_elf(data)
    theirs = _pyelftools_view(path)
    assert ours.interp == theirs["interp"]
    assert list(ours.needed) == theirs["needed"]
    assert (ours.soname, ours.rpath, ours.runpath) == (theirs["soname"], theirs["rpath"], theirs["runpath"])


def test_damaged_inputs_raise_only_elferror() -> None:
    rng = random.Random(1234)
    with open("/usr/bin/true", "rb") as f:
        original = f.read()
    for i in range(300):
        data = bytearray(original)
        if i % 3 == 0:
            data = data[: rng.randrange(0, len(data))]
        for _ in range(rng.randrange(1, 20)):
            pos = rng.randrange(0, min(len(data), 4096)) if data else 0
            if data:
                data[pos] = rng.randrange(256)
        try:
            parse_elf(bytes(data))
        except ElfError:
            pass
