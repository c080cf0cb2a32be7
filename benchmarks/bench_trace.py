#!/usr/bin/env python3
"""The full binding trace of the five programs of /usr/bin with the most loaded objects: the real loader
against ldsim, in one run.

For each program, the real loader runs
  env -i LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_BIND_NOW=yes LD_DEBUG=all /lib64/ld-linux-x86-64.so.2 PROG
(trace mode: it loads, checks versions, lists, binds every relocation, prints the trace, and exits; the
program never runs) and ldsim simulates the same in one warm process (`ldso.run_ldso`, a FileCache shared
by the five); a cold `python -m ldsim ld.so` per program is timed too.  Output goes nowhere.

    python3 benchmarks/bench_trace.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ldsim.config import Invocation  # noqa: E402
from ldsim.glibc import DEBIAN_X86_64  # noqa: E402
from ldsim.hwcaps import detect_host_cpu  # noqa: E402
from ldsim.ldso import run_ldso  # noqa: E402
from ldsim.linkmap import FileCache  # noqa: E402
from ldsim.world import HostWorld  # noqa: E402

RTLD = "/lib64/ld-linux-x86-64.so.2"
ENV = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes", "LD_DEBUG": "all"}


def invocation(env: dict[str, str]) -> Invocation:
    return Invocation(env=tuple(env.items()), cwd="/", pid=os.getpid(), cpu=detect_host_cpu(),
                      profile=DEBIAN_X86_64)


def biggest_programs(n: int) -> list[tuple[int, str]]:
    """Programs by number of loaded objects, as ldsim lists them."""
    inv = invocation({"LD_TRACE_LOADED_OBJECTS": "1"})
    files = FileCache()
    sized = []
    for p in sorted(set(os.path.realpath(f) for f in glob.glob("/usr/bin/*"))):
        try:
            with open(p, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        run = run_ldso(HostWorld("/"), inv, [p], files, RTLD)
        if run.status == 0:
            sized.append((run.text(1).count("\n"), p))
    return sorted(sized, reverse=True)[:n]


def time_real(prog: str) -> float:
    t = time.perf_counter()
    subprocess.run([RTLD, prog], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def time_cold(prog: str) -> float:
    args = [a for k, v in ENV.items() for a in ("-e", f"{k}={v}")]
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ldsim", "ld.so", "-i", *args, prog], cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    progs = biggest_programs(5)
    inv = invocation(ENV)
    rows = []
    warm_total = real_total = 0.0
    files = FileCache()
    lines = 0
    for objects, prog in progs:
        real = statistics.median(time_real(prog) for _ in range(opts.repeat))
        cold = statistics.median(time_cold(prog) for _ in range(opts.repeat))
        t = time.perf_counter()
        run = run_ldso(HostWorld("/"), inv, [prog], files, RTLD)
        warm = time.perf_counter() - t
        lines += run.text(2).count("\n")
        warm_total += warm
        real_total += real
        rows.append((prog, objects, real, warm, cold))
    print(f"{'program':<40} {'objects':>7} {'real ld.so':>11} {'ldsim warm':>11} {'ldsim cold':>11} {'warm/real':>9}")
    for prog, objects, real, warm, cold in rows:
        print(f"{prog:<40} {objects:>7} {real * 1000:>9.1f}ms {warm * 1000:>9.1f}ms {cold * 1000:>9.1f}ms "
              f"{warm / real:>8.1f}x")
    print(f"{'all five':<40} {'':>7} {real_total * 1000:>9.1f}ms {warm_total * 1000:>9.1f}ms {'':>11} "
          f"{warm_total / real_total:>8.1f}x")
    print(f"({lines} LD_DEBUG lines simulated; ldsim is slower than the C loader by the factor shown — "
          "ratio > 1 means slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
