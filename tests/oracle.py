"""Run the real loader tools and ldsim side by side, and normalise what may legitimately differ.

Only load addresses "(0x...)" / "0x..." and the LD_DEBUG PID column may differ between a real run and
ldsim; everything else must be byte-identical.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

RTLD = "/lib64/ld-linux-x86-64.so.2"
_HEX = re.compile(rb"0x[0-9a-f]+")
_PID = re.compile(rb"^ {0,9}\d+:\t", re.M)


@dataclass(frozen=True)
class Outcome:
    stdout: bytes
    stderr: bytes
    status: int


def mask(data: bytes) -> bytes:
    """Mask addresses and the PID column of LD_DEBUG lines."""
    return _HEX.sub(b"0xADDR", _PID.sub(b"PID:\t", data))


def run(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
        timeout: float = 120) -> Outcome:
    p = subprocess.run(argv, env=env if env is not None else {}, cwd=cwd, capture_output=True,
                       timeout=timeout)
    return Outcome(mask(p.stdout), mask(p.stderr), p.returncode)


def real_ldd(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """glibc's ldd with exactly `env` (PATH added so the bash script finds its tools)."""
    full = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}
    return run(["ldd", *args], full, cwd)


def ldsim_ldd(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """`ldsim ldd -i -e ...`: the same simulated environment as real_ldd's, plus PATH as ldd has it."""
    full = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}
    eargs = [a for k, v in full.items() for a in ("-e", f"{k}={v}")]
    return run([sys.executable, "-m", "ldsim", "ldd", "-i", *eargs, *args], _own_env(), cwd)


def real_ldso(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """The real loader invoked explicitly: `env -i ENV /lib64/ld-linux-x86-64.so.2 ARGS`."""
    return run([RTLD, *args], dict(env or {}), cwd)


def ldsim_ldso(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    eargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return run([sys.executable, "-m", "ldsim", "ld.so", "-i", *eargs, *args], _own_env(), cwd)


def _own_env() -> dict[str, str]:
    """ldsim's own process environment: enough to import ldsim from this checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": root}
