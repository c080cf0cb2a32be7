"""Property tests over generated loader worlds (ldsim.testing.worlds).

* Generated worlds are built with gcc (libc-free, many worlds per compiler batch) and each is run by the
  real loader and by ldsim: `ld.so PROG` under LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs, and `ldd PROG`.
  stdout, stderr and the exit status must be identical after masking addresses and PIDs.
* The same world on a VirtualWorld (ELF files from ldsim.elfwrite) lists the same objects from the same
  places as its materialised copy.
* "Adding an unrelated directory to LD_LIBRARY_PATH changes nothing" (glibc-loader.md §3.1: a search stops
  at the first hit; an empty directory holds none) — the listing is unchanged, wherever it is added.

LDSIM_PROPERTY_EXAMPLES sets how many worlds are generated (default 200).
"""

from __future__ import annotations

import math
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldsim.scenario import VROOT, fmt, virtual_world
from ldsim.testing import build_batch, with_unrelated_dir, worlds
from tests import oracle

pytestmark = [pytest.mark.property, pytest.mark.conformance]

WORLDS = int(os.environ.get("LDSIM_PROPERTY_EXAMPLES", "200"))
BATCH = 25
TRACE = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


def _diff(what: str, sc, real: oracle.Outcome, sim: oracle.Outcome) -> str:
    return f"{what} differs for {sc.objects!r} env={sc.env!r}" + "\n" + oracle.diff_report(real, sim)


def virtual_listing(sc) -> bytes:
    w = virtual_world(sc)
    env = {**TRACE, **{k: fmt(v, VROOT) for k, v in sc.env.items()}}
    env.pop("LD_DEBUG")
    return oracle.sim_ldso(f"{VROOT}/bin/prog", env, w.cwd, w).stdout


@settings(max_examples=math.ceil(WORLDS / BATCH), **SETTINGS)
@given(st.lists(worlds(), min_size=BATCH, max_size=BATCH))
def test_generated_worlds_match_the_real_loader(batch) -> None:
    """ld.so trace (listing + LD_DEBUG=libs) and ldd output of each generated world equal the real ones,
    and the virtual copy of the world lists the same objects."""
    with tempfile.TemporaryDirectory(prefix="ldsim-prop-") as base:
        roots = build_batch(batch, base)
        for sc, root in zip(batch, roots):
            prog = f"{root}/bin/prog"
            env = {k: fmt(v, root) for k, v in sc.env.items()}
            real = oracle.real_ldso([prog], {**TRACE, **env}, root)
            sim = oracle.sim_ldso(prog, {**TRACE, **env}, root)
            assert real == sim, _diff("ld.so trace", sc, real, sim)
            real, sim = oracle.real_ldd([prog], env, root), oracle.sim_ldd([prog], env, root)
            assert real == sim, _diff("ldd", sc, real, sim)
            listing = oracle.real_ldso([prog], {"LD_TRACE_LOADED_OBJECTS": "1", **env}, root).stdout
            assert virtual_listing(sc) == listing.replace(root.encode(), VROOT.encode()), \
                f"virtual and materialised runs disagree for {sc.objects!r} env={sc.env!r}"


@settings(max_examples=WORLDS, **SETTINGS)
@given(worlds(), st.sampled_from(["end", "start"]))
def test_an_unrelated_directory_in_ld_library_path_changes_nothing(sc, where) -> None:
    """A search stops at the first hit; an empty directory anywhere in LD_LIBRARY_PATH holds none."""
    assert virtual_listing(with_unrelated_dir(sc, where)) == virtual_listing(sc)
