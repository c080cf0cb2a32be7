#!/usr/bin/env python3
"""How fast is `ldsim scan DIR` next to running `ldd -r` on every ELF file of DIR?

  ldsim scan -i --no-progress DIR    one command: walks DIR, reads every file's first bytes, resolves
                                     every program (exec mode) and library (direct mode), audits them
                                     (the checks forked over the CPUs, its default; `--jobs 1` is also
                                     timed: everything in one process)
  ldd -r FILE   (loop)               the real ldd with relocation processing (what finds undefined
                                     symbols), once per x86-64 ELF file of DIR (found beforehand, untimed)
  and, for the resolution alone: `ldsim scan --no-symbols DIR` against plain `ldd FILE` in a loop.

Both are timed by wall clock and by CPU time (user+sys of the child processes: fairer on a busy machine).
`--sample K` runs ldd on every K-th file only and extrapolates (said so in the report).
`--phases` times the scan's parts in this process instead (discovery: walking DIR and reading every
file's first bytes; resolution; the undefined-symbol check, cold then again with its memos warm).

    python3 benchmarks/bench_scan.py [--dir /usr] [--sample 1] [--phases]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def elf_files(top: str) -> list[str]:
    """x86-64 ELF programs and shared objects under `top` (symlinks not followed, each inode once)."""
    seen, out = set(), []
    for d, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(d, name)
            try:
                st = os.lstat(path)
                if not os.path.stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                    continue
                with open(path, "rb") as f:
                    head = f.read(20)
            except OSError:
                continue
            if head[:4] == b"\x7fELF" and head[4] == 2 and head[18:20] == b"\x3e\x00" and head[16] in (2, 3):
                seen.add((st.st_dev, st.st_ino))
                out.append(path)
    return out


def timed(argv_list: list[list[str]], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of running each argv in turn."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for argv in argv_list:
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def phases(top: str) -> None:
    """Where a scan's time goes, part by part (wall and CPU of this process)."""
    sys.path.insert(0, HERE)
    from ldsim import scan as S
    from ldsim.config import Invocation
    from ldsim.glibc import DEBIAN_X86_64
    from ldsim.hwcaps import detect_host_cpu
    from ldsim.linkmap import FileCache
    from ldsim.world import make_world

    def clock() -> tuple[float, float]:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), r.ru_utime + r.ru_stime

    def report(label: str, since: tuple[float, float]) -> tuple[float, float]:
        now = clock()
        print(f"  {label:38} {now[0] - since[0]:8.2f} s wall  {now[1] - since[1]:8.2f} s CPU")
        return now

    inv = Invocation(env=(), cwd="/", pid=1, cpu=detect_host_cpu(), profile=DEBIAN_X86_64)
    world, files = S.MemoWorld(make_world("/", "/")), FileCache()
    notes, stats = [], S.ScanStats()
    t = clock()
    targets = S.discover(world, inv, files, [top], True, True, notes, stats)
    t = report(f"discovery ({stats.entries} entries)", t)
    procs = [S.resolve(world, inv, files, x) for x in targets
             if x.kind != "program" or S._interp_ok(world, inv, x, [])]
    t = report(f"resolution ({len(procs)} files)", t)
    for proc in procs:
        proc.bind_now_main()
    t = report("undefined symbols", t)
    for proc in procs:
        proc.bind_now_main()
    report("undefined symbols again (memos warm)", t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/usr")
    ap.add_argument("--sample", type=int, default=1, help="run ldd on every K-th file and extrapolate")
    ap.add_argument("--phases", action="store_true", help="time the scan's parts in this process")
    args = ap.parse_args()
    if args.phases:
        phases(args.dir)
        return 0
    files = elf_files(args.dir)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": HERE}
    print(f"{len(files)} x86-64 ELF files under {args.dir}; {len(os.sched_getaffinity(0))} CPUs")
    sample = files[::max(1, args.sample)]
    scale = len(files) / max(1, len(sample))
    note = f" (extrapolated from {len(sample)} files)" if scale > 1 else ""
    for scan_opts, ldd_opts in ((["--no-symbols"], []), ([], ["-r"])):
        l_wall, l_cpu = timed([["ldd", *ldd_opts, f] for f in sample], env)
        l_wall, l_cpu = l_wall * scale, l_cpu * scale
        label = " ".join(["ldd", *ldd_opts, "on each file"])
        print(f"{label:34} {l_wall:8.2f} s wall  {l_cpu:8.2f} s CPU{note}")
        for jobs in ([], ["--jobs", "1"]):
            s_wall, s_cpu = timed([[sys.executable, "-m", "ldsim", "scan", "-i", "--no-progress", *jobs,
                                    *scan_opts, args.dir]], env)
            label = " ".join(["ldsim scan", *jobs, *scan_opts, args.dir])
            print(f"{label:34} {s_wall:8.2f} s wall  {s_cpu:8.2f} s CPU"
                  f"   ratio: {l_wall / s_wall:.1f}x wall, {l_cpu / s_cpu:.1f}x CPU (target >= 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
