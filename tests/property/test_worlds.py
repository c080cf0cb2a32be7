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

import difflib
import math
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import detect_host_cpu
from ldsim.lddscript import run_ldd
from ldsim.ldso import run_ldso
from ldsim.linkmap import FileCache
from ldsim.scenario import VROOT, fmt, virtual_world
from ldsim.testing import build_batch, with_unrelated_dir, worlds
from ldsim.world import HostWorld
from tests import oracle

pytestmark = [pytest.mark.property, pytest.mark.conformance]

WORLDS = int(os.environ.get("LDSIM_PROPERTY_EXAMPLES", "200"))
BATCH = 25
CPU = detect_host_cpu()
TRACE = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
LDD_PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


def _inv(env: dict[str, str], cwd: str) -> Invocation:
    return Invocation(env=tuple(env.items()), cwd=cwd, pid=4242, cpu=CPU, profile=DEBIAN_X86_64)


def _outcome(run) -> oracle.Outcome:
    return oracle.Outcome(oracle.mask(run.text(1).encode("utf-8", "surrogateescape")),
                          oracle.mask(run.text(2).encode("utf-8", "surrogateescape")), run.status)


def sim_ldso(world, prog: str, env: dict[str, str], cwd: str) -> oracle.Outcome:
    return _outcome(run_ldso(world, _inv(env, cwd), [prog], FileCache(), DEBIAN_X86_64.rtld))


def sim_ldd(prog: str, env: dict[str, str], cwd: str) -> oracle.Outcome:
    return _outcome(run_ldd(HostWorld(cwd), _inv({**LDD_PATH, **env}, cwd), [prog], FileCache()))


def _diff(what: str, sc, real: oracle.Outcome, sim: oracle.Outcome) -> str:
    parts = [f"{what} differs for {sc.objects!r} env={sc.env!r}"]
    for name in ("stdout", "stderr"):
        a = getattr(real, name).decode(errors="replace").splitlines()
        b = getattr(sim, name).decode(errors="replace").splitlines()
        parts += list(difflib.unified_diff(a, b, f"real {name}", f"ldsim {name}", lineterm=""))
    parts.append(f"status real {real.status} ldsim {sim.status}")
    return "\n".join(parts)


def virtual_listing(sc) -> bytes:
    w = virtual_world(sc)
    env = {**TRACE, **{k: fmt(v, VROOT) for k, v in sc.env.items()}}
    env.pop("LD_DEBUG")
    return sim_ldso(w, f"{VROOT}/bin/prog", env, w.cwd).stdout


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
            sim = sim_ldso(HostWorld(root), prog, {**TRACE, **env}, root)
            assert real == sim, _diff("ld.so trace", sc, real, sim)
            real, sim = oracle.real_ldd([prog], env, root), sim_ldd(prog, env, root)
            assert real == sim, _diff("ldd", sc, real, sim)
            listing = oracle.real_ldso([prog], {"LD_TRACE_LOADED_OBJECTS": "1", **env}, root).stdout
            assert virtual_listing(sc) == listing.replace(root.encode(), VROOT.encode()), \
                f"virtual and materialised runs disagree for {sc.objects!r} env={sc.env!r}"


@settings(max_examples=WORLDS, **SETTINGS)
@given(worlds(), st.sampled_from(["end", "start"]))
def test_an_unrelated_directory_in_ld_library_path_changes_nothing(sc, where) -> None:
    """A search stops at the first hit; an empty directory anywhere in LD_LIBRARY_PATH holds none."""
    assert virtual_listing(with_unrelated_dir(sc, where)) == virtual_listing(sc)
