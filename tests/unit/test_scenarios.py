"""Every shipped scenario holds on the virtual filesystem (the real loader checks them in
tests/conformance/test_scenarios.py), and the ELF writer produces what the reader reads."""

from __future__ import annotations

import glob
import re
import os

import pytest

from ldsim.elf import parse_elf
from ldsim.elfwrite import ElfSpec, write_elf
from ldsim.scenario import check, load, run_virtual
from ldsim.virtual import VirtualWorld

SCENARIOS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "*.toml")))


def test_there_are_at_least_forty_scenarios() -> None:
    assert len(SCENARIOS) >= 40


def test_the_catalog_covers_every_kind_of_rule() -> None:
    """Issue 5: secure mode, preload, versions, interposition, weak/unique/copy symbols, init order."""
    scs = [load(p) for p in SCENARIOS]
    kinds = {
        "secure mode": [s for s in scs if s.uid not in (None, 0) and any(o.mode & 0o6000 for o in s.objects)],
        "preload": [s for s in scs if "LD_PRELOAD" in s.env or "--preload" in s.ldso_args],
        "versions": [s for s in scs if any("@" in d for o in s.objects for d in o.defines)],
        "interposition": [s for s in scs if s.bindings],
        "weak": [s for s in scs if any(d.startswith("weak") for o in s.objects for d in o.defines)],
        "unique": [s for s in scs if any(o.unique for o in s.objects)],
        "copy relocation": [s for s in scs if any(not o.pie for o in s.objects)],
        "init order": [s for s in scs if s.init_order],
    }
    assert [k for k, v in kinds.items() if not v] == []


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: os.path.basename(p)[:-5])
def test_scenario_holds_virtually(path: str) -> None:
    sc = load(path)
    if sc.real_only:
        pytest.skip("needs gcc-built symbols: checked against ldsim and the real loader in tests/conformance")
    assert check(sc, run_virtual(sc)) == []


def test_elfwrite_round_trip() -> None:
    spec = ElfSpec(needed=("a.so", "b.so"), soname="x.so", rpath="$ORIGIN", runpath="/r", flags_1=0x800,
                   symbols=("f", "g"))
    e = parse_elf(write_elf(spec))
    assert (e.needed, e.soname, e.rpath, e.runpath, e.flags_1) == (("a.so", "b.so"), "x.so", "$ORIGIN", "/r", 0x800)
    assert parse_elf(write_elf(ElfSpec(ei_class=1, soname="y.so"))).ei_class == 1


def test_virtual_world_symlinks_and_identity() -> None:
    w = VirtualWorld()
    w.add_file("/a/real/libx.so", b"data")
    w.add_symlink("/b/link", "../a/real")
    assert w.realpath("/b/link/libx.so") == "/a/real/libx.so"
    assert w.stat("/b/link/libx.so").st_ino == w.stat("/a/real/libx.so").st_ino
    assert w.listdir("/a") == ["real"]
    with pytest.raises(FileNotFoundError):
        w.stat("/b/link/nope")


@pytest.mark.parametrize(("run", "expect", "error"), [
    ('execute = true', 'loaded = [{ name = "a", path = "b" }]', "not loaded/missing/absent"),
    ('', 'bindings = [{ symbol = "f", from = "a", to = "b" }]', "need [run] execute = true"),
    ('ldso_args = ["--preload", "x"]', '', "ldso_args need"),
])
def test_contradictory_scenarios_are_refused(tmp_path, run: str, expect: str, error: str) -> None:
    from ldsim.scenario import ScenarioError
    p = tmp_path / "s.toml"
    p.write_text(f'claim = "c"\n[run]\nprogram = "{{root}}/m"\n{run}\n[expect]\n{expect}\n')
    with pytest.raises(ScenarioError, match=re.escape(error)):
        load(str(p))
