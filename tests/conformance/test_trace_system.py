"""Acceptance of symbol binding in trace mode: for every dynamic program of /usr/bin and /usr/sbin, the
real `ld.so PROG` with LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes [LD_BIND_NOW=yes] and LD_DEBUG with every
category but statistics/unused, against `ldsim ld.so` run in-process: stdout, stderr (PID column and
addresses masked) and exit status identical.  Also `ldd -r`, `ldd -d` and `ldd -u` over the same programs.
"""

from __future__ import annotations

import glob
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import detect_host_cpu
from ldsim.lddscript import run_ldd
from ldsim.ldso import run_ldso
from ldsim.linkmap import FileCache
from ldsim.world import HostWorld
from tests.oracle import RTLD, mask

pytestmark = pytest.mark.conformance
HOST = HostWorld()  # one world for every file: what ldsim memoises per world is shared
DEBUG = "libs,reloc,files,symbols,bindings,versions,scopes"
NOW = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes", "LD_DEBUG": DEBUG}
LAZY = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_DEBUG": DEBUG}
PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def dynamic_programs() -> list[str]:
    """Every ELF file of /usr/bin and /usr/sbin with a PT_INTERP (deduplicated by real path)."""
    seen: dict[str, str] = {}
    for path in sorted(glob.glob("/usr/bin/*") + glob.glob("/usr/sbin/*")):
        try:
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            continue
        if head[:4] == b"\x7fELF" and b"/lib64/ld-linux-x86-64.so.2\0" in head:
            seen.setdefault(os.path.realpath(path), path)
    return sorted(seen.values())


def _inv(env: dict[str, str]) -> Invocation:
    return Invocation(env=tuple(env.items()), cwd=os.getcwd(), pid=os.getpid(), cpu=detect_host_cpu(),
                      profile=DEBIAN_X86_64)


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def real_ldso(prog: str, env: dict[str, str]) -> tuple[bytes, bytes, int]:
    p = subprocess.run([RTLD, prog], env=env, capture_output=True, timeout=120)
    return mask(p.stdout), mask(p.stderr), p.returncode


def sim_ldso(prog: str, env: dict[str, str], files: FileCache) -> tuple[bytes, bytes, int]:
    run = run_ldso(HOST, _inv(env), [prog], files, RTLD)
    return mask(_enc(run.text(1))), mask(_enc(run.text(2))), run.status


def real_ldd(args: list[str]) -> tuple[bytes, bytes, int]:
    p = subprocess.run(["ldd", *args], env=PATH, capture_output=True, timeout=120)
    return mask(p.stdout), mask(p.stderr), p.returncode


def sim_ldd(args: list[str], files: FileCache) -> tuple[bytes, bytes, int]:
    run = run_ldd(HOST, _inv(PATH), args, files)
    return mask(_enc(run.text(1))), mask(_enc(run.text(2))), run.status


def compare(progs: list[str], real, sim, label: str) -> list[str]:
    """Real and simulated outcome of each program side by side (threads: the real runs overlap)."""
    files = FileCache()

    def one(prog: str) -> bool:
        return sim(prog, files) == real(prog)

    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(one, progs))
    bad = [p for p, ok in zip(progs, same) if not ok]
    print(f"{label}: {len(progs) - len(bad)}/{len(progs)} identical; differ: {' '.join(bad[:20])}")
    return bad


def sample(progs: list[str]) -> list[str]:
    """The whole corpus with LDSIM_FULL_CORPUS=1; else every 24th program (the test stays near a minute:
    programs such as gdb print tens of megabytes of bindings)."""
    return progs if os.environ.get("LDSIM_FULL_CORPUS") else progs[::24]


@pytest.fixture(scope="module")
def programs() -> list[str]:
    progs = dynamic_programs()
    assert len(progs) > 100
    return sample(progs)


def test_bind_now_trace(programs) -> None:
    bad = compare(programs, lambda p: real_ldso(p, NOW), lambda p, f: sim_ldso(p, NOW, f), "BIND_NOW")
    assert not bad


def test_lazy_trace(programs) -> None:
    bad = compare(programs, lambda p: real_ldso(p, LAZY), lambda p, f: sim_ldso(p, LAZY, f), "lazy")
    assert not bad


@pytest.mark.parametrize("opt", ["-r", "-d", "-u"])
def test_ldd_relocation_options(programs, opt) -> None:
    bad = compare(programs, lambda p: real_ldd([opt, p]), lambda p, f: sim_ldd([opt, p], f), f"ldd {opt}")
    assert not bad
