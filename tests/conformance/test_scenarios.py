"""Every shipped scenario's expectations hold for the real loader: each world is built with gcc
(libc-free objects) and run under LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs; the listing gives what was
loaded from where, the debug trace the search list that found it."""

from __future__ import annotations

import glob
import os

import pytest

from ldsim.scenario import build, check, load, run_real

pytestmark = pytest.mark.conformance
SCENARIOS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "*.toml")))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: os.path.basename(p)[:-5])
def test_scenario_holds_for_the_real_loader(path: str, tmp_path) -> None:
    sc = load(path)
    if sc.virtual_only:
        pytest.skip("virtual only: needs a cache or files the host cannot have")
    root = str(tmp_path / "w")
    build(sc, root)
    assert check(sc, run_real(sc, root), root) == []
