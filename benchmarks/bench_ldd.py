#!/usr/bin/env python3
"""How fast is `ldsim ldd` next to the tools people use for the same question?

One run, the same files for every tool: each entry of /usr/bin (symlinks followed) whose first bytes are
\\x7fELF.  Timed, wall clock:

  ldsim ldd --jobs 1 FILES... one process for all files (the console script if installed, else
                              `python -m ldsim` with this checkout on PYTHONPATH): the issue's measure
  ldsim ldd FILES...          the default: the files spread over forked workers, one per CPU
  ldd FILE   (loop)           the real ldd, once per file
  lddtree FILES...            pax-utils' lddtree (Python + pyelftools), one call
  libtree FILE  (loop)        libtree, once per file
  libtree FILES...            libtree, one call

and the cold start of `ldsim ldd /usr/bin/python3` against `ldd /usr/bin/python3` (median of N runs).
A tool that is not installed is reported as such.  Output goes to /dev/null; exit statuses are ignored
(some files have missing libraries; the work done is the same).

    python3 benchmarks/bench_ldd.py [--dir /usr/bin] [--repeat 1] [--cold-runs 10] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TARGETS = {  # name -> (how many times faster ldsim must be, text)
    "ldd loop": (10.0, ">= 10x faster"),
    "lddtree (one call)": (20.0, ">= 20x faster"),
    "libtree loop": (1.0, "faster"),
    "libtree (one call)": (0.2, "within 5x"),
}
COLD_TARGET_MS = 100.0


def elf_files(directory: str, limit: int | None) -> list[str]:
    out = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        try:
            if not os.path.isfile(path):  # follows symlinks
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        out.append(path)
        if limit and len(out) >= limit:
            break
    return out


def ldsim_command() -> tuple[list[str], dict[str, str], str]:
    """The installed console script if there is one, else this checkout run with the current interpreter
    (its real path, not a pyenv shim: a shim adds a shell and a second interpreter start)."""
    env = {"PATH": PATH_ENV}
    script = os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "ldsim")
    if not os.access(script, os.X_OK):
        script = shutil.which("ldsim")
        if script and "/shims/" in script:  # a pyenv shim: a shell script that starts pyenv first
            script = None
    if script and os.environ.get("BENCH_LDSIM") != "module":
        return [script], env, f"console script {script}"
    env["PYTHONPATH"] = REPO
    exe = os.path.realpath(sys.executable)
    return [exe, "-m", "ldsim"], env, f"{exe} -m ldsim (PYTHONPATH={REPO})"


_NO_SITE_LDD = ("import sys\nfrom ldsim.cli import main\nsys.argv = ['ldsim', 'ldd', '/usr/bin/python3']\n"
                "sys.exit(main())")


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, check=False)
    return time.perf_counter() - t0


def wall_loop(cmd: list[str], files: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    for f in files:
        subprocess.run(cmd + [f], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - t0


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def median_of(repeat: int, fn) -> float:
    return statistics.median(fn() for _ in range(repeat))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/usr/bin", help="where the ELF files are taken from")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each batch measurement (median kept)")
    ap.add_argument("--cold-runs", type=int, default=10, help="runs of each cold-start measurement")
    ap.add_argument("--limit", type=int, help="only the first N files (a quick run)")
    opts = ap.parse_args()

    files = elf_files(opts.dir, opts.limit)
    if not files:
        print(f"bench_ldd: {opts.dir}: no ELF files", file=sys.stderr)
        return 1
    ldsim, ldsim_env, how = ldsim_command()
    plain_env = {"PATH": PATH_ENV}
    ldsim_ldd = ldsim + ["ldd", "-i", "-e", f"PATH={PATH_ENV}"]
    print(f"files: {len(files)} ELF files of {opts.dir}")
    print(f"ldsim: {how}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print()

    rows: list[tuple[str, float | None, str]] = []
    # one unmeasured run first: it reads every file and library the tools will read, so that the first tool
    # measured does not alone pay for what this VM evicted from the page cache.  It is also the check that
    # ldsim works at all: a broken install exits at once and would otherwise be timed as a huge win.
    warm = subprocess.run(ldsim_ldd + files, stdin=subprocess.DEVNULL, capture_output=True, env=ldsim_env)
    headers = sum(1 for line in warm.stdout.splitlines() if line.endswith(b":") and not line.startswith(b"\t"))
    if headers != len(files) if len(files) > 1 else not warm.stdout:
        print(f"bench_ldd: {' '.join(ldsim)} does not work (exit {warm.returncode}, {headers} of {len(files)} "
              f"files answered): {warm.stderr.decode(errors='replace').strip().splitlines()[-1:]}", file=sys.stderr)
        return 1
    # the measure is one process (--jobs 1); the default forks one worker per CPU
    t_one = median_of(opts.repeat, lambda: wall(
        ldsim + ["ldd", "--jobs", "1"] + ldsim_ldd[len(ldsim) + 1:] + files, ldsim_env))
    rows.append(("ldsim ldd --jobs 1", t_one, ""))
    t_ldsim = median_of(opts.repeat, lambda: wall(ldsim_ldd + files, ldsim_env))
    rows.append((f"ldsim ldd ({usable_cpus()} workers)", t_ldsim, ""))

    ldd = shutil.which("ldd", path=PATH_ENV)
    rows.append(("ldd loop", median_of(opts.repeat, lambda: wall_loop([ldd], files, plain_env))
                 if ldd else None, "ldd"))
    lddtree = shutil.which("lddtree", path=PATH_ENV)
    # Debian's pax-utils lddtree is a Python script that needs pyelftools: run it with the system Python
    sys_py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
    if lddtree and sys_py and subprocess.run([sys_py, "-c", "import elftools"], capture_output=True).returncode:
        lddtree = None
    rows.append(("lddtree (one call)", median_of(opts.repeat, lambda: wall([sys_py, lddtree] + files, plain_env))
                 if lddtree else None, "pax-utils + python3-pyelftools"))
    libtree = shutil.which("libtree", path=PATH_ENV)
    rows.append(("libtree loop", median_of(opts.repeat, lambda: wall_loop([libtree], files, plain_env))
                 if libtree else None, "libtree"))
    rows.append(("libtree (one call)", median_of(opts.repeat, lambda: wall([libtree] + files, plain_env))
                 if libtree else None, "libtree"))

    print(f"{'tool':<26}{'wall (s)':>10}{'per file (ms)':>15}{'one process':>13}{'workers':>10}   "
          "target (one process; with workers)")
    for name, t, package in rows:
        if t is None:
            print(f"{name:<26}{'not installed':>10}   (apt-get install {package})")
            continue
        ratios = (t / t_one, t / t_ldsim)
        target = TARGETS.get(name)
        verdict = ""
        if target:
            met = ["met" if r >= target[0] else "NOT met" for r in ratios]
            verdict = f"{target[1]}: {met[0]}; {met[1]}"
        speeds = ("", "") if name.startswith("ldsim") else tuple(f"{r:.1f}x" for r in ratios)
        print(f"{name:<26}{t:>10.2f}{1000 * t / len(files):>15.2f}{speeds[0]:>13}{speeds[1]:>10}   {verdict}")

    print()
    print(f"cold start, median of {opts.cold_runs} runs:")
    cold = [("ldsim ldd /usr/bin/python3", ldsim_ldd + ["/usr/bin/python3"], ldsim_env)]
    if ldd:
        cold.append(("ldd /usr/bin/python3", [ldd, "/usr/bin/python3"], plain_env))
    exe = os.path.realpath(sys.executable)
    cold.append((f"{exe} -c pass (floor)", [exe, "-c", "pass"], plain_env))
    cold.append((f"{exe} -S -c pass", [exe, "-S", "-c", "pass"], plain_env))
    # The same ldsim without site hooks: some machines' site-packages carry .pth files that import
    # heavy modules into every interpreter (this sandbox's certifi hook: ~65 ms).  `-S` skips them; the
    # paths the normal start would have set come in through PYTHONPATH, with where `ldsim` imports from
    # (an editable install's finder hook is one of those .pth files).
    where = subprocess.run([exe, "-c", "import os, sys, ldsim; print(':'.join("
                            "[os.path.dirname(os.path.dirname(ldsim.__file__))] + [p for p in sys.path if p]))"],
                           capture_output=True, text=True, env=ldsim_env).stdout.strip()
    no_site = dict(ldsim_env, PYTHONPATH=where)
    cold.append(("ldsim ldd /usr/bin/python3, python -S", [exe, "-S", "-c", _NO_SITE_LDD], no_site))
    results = {}
    for name, cmd, env in cold:
        # warm the page cache and __pycache__; and an ldsim start that fails is not timed
        if subprocess.run(cmd, capture_output=True, env=env).returncode and name.startswith("ldsim"):
            print(f"bench_ldd: {name}: {' '.join(cmd)} fails", file=sys.stderr)
            return 1
        results[name] = statistics.median(wall(cmd, env) for _ in range(opts.cold_runs)) * 1000
    for name, ms in results.items():
        mark = ""
        if name.startswith("ldsim"):
            mark = f"   target < {COLD_TARGET_MS:.0f} ms: {'met' if ms < COLD_TARGET_MS else 'NOT met'}"
        print(f"  {name:<52}{ms:>8.1f} ms{mark}")
    # what ldsim itself adds on top of starting this interpreter (its site-packages .pth files included)
    own = results[cold[0][0]] - results[f"{exe} -c pass (floor)"]
    print(f"  {'ldsim above the interpreter floor':<52}{own:>8.1f} ms")
    own = results["ldsim ldd /usr/bin/python3, python -S"] - results[f"{exe} -S -c pass"]
    print(f"  {'ldsim above the interpreter floor, python -S':<52}{own:>8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
