"""Property test over generated search worlds (ldsim.testing.search_worlds) against the real loader.

Each world (libc-free objects built with gcc) is run a few ways — `ld.so [OPTIONS] PROG` traced, `ldd PROG`,
and PROG executed through a symlink elsewhere, traced or for real — with LD_PRELOAD, LD_LIBRARY_PATH (DSTs,
relative and empty elements, ';'), LD_DEBUG, LD_WARN and GLIBC_TUNABLES varied, from several working
directories.  stdout, stderr and the exit status must equal the real ones after masking addresses and PIDs.

LDSIM_SEARCH_EXAMPLES sets how many worlds are generated (default 60: well under a minute here).
"""

from __future__ import annotations

import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldsim.materialize import build_world
from ldsim.testing import SearchRun, SearchWorld, search_worlds
from tests import oracle

pytestmark = [pytest.mark.property, pytest.mark.conformance]

WORLDS = int(os.environ.get("LDSIM_SEARCH_EXAMPLES", "60"))
BATCH = 10
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


def outcomes(run: SearchRun, root: str) -> tuple[oracle.Outcome, oracle.Outcome]:
    """(real, ldsim) outcomes of one run in the world built at `root`."""
    sub = lambda s: s.replace("{root}", root)  # noqa: E731
    env = {k: sub(v) for k, v in run.env}
    cwd = f"{root}/{run.cwd}".rstrip("/")
    prog = sub(run.via)
    if run.mode == "ldd":
        return oracle.real_ldd([prog], env, cwd), oracle.sim_ldd([prog], env, cwd)
    if run.traced:
        env = {"LD_TRACE_LOADED_OBJECTS": "1", **env}
    if run.mode == "trace":
        argv = [*(sub(a) for a in run.args), prog]
        return oracle.real_ldso(argv, env, cwd), oracle.sim_ldso_argv(argv, env, cwd)
    return oracle.run([prog], env, cwd), oracle.sim_exec(prog, env, cwd)


def _build(world: SearchWorld, root: str) -> str:
    build_world(world.spec(root), root, jobs=1)  # per world: the stubs of one world's names only
    return root


@settings(max_examples=math.ceil(WORLDS / BATCH), **SETTINGS)
@given(st.lists(search_worlds(), min_size=BATCH, max_size=BATCH))
def test_search_worlds_match_the_real_loader(batch: list[SearchWorld]) -> None:
    """Every run of every generated world prints what the real loader prints and exits the same."""
    with tempfile.TemporaryDirectory(prefix="ldsim-search-") as base:
        with ThreadPoolExecutor(max_workers=2) as pool:
            roots = list(pool.map(_build, batch, [f"{base}/w{i}" for i in range(len(batch))]))
        for world, root in zip(batch, roots):
            for run in world.runs:
                real, sim = outcomes(run, root)
                assert real == sim, (f"{run} differs in world\n{world.describe()}\n"
                                     + oracle.diff_report(real, sim)).replace(root, "{root}")
