"""Run the real loader tools and ldsim side by side, and normalise what may legitimately differ.

Only load addresses "(0x...)" / "0x..." and the LD_DEBUG PID column may differ between a real run and
ldsim; everything else must be byte-identical.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from dataclasses import dataclass

RTLD = "/lib64/ld-linux-x86-64.so.2"
# Not inside a word or path: a temporary directory may be named "...p0x1f".
_HEX = re.compile(rb"(?<![\w./-])0x[0-9a-f]+")
_PID = re.compile(rb"^ {0,9}\d+:\t", re.M)
LDD_PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # what ldd's bash script needs to find its tools


@dataclass(frozen=True)
class Outcome:
    stdout: bytes
    stderr: bytes
    status: int


def mask(data: bytes) -> bytes:
    """Mask addresses and the PID column of LD_DEBUG lines."""
    return _HEX.sub(b"0xADDR", _PID.sub(b"PID:\t", data))


def diff_report(real: Outcome, sim: Outcome) -> str:
    """Unified diffs of stdout and stderr plus both exit statuses: the assertion message."""
    parts = []
    for name in ("stdout", "stderr"):
        a = getattr(real, name).decode(errors="replace").splitlines()
        b = getattr(sim, name).decode(errors="replace").splitlines()
        if a != b:
            parts.append("\n".join(difflib.unified_diff(a, b, f"real {name}", f"ldsim {name}", lineterm="")))
    if real.status != sim.status:
        parts.append(f"exit status: real {real.status}, ldsim {sim.status}")
    return "\n".join(parts)


def run(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
        timeout: float = 120) -> Outcome:
    p = subprocess.run(argv, env=env if env is not None else {}, cwd=cwd, capture_output=True,
                       timeout=timeout)
    return Outcome(mask(p.stdout), mask(p.stderr), p.returncode)


def real_ldd(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """glibc's ldd with exactly `env` (PATH added so the bash script finds its tools)."""
    return run(["ldd", *args], {**LDD_PATH, **(env or {})}, cwd)


def ldsim_ldd(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """`ldsim ldd -i -e ...`: the same simulated environment as real_ldd's, plus PATH as ldd has it."""
    full = {**LDD_PATH, **(env or {})}
    eargs = [a for k, v in full.items() for a in ("-e", f"{k}={v}")]
    return run([sys.executable, "-m", "ldsim", "ldd", "-i", *eargs, *args], _own_env(), cwd)


def real_ldso(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """The real loader invoked explicitly: `env -i ENV /lib64/ld-linux-x86-64.so.2 ARGS`."""
    return run([RTLD, *args], dict(env or {}), cwd)


def ldsim_ldso(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """`ldsim ld.so -i -e ... -- ARGS`: the '--' ends ldsim's own options, so ARGS reach ld.so as given
    (its own '--' included)."""
    eargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return run([sys.executable, "-m", "ldsim", "ld.so", "-i", *eargs, "--", *args], _own_env(), cwd)


def ldsim_run(prog: str, env: dict[str, str] | None = None, cwd: str | None = None) -> Outcome:
    """`ldsim run -i -e ... PROG`: the simulated exec of PROG, to compare with `run([PROG], env, cwd)`."""
    eargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return run([sys.executable, "-m", "ldsim", "run", "-i", *eargs, prog], _own_env(), cwd)


def _own_env() -> dict[str, str]:
    """ldsim's own process environment: enough to import ldsim from this checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": root}



def outcome_of(run) -> Outcome:
    """An in-process ldsim run (`ldsim.ldso.Run`) as an Outcome, masked like a real one."""
    return Outcome(mask(run.text(1).encode("utf-8", "surrogateescape")),
                   mask(run.text(2).encode("utf-8", "surrogateescape")), run.status)


_HOST_CPU = []  # read once per test session


def _invocation(env: dict[str, str], cwd: str):
    from ldsim.config import Invocation
    from ldsim.glibc import DEBIAN_X86_64
    from ldsim.hwcaps import detect_host_cpu
    if not _HOST_CPU:
        _HOST_CPU.append(detect_host_cpu())
    return Invocation(env=tuple(env.items()), cwd=cwd, pid=4242, cpu=_HOST_CPU[0], profile=DEBIAN_X86_64)


def sim_ldso(prog: str, env: dict[str, str], cwd: str, world=None) -> Outcome:
    """`ld.so PROG` simulated in-process with exactly `env` (on the host root unless `world` is given)."""
    from ldsim.glibc import DEBIAN_X86_64
    from ldsim.ldso import run_ldso
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    world = world if world is not None else HostWorld(cwd)
    return outcome_of(run_ldso(world, _invocation(env, cwd), [prog], FileCache(), DEBIAN_X86_64.rtld))


def sim_ldso_argv(argv: list[str], env: dict[str, str], cwd: str) -> Outcome:
    """`ld.so ARGV...` (options, then the program) simulated in-process with exactly `env`."""
    from ldsim.glibc import DEBIAN_X86_64
    from ldsim.ldso import run_ldso
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    return outcome_of(run_ldso(HostWorld(cwd), _invocation(env, cwd), argv, FileCache(), DEBIAN_X86_64.rtld))


def sim_exec(prog: str, env: dict[str, str], cwd: str) -> Outcome:
    """`exec PROG` simulated in-process (`ldsim run`), to compare with `run([PROG], env, cwd)`."""
    from ldsim.ldso import run_exec
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    return outcome_of(run_exec(HostWorld(cwd), _invocation(env, cwd), [prog], FileCache()))


def sim_ldd(args: list[str], env: dict[str, str], cwd: str) -> Outcome:
    """`ldd ARGS` simulated in-process with the environment real_ldd gives the script."""
    from ldsim.lddscript import run_ldd
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    return outcome_of(run_ldd(HostWorld(cwd), _invocation({**LDD_PATH, **env}, cwd), args, FileCache()))
