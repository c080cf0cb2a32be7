"""`ldsim tree` and `ldsim why` against the real loader.

* tree: every world of test_search_rules, every ldd run: the objects of the tree (requested name => path,
  or not found) are exactly the lines of the real `ldd` (apart from the vDSO and ld.so itself).
* why: the step that found a library is where the real loader found it (LD_DEBUG=libs); the first shadowed
  alternative is what the real loader loads once the winner is removed; the classic trap (the executable's
  RUNPATH does not serve a library's own dependency) is named, and the fix ldsim proposes works for real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests import oracle
from tests.conformance.test_search_rules import CASES

pytestmark = pytest.mark.conformance
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ldsim(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    eargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return subprocess.run([sys.executable, "-m", "ldsim", args[0], "-i", *eargs, *args[1:]], capture_output=True,
                          text=True, cwd=cwd, env={"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": ROOT})


def real_ldd_objects(prog: str, env: dict[str, str], cwd: str) -> Counter | None:
    """The real ldd listing as (name, path|"not found") counts; None when the loader stopped with an error."""
    out = oracle.real_ldd([prog], env, cwd).stdout.decode(errors="replace")
    if "error while loading shared libraries" in out:
        return None
    objs: Counter = Counter()
    for line in out.splitlines():
        line = re.sub(r" \(0x[0-9a-fA-FADR]+\)$", "", line.strip())
        # the loader's own map (a second copy reached by another path is a listed object like any other)
        if (not line or line.startswith("linux-vdso") or line == oracle.RTLD or line == "statically linked"
                or line.startswith("ERROR: ld.so: ")):  # a preload that was ignored
            continue
        name, sep, path = line.partition(" => ")
        objs[(name, path if sep else name)] += 1
    return objs


def tree_objects(node: dict) -> Counter:
    objs: Counter = Counter()
    for c in node["children"]:
        if c["status"] == "loaded":
            objs[(c["name"], c["path"])] += 1
        elif c["status"] == "not found":
            objs[(c["name"], "not found")] += 1
        objs += tree_objects(c)
    return objs


@pytest.fixture(scope="module")
def rule_worlds(tmp_path_factory):
    base = tmp_path_factory.mktemp("why_tree")

    def one(name):
        root = str(base / name)
        spec, runs = CASES[name](root)
        build_world(spec, root, jobs=2)
        return name, (root, runs)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, CASES))


def test_tree_lists_what_ldd_lists(rule_worlds) -> None:
    """Every ldd run of the search-rule worlds: tree's objects == real ldd's objects."""
    jobs = []
    for name, (root, runs) in rule_worlds.items():
        for run in runs:
            if "ldd" not in run.modes:
                continue
            prog = run.prog.replace("{root}", root)
            env = {k: v.replace("{root}", root) for k, v in run.env.items()}
            jobs.append((name, prog, env, f"{root}/{run.cwd}"))

    def check(job):
        name, prog, env, cwd = job
        real = real_ldd_objects(prog, env, cwd)
        p = ldsim(["tree", "--ldd", "--json", prog], env, cwd)
        if p.returncode not in (0, 1) or not p.stdout.startswith("{"):
            return name, prog, f"ldsim failed: {p.stderr}"
        if real is None:  # a fatal error: tree must fail too and show the error
            return name, prog, None if p.returncode == 1 and '"error"' in p.stdout else "no error in tree"
        sim = tree_objects(json.loads(p.stdout))
        return name, prog, None if sim == real else f"real {sorted(real.items())}\nldsim {sorted(sim.items())}"

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(check, jobs))
    bad = [f"{n} {p}: {why}" for n, p, why in results if why]
    assert len(jobs) >= 15
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def why_world(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("why"))
    build_world(WorldSpec((
        ProgSpec("bin/trap", needed=("libwa.so",), runpath="$ORIGIN/../lib", libc=False),
        LibSpec("lib/libwa.so", soname="libwa.so", needed=("libwb.so",), libc=False),
        LibSpec("lib/libwb.so", soname="libwb.so", libc=False),
        ProgSpec("bin/shadow", needed=("libws.so",), rpath="$ORIGIN/../a:$ORIGIN/../b", libc=False),
        LibSpec("a/libws.so", soname="libws.so", libc=False),
        LibSpec("b/libws.so", soname="libws.so", libc=False),
    )), root)
    return root


def _real_found(prog: str, lib: str, cwd: str) -> str | None:
    """Where the real loader loads `lib` (the ldd listing)."""
    for (name, path), _ in (real_ldd_objects(prog, {}, cwd) or {}).items():
        if name == lib:
            return None if path == "not found" else path
    return None


def test_why_found_step_and_shadowed(why_world: str) -> None:
    """The found path and step are the real loader's; removing it makes the real loader take the first
    shadowed alternative ldsim lists."""
    prog = f"{why_world}/bin/shadow"
    p = ldsim(["why", "--ldd", "--json", prog, "libws.so"], cwd=why_world)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    found = rep["found"][0]
    assert found["path"] == _real_found(prog, "libws.so", why_world)
    assert found["how"].startswith(f"DT_RPATH of {prog}: $ORIGIN/../a -> ")
    alternative = next(t["path"] for t in found["shadowed"] if "would load" in t["outcome"])
    os.rename(found["path"], found["path"] + ".away")
    try:
        assert _real_found(prog, "libws.so", why_world) == alternative
    finally:
        os.rename(found["path"] + ".away", found["path"])


def test_why_names_the_runpath_trap_and_its_fix_works(why_world: str) -> None:
    """The executable's RUNPATH does not serve libwa's own DT_NEEDED: why says so, and the proposed
    patchelf command makes the real loader find libwb.so."""
    prog = f"{why_world}/bin/trap"
    assert _real_found(prog, "libwb.so", why_world) is None
    p = ldsim(["why", prog, "libwb.so"], cwd=why_world)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "does not apply to indirect dependencies" in p.stdout
    fixes = [line.split(": ", 1)[1] for line in p.stdout.splitlines() if line.strip().startswith("fix:")]
    assert fixes, p.stdout
    cmd = fixes[0].split(": ", 1)[1]
    assert cmd.startswith("patchelf ") and cmd.endswith("/libwa.so"), cmd
    subprocess.run(shlex.split(cmd), check=True)
    real = _real_found(prog, "libwb.so", why_world)
    assert real is not None and os.path.samefile(real, f"{why_world}/lib/libwb.so")
    p = ldsim(["why", "--ldd", "--json", prog, "libwb.so"], cwd=why_world)
    rep = json.loads(p.stdout)
    assert rep["found"][0]["path"] == real
    assert rep["found"][0]["how"].startswith("DT_RUNPATH of ")
