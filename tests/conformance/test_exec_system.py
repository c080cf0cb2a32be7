"""`ldsim run` against a real exec of every dynamic program of /usr/bin and /usr/sbin in trace mode
(`LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs,files,versions PROG`: the loader lists and exits, the program
never runs): stdout, stderr and exit status identical, addresses and PIDs masked.  Exec mode differs from
ldd in $ORIGIN (the real path of the program) and in the names ld.so gives the program and itself.
Set-user/group-ID programs are left to the secure-mode tests."""

from __future__ import annotations

import glob
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.config import Invocation
from ldsim.elf import ElfError, parse_elf
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import detect_host_cpu
from ldsim.ldso import run_exec
from ldsim.linkmap import FileCache
from ldsim.world import HostWorld
from tests.oracle import mask

pytestmark = pytest.mark.conformance
ENV = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs,files,versions"}


def dynamic_programs() -> list[str]:
    out = []
    for p in sorted(glob.glob("/usr/bin/*") + glob.glob("/usr/sbin/*")):
        try:
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode) or st.st_mode & (stat.S_ISUID | stat.S_ISGID) or not st.st_mode & 0o111:
                continue
            with open(p, "rb") as f:
                data = f.read()
            if parse_elf(data).interp is None:
                continue  # static: exec would really run it
        except (OSError, ElfError):
            continue
        out.append(p)
    return out


def test_exec_trace_of_every_dynamic_program() -> None:
    files = dynamic_programs()
    assert len(files) > 100

    def real(p: str) -> tuple[bytes, bytes, int]:
        r = subprocess.run([p], env=ENV, capture_output=True, timeout=60, cwd="/")
        return mask(r.stdout), mask(r.stderr), r.returncode

    with ThreadPoolExecutor(4) as pool:
        reals = list(pool.map(real, files))
    cache = FileCache()
    bad = []
    for p, r in zip(files, reals):
        inv = Invocation(env=tuple(ENV.items()), cwd="/", pid=1, cpu=detect_host_cpu(), profile=DEBIAN_X86_64)
        run = run_exec(HostWorld("/"), inv, [p], cache)
        enc = lambda s: mask(s.encode("utf-8", "surrogateescape"))  # noqa: E731
        if (enc(run.text(1)), enc(run.text(2)), run.status) != r:
            bad.append(p)
    print(f"{len(files) - len(bad)}/{len(files)} identical")
    assert not bad, f"{len(bad)} differ, e.g. {bad[:5]}"
