"""The ldd script's own variables and its `eval`, against the real ldd: what the caller's environment
does to them.  The script never sets `unused=` (only warn=, bind_now=, verbose=), and `-u` adds
LD_DEBUG="$LD_DEBUG,unused" to a string it then word-splits and `eval`s (elf/ldd.bash.in, try_trace)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.oracle import ldsim_ldd, real_ldd
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance


def _cc(root: str, out: str, src: str, *args: str) -> str:
    path = os.path.join(root, out)
    with open(path + ".c", "w") as f:
        f.write(src)
    subprocess.run(["gcc", "-o", path, path + ".c", *args], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> str:
    """prog needs libused.so (calls it) and libspare.so (linked --no-as-needed, never used)."""
    root = str(tmp_path_factory.mktemp("lddvars"))
    for name in ("used", "spare"):
        _cc(root, f"lib{name}.so", f"int {name}(void) {{ return 1; }}\n", "-shared", "-fPIC",
            f"-Wl,-soname,lib{name}.so")
    _cc(root, "prog", "int used(void);\nint main(void) { return used(); }\n", f"-L{root}",
        f"-Wl,-rpath,{root}", "-Wl,--no-as-needed", "-lused", "-lspare")
    return root


@pytest.mark.parametrize("env", [{"unused": "yes"}, {"unused": "yes", "LD_DEBUG": "files"},
                                 {"unused": "yes "}, {"unused": "no"}],
                         ids=["yes", "yes-with-debug", "yes-space", "no"])
def test_unused_from_the_environment(world: str, env: dict[str, str]) -> None:
    for args in ([f"{world}/prog"], ["-v", f"{world}/prog", f"{world}/libused.so"]):
        assert_same(real_ldd(args, env, world), ldsim_ldd(args, env, world))
