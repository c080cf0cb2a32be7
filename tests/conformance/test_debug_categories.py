"""Differential tests of the LD_DEBUG categories other than libs/bindings (files, symbols, scopes, reloc,
versions, statistics, unused, all): small worlds built with gcc at test time, each run by the real loader,
as `ld.so PROG` (traced or not, lazily or with LD_BIND_NOW) or executed, and by ldsim in-process; stdout,
stderr and status must be identical once addresses, the PID column and statistics' cycle counts are masked.
The programs never call into their libraries: whatever a real run prints comes from the loader's startup
and exit, which ldsim simulates.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance

CTOR = ("__attribute__((constructor)) static void ctor(void) {} "
        "__attribute__((destructor)) static void dtor(void) {}")
MAIN = "int main(void) { return 0; }"

# name -> bash script run in the world's directory (lib/ exists; $CT is CTOR, $MAIN is MAIN)
WORLDS: dict[str, str] = {
    # DT_FLAGS_1 bits outside DT_1_SUPPORTED_MASK: elf_get_dynamic_info warns under LD_DEBUG=files, after
    # "generating link map" and before the "dynamic:" lines (elf/get-dynamic-info.h, elf/dl-load.c)
    "flags1": """
for z in interpose nodump global loadfltr now; do
  echo "int f_$z(void) { return 0; } $CT" > $z.c
  gcc -shared -fPIC -o lib/lib$z.so $z.c -Wl,-soname,lib$z.so -Wl,-z,$z
done
echo "$MAIN" > prog.c
gcc -o prog prog.c -Llib -Wl,--no-as-needed -linterpose -lnodump -lglobal -lloadfltr -lnow '-Wl,-rpath,$ORIGIN/lib'
""",
    # a DT_NEEDED naming a PIE or an ET_EXEC file: "generating link map" is printed, then the mapping
    # fails before the "dynamic:" lines (_dl_map_object_from_fd)
    "exec_as_lib": """
echo "" > empty.c
gcc -shared -fPIC -o lib/libpie.so empty.c -Wl,-soname,libpie.so
gcc -shared -fPIC -o lib/libexe.so empty.c -Wl,-soname,libexe.so
echo "$MAIN" > prog.c
gcc -o needs-pie prog.c -Llib -Wl,--no-as-needed -lpie '-Wl,-rpath,$ORIGIN/lib'
gcc -o needs-exe prog.c -Llib -Wl,--no-as-needed -lexe '-Wl,-rpath,$ORIGIN/lib'
gcc -o lib/libpie.so prog.c
gcc -no-pie -o lib/libexe.so prog.c
""",
}

TRACE = {"LD_TRACE_LOADED_OBJECTS": "1"}
WARN = {**TRACE, "LD_WARN": "yes"}
NOW = {"LD_BIND_NOW": "1"}
# (world, program, how, env): how = "ld.so" (`ld.so PROG`) or "run" (PROG executed by the kernel)
CASES: list[tuple[str, str, str, dict[str, str]]] = [
    *[("flags1", "prog", how, {**base, "LD_DEBUG": cats})
      for how, base in (("ld.so", {}), ("ld.so", WARN), ("run", NOW))
      for cats in ("files", "all,statistics")],
    *[("exec_as_lib", prog, how, {"LD_DEBUG": "files"})
      for prog in ("needs-pie", "needs-exe") for how in ("ld.so", "run")],
    ("exec_as_lib", "needs-pie", "ld.so", {**TRACE, "LD_DEBUG": "all"}),
]

_CYCLES = re.compile(rb"\d+ cycles( \(\d*\.\d%\))?")


def _uncycled(o: oracle.Outcome) -> oracle.Outcome:
    """Statistics timings are not reproducible; the counts are compared."""
    return oracle.Outcome(o.stdout, _CYCLES.sub(b"N cycles", o.stderr), o.status)


def _build(root: str, script: str) -> None:
    os.makedirs(f"{root}/lib")
    p = subprocess.run(["bash", "-ec", script], cwd=root, capture_output=True, text=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CT": CTOR, "MAIN": MAIN})
    if p.returncode:
        raise RuntimeError(f"building failed:\n{script}\n{p.stderr}")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("debug")
    roots = {n: str(base / n) for n in WORLDS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda n: _build(roots[n], WORLDS[n]), WORLDS))
    return roots


def outcomes(root: str, prog: str, how: str, env: dict[str, str]) -> tuple[oracle.Outcome, oracle.Outcome]:
    """(real, ldsim) for `./PROG` in the world's directory."""
    from ldsim.ldso import run_exec
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    prog = f"./{prog}"
    if how == "ld.so":
        return oracle.real_ldso([prog], env, root), oracle.sim_ldso(prog, env, root)
    sim = run_exec(HostWorld(root), oracle._invocation(env, root), [prog], FileCache())
    return oracle.run([prog], env, root), oracle.outcome_of(sim)


def _id(case) -> str:
    world, prog, how, env = case
    return f"{world}-{prog}-{how}-" + ",".join(f"{k}={v}" for k, v in env.items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_debug_category(worlds, case) -> None:
    world, prog, how, env = case
    real, sim = outcomes(worlds[world], prog, how, env)
    assert_same(_uncycled(real), _uncycled(sim))
