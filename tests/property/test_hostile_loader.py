"""The whole loader on mutated objects: ldsim never raises (a traceback) or hangs, whatever the bytes.

test_fuzz.py checks the readers alone; here a program and the library it needs (built with gcc) are
mutated — fields of the ELF header, program headers, dynamic section, version records and string
table overwritten with edge values, or the file cut — and `ld.so PROG` (traced, LD_BIND_NOW), `ldd
PROG` and the exec of PROG under LD_DEBUG=all are simulated in-process.  Each must end with an outcome
(output and an exit status, a simulated signal included) within PER_RUN_SECONDS; the one exception
allowed is NotImplementedError, the CLI's documented one line and exit 3.  Whether the outcome is the
real loader's is the conformance suite's business (test_hostile_segments.py, test_odd_worlds.py).

Knob: LDSIM_HOSTILE_RUNS (default 60 mutated worlds; e.g. 3000 for a long run).
"""

from __future__ import annotations

import os
import random
import shutil
import time

import pytest

from tests import oracle
from tests.conformance.conftest import build_foo_world
from tests.property.test_fuzz import _hot_offsets, mutate, random_mutations

pytestmark = pytest.mark.property

RUNS = int(os.environ.get("LDSIM_HOSTILE_RUNS", "60"))
PER_RUN_SECONDS = 2.0
TARGETS = ("prog", "libfoo.so.1")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("hostile_loader")
    return build_foo_world(d)


def _simulations(world: str):
    prog = f"{world}/prog"
    llp = {"LD_LIBRARY_PATH": world}
    traced = {**llp, "LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes"}
    return (("ld.so", lambda: oracle.sim_ldso(prog, traced, world)),
            ("ldd", lambda: oracle.sim_ldd([prog], llp, world)),
            ("exec", lambda: oracle.sim_exec(prog, {**llp, "LD_DEBUG": "all"}, world)))


def test_mutated_worlds_end_with_an_outcome(built, tmp_path) -> None:
    originals = [open(f"{built}/{t}", "rb").read() for t in TARGETS]
    hot = [_hot_offsets(d) for d in originals]
    world = str(tmp_path / "w")
    os.mkdir(world)
    for seed in range(RUNS):
        i, muts, cut = random_mutations(random.Random(seed), nseeds=len(TARGETS))
        for t in TARGETS:
            shutil.copy(f"{built}/{t}", f"{world}/{t}")
        with open(f"{world}/{TARGETS[i]}", "wb") as f:
            f.write(mutate(originals[i], hot[i], muts, cut))
        for mode, simulate in _simulations(world):
            t0 = time.perf_counter()
            try:
                out = simulate()
            except NotImplementedError:
                continue
            except Exception as e:  # the assertion names the input that made ldsim fail
                raise AssertionError(f"seed {seed} ({TARGETS[i]} mutated), {mode}: {type(e).__name__}: {e}") from e
            took = time.perf_counter() - t0
            assert took < PER_RUN_SECONDS, f"seed {seed}, {mode}: {took:.1f}s"
            assert isinstance(out.status, int)
