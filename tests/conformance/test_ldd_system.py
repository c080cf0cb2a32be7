"""Acceptance of the ldd replacement: the real ldd and `ldsim ldd` over every ELF file of this machine's
/usr/bin, /usr/sbin and every *.so* in /usr/lib/x86_64-linux-gnu (deduplicated by real path): stdout,
stderr and exit status identical once load addresses are masked.  Also with -v, and with an
LD_LIBRARY_PATH that shadows a system library.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import detect_host_cpu
from ldsim.lddscript import run_ldd
from ldsim.linkmap import FileCache
from ldsim.world import HostWorld
from tests.oracle import mask

pytestmark = pytest.mark.conformance
HOST = HostWorld()  # one world for every file: what ldsim memoises per world is shared
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def system_elf_files() -> list[str]:
    seen: dict[str, str] = {}
    cands = sorted(glob.glob("/usr/bin/*") + glob.glob("/usr/sbin/*")
                   + glob.glob("/usr/lib/x86_64-linux-gnu/*.so*"))
    for path in cands:
        try:
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        seen.setdefault(os.path.realpath(path), path)
    return sorted(seen.values())


def real(args: list[str], env: dict[str, str]) -> tuple[bytes, bytes, int]:
    p = subprocess.run(["ldd", *args], env=env, capture_output=True, timeout=60)
    return mask(p.stdout), mask(p.stderr), p.returncode


def simulated(args: list[str], env: dict[str, str], files: FileCache) -> tuple[bytes, bytes, int]:
    inv = Invocation(env=tuple(env.items()), cwd=os.getcwd(), pid=os.getpid(), cpu=detect_host_cpu(),
                     profile=DEBIAN_X86_64)
    run = run_ldd(HOST, inv, args, files)
    enc = lambda s: s.encode("utf-8", "surrogateescape")  # noqa: E731
    return mask(enc(run.text(1))), mask(enc(run.text(2))), run.status


def compare_all(opts: list[str], env: dict[str, str]) -> list[str]:
    files = system_elf_files()
    assert len(files) > 100
    cache = FileCache()
    with ThreadPoolExecutor(max_workers=4) as pool:
        reals = list(pool.map(lambda f: real([*opts, f], env), files))
    bad = []
    for f, r in zip(files, reals):
        s = simulated([*opts, f], env, cache)
        if s != r:
            bad.append(f"{f}\n real: {r!r}\n ldsim: {s!r}")
    print(f"{len(files) - len(bad)}/{len(files)} identical ({' '.join(opts) or 'no options'})")
    return bad


def test_every_system_file_plain() -> None:
    bad = compare_all([], ENV)
    assert not bad, "\n".join(bad[:5]) + f"\n... {len(bad)} files differ"


def test_every_system_file_verbose() -> None:
    bad = compare_all(["-v"], ENV)
    assert not bad, "\n".join(bad[:5]) + f"\n... {len(bad)} files differ"


def test_every_system_file_with_shadowing_library_path(tmp_path) -> None:
    """A copy of libz and of libcrypto in LD_LIBRARY_PATH shadows the system's for everything."""
    for lib in ("libz.so.1", "libcrypto.so.3"):
        src = f"/lib/x86_64-linux-gnu/{lib}"
        if os.path.exists(src):
            shutil.copy(src, tmp_path / lib)
    env = {**ENV, "LD_LIBRARY_PATH": f"{tmp_path}:/nonexistent"}
    bad = compare_all([], env)
    assert not bad, "\n".join(bad[:5]) + f"\n... {len(bad)} files differ"


@pytest.mark.parametrize("args", [["--", "-v"], ["--", "/usr/bin/true"], ["-v", "--", "/usr/bin/true"],
                                  ["-r", "--", "-x"], ["--version"], ["-x"], []], ids=repr)
def test_command_line_as_ldd_takes_it(args: list[str]) -> None:
    """`ldsim ldd ARGS` as a drop-in for `ldd ARGS`: the whole command line is ldd's when no option of
    ldsim's own comes first, '--' included (a leading '--' once belonged to ldsim and `ldd -- -v` listed
    nothing)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-m", "ldsim", "ldd", *args], capture_output=True, timeout=60,
                       env={**ENV, "PYTHONPATH": repo}, cwd="/tmp")
    r = subprocess.run(["ldd", *args], env=ENV, capture_output=True, timeout=60, cwd="/tmp")
    assert (mask(p.stdout), mask(p.stderr), p.returncode) == (mask(r.stdout), mask(r.stderr), r.returncode)
