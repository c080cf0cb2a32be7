"""`ldsim run --explain` against the real loader: a gcc-built world (a preload that interposes, a library
found through the program's RUNPATH, one through LD_LIBRARY_PATH, libc through the cache) is executed for real under
LD_DEBUG=libs,files,bindings; from that trace the test derives, for each object the loader mapped, who
needed it first ("file=N [0];  needed by R [0]"), the search step of the `trying file=` that succeeded,
and the number of `binding file ... to OBJ` lines — and compares them with the table ldsim prints."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests import oracle

pytestmark = pytest.mark.conformance


def world() -> WorldSpec:
    return WorldSpec((
        ProgSpec("bin/app", needed=("liba.so", "libb.so"), runpath="{root}/lib", uses=("foo", "bar"), libc=False),
        # liba brings libc (from the cache): its constructors run, __libc_start_main never does
        LibSpec("lib/liba.so", soname="liba.so", defines=("foo",), uses=("baz",)),
        LibSpec("llp/libb.so", soname="libb.so", defines=("bar", "baz"), libc=False),
        LibSpec("pre/libpre.so", soname="libpre.so", defines=("foo",), libc=False),
    ))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    r = str(tmp_path_factory.mktemp("explain"))
    spec = world()
    objs = tuple(type(o)(**{**o.__dict__, "runpath": o.runpath and o.runpath.replace("{root}", r)})
                 for o in spec.objects)
    build_world(WorldSpec(objs), r)
    return r


_LABEL = re.compile(r"\t\t\((RPATH|RUNPATH) from file (.*)\)$|\t\t\((LD_LIBRARY_PATH|system search path)\)$")


def from_trace(stderr: str) -> tuple[dict[str, tuple[str, str]], dict[str, int]]:
    """{path: (needed first by, step)} of every object the loader mapped, and binding counts by definer."""
    requester: dict[str, str] = {}
    tried: dict[str, tuple[str, str]] = {}  # name -> (last path tried, its list's label)
    label, current, out, counts = "?", None, {}, {}
    for line in stderr.splitlines():
        body = line.split(":\t", 1)[1] if ":\t" in line else ""
        if m := re.match(r"file=(.*) \[0\];  needed by (.*) \[0\]$", body):
            requester.setdefault(m.group(1), m.group(2))
        elif m := re.match(r"find library=(.*) \[0\]; searching$", body):
            current = m.group(1)
        elif body.startswith(" search path="):
            m = _LABEL.search(body)
            label = (f"{m.group(1)} of {m.group(2)}" if m.group(1) else m.group(3)) if m else "?"
        elif body.startswith(" search cache="):
            label = "cache"
        elif body.startswith("  trying file="):
            tried[current] = (body[len("  trying file="):], label)
        elif m := re.match(r"file=(.*) \[0\];  generating link map$", body):
            name = m.group(1)
            path, step = (name, "direct") if "/" in name else tried[name]
            out[path] = (requester.get(name, "?"), step)
        elif m := re.match(r"binding file .* \[0\] to (.*) \[0\]: ", body):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return out, counts


def table(stdout: str) -> dict[str, tuple[str, str, int]]:
    rows = {}
    for line in stdout.splitlines()[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = (cells[1], cells[2], int(cells[3]))
    return rows


@pytest.mark.parametrize("now", [True, False], ids=["bind-now", "lazy"])
def test_explain_table_matches_the_real_trace(root: str, now: bool) -> None:
    prog = f"{root}/bin/app"
    env = {"LD_LIBRARY_PATH": f"{root}/llp", "LD_PRELOAD": f"{root}/pre/libpre.so", **({"LD_BIND_NOW": "1"} if now else {})}
    real = subprocess.run([prog], env={**env, "LD_DEBUG": "libs,files,bindings"}, capture_output=True, text=True, cwd=root)
    assert real.returncode == 0, real.stderr
    mapped, counts = from_trace(real.stderr)
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = subprocess.run([sys.executable, "-m", "ldsim", "run", "-i", *eargs, "--explain", prog],
                         env=oracle._own_env(), capture_output=True, text=True, cwd=root)
    assert sim.returncode == 0, sim.stderr
    rows = table(sim.stdout)
    libs = {p: r for p, r in rows.items() if r[1] not in ("program", "loader")}
    assert sorted(libs) == sorted(mapped)
    for path, (needer, step) in mapped.items():
        want_needer = "LD_PRELOAD" if path in env["LD_PRELOAD"].split() else needer  # the trace says: the program
        assert libs[path][:2] == (want_needer, step), path
    assert {p: r[2] for p, r in rows.items()} == {p: counts.get(p, 0) for p in rows}
    assert set(counts) - set(rows) <= {"linux-vdso.so.1"}  # every definer has its row
