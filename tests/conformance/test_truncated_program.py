"""A program cut short after its ELF header: the real loader's `open_verify` cannot read the program
headers ("cannot read file data", no strerror); ldsim says the same, and `ldsim run` reports the failed
execve in one line instead of a traceback."""

from __future__ import annotations

import pytest

from tests.oracle import ldsim_ldso, real_ldso, run
import sys

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("cut", [64, 100, 400])
def test_truncated_program(tmp_path, cut: int) -> None:
    with open("/usr/bin/true", "rb") as f:
        data = f.read()[:cut]
    prog = tmp_path / "trunc"
    prog.write_bytes(data)
    prog.chmod(0o755)
    for args, env in ((["--list", str(prog)], {}), ([str(prog)], {"LD_TRACE_LOADED_OBJECTS": "1"})):
        assert ldsim_ldso(args, env) == real_ldso(args, env)
    out = run([sys.executable, "-m", "ldsim", "run", "-i", str(prog)],
              env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])})
    assert out.status == 126 and out.stderr.count(b"\n") == 1 and b"Traceback" not in out.stderr
