"""Every shipped scenario's expectations hold for the real loader: each world is built with gcc
(libc-free objects unless a scenario asks for libc) and run under LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs
(the listing gives what was loaded from where, the debug trace the search list that found it) or, for an
`execute` scenario, run for real under LD_DEBUG=libs,bindings (status, stderr, bindings, init order), as
the scenario's caller (`setpriv` to its uid: set-user-ID programs run in secure mode).  A `real_only`
scenario (symbols: only gcc can make them) is also checked against ldsim run in-process on the built files;
the others are checked on the virtual filesystem in tests/unit/test_scenarios.py."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.scenario import build, check, load, run_ldsim_on, run_real

pytestmark = pytest.mark.conformance
SCENARIOS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "*.toml")))
NAMES = [os.path.basename(p)[:-5] for p in SCENARIOS]
REAL_ONLY = [n for n, p in zip(NAMES, SCENARIOS) if load(p).real_only]


@pytest.fixture(scope="module")
def built():
    """Every buildable world, built in parallel under one 0755 directory (a setuid run's caller is nobody)."""
    base = tempfile.mkdtemp(prefix="ldsim-scenarios-")
    os.chmod(base, 0o755)
    scs = {n: load(p) for n, p in zip(NAMES, SCENARIOS)}
    todo = [n for n, sc in scs.items() if not sc.virtual_only]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: build(scs[n], os.path.join(base, n)), todo))
        yield {n: (scs[n], os.path.join(base, n)) for n in todo}
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_holds_for_the_real_loader(name: str, built) -> None:
    if name not in built:
        pytest.skip("virtual only: needs a cache or files the host cannot have")
    sc, root = built[name]
    assert check(sc, run_real(sc, root), root) == []


@pytest.mark.parametrize("name", REAL_ONLY)
def test_ldsim_agrees_on_the_built_world(name: str, built) -> None:
    sc, root = built[name]
    assert check(sc, run_ldsim_on(sc, root), root) == []


TRAILING_SLASH = '''
claim = "A name ending in '/' (given, or a symlink's target) must lead to a directory"
rule = "path resolution: a trailing slash after a file is ENOTDIR"

[run]
program = "{root}/bin/app"
env = { LD_PRELOAD = "{root}/lib/libp.so/ {root}/lnk", LD_LIBRARY_PATH = "{root}/dl" }

[[object]]
path = "bin/app"
kind = "program"
needed = ["libx.so"]

[[object]]
path = "lib/libx.so"
soname = "libx.so"

[[object]]
path = "lib/libp.so"
soname = "libp.so"

[[symlink]]
path = "lnk"
target = "lib/libp.so/"

[[symlink]]
path = "dl"
target = "lib/"

[expect]
loaded = [{ name = "libx.so", path = "{root}/dl/libx.so", step = "LD_LIBRARY_PATH" }]
absent = ["{root}/lib/libp.so/", "{root}/lnk", "{root}/lib/libp.so"]
'''


def test_a_trailing_slash_needs_a_directory_for_real_and_virtually(tmp_path) -> None:
    """The virtual filesystem resolves "libp.so/" (given, or as a symlink's target) the way the kernel
    does: ENOTDIR, the preload is not loaded; "dl -> lib/" is a directory.  Checked on the real loader and
    on the virtual world of the same scenario."""
    path = tmp_path / "trailing_slash.toml"
    path.write_text(TRAILING_SLASH)
    sc = load(str(path))
    root = str(tmp_path / "world")
    build(sc, root)
    assert check(sc, run_real(sc, root), root) == []
    from ldsim.scenario import run_virtual
    assert check(sc, run_virtual(sc)) == []
