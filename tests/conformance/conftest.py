"""Shared pieces of the conformance suite: build worlds, run the real loader and ldsim, diff the outcomes.

The real loader is the oracle at test time: nothing here pins this machine's output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from ldsim.materialize import WorldSpec, build_world
from tests import oracle

TRACE_ENV = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
MODES = ("ldd", "trace", "exec")


@dataclass(frozen=True)
class Run:
    """One command against a built world.

    `prog` and every env value may contain `{root}` (the world's directory); `cwd` is relative to it.
    modes: `ldd` = ldd vs `ldsim ldd`; `trace` = `ld.so PROG` with LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs
    vs `ldsim ld.so`; `exec` = `ld.so PROG` without tracing (executes PROG: only programs built here),
    once plain and once with LD_DEBUG=libs.
    """

    prog: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = "."
    modes: tuple[str, ...] = ("ldd", "trace")
    name: str = ""
    args: tuple[str, ...] = ()  # ld.so options before PROG (trace/exec modes only; `{root}` allowed)


def _fmt(text: str, root: str) -> str:
    return text.replace("{root}", root)


def outcomes(run: Run, mode: str, root: str) -> tuple[oracle.Outcome, oracle.Outcome]:
    """(real, ldsim) outcomes of `run` in `mode`."""
    prog = _fmt(run.prog, root)
    env = {k: _fmt(v, root) for k, v in run.env.items()}
    cwd = f"{root}/{run.cwd}"
    if mode == "ldd":
        assert not run.args, "ldd takes no ld.so options"
        return oracle.real_ldd([prog], env, cwd), oracle.ldsim_ldd([prog], env, cwd)
    if mode == "trace":
        env = {**TRACE_ENV, **env}
    elif mode == "exec+debug":
        env = {"LD_DEBUG": "libs", **env}
    argv = [*(_fmt(a, root) for a in run.args), prog]
    return oracle.real_ldso(argv, env, cwd), oracle.ldsim_ldso(argv, env, cwd)


def expand_modes(modes: Sequence[str]) -> list[str]:
    out: list[str] = []
    for m in modes:
        out += ["exec", "exec+debug"] if m == "exec" else [m]
    return out


def assert_same(real: oracle.Outcome, sim: oracle.Outcome) -> None:
    if real != sim:
        pytest.fail("ldsim differs from the real loader:\n" + oracle.diff_report(real, sim), pytrace=False)



def add_host_glibc(root: str) -> None:
    """Make `root` a minimal Debian-layout glibc root: the host's libc and ld.so in the multiarch dir,
    merged-/usr symlinks, and /lib64's absolute interpreter link (which must resolve inside the root)."""
    import os
    import shutil
    multiarch = f"{root}/usr/lib/x86_64-linux-gnu"
    os.makedirs(multiarch, exist_ok=True)
    for name in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy2(f"/lib/x86_64-linux-gnu/{name}", f"{multiarch}/{name}")
    os.makedirs(f"{root}/usr/lib64", exist_ok=True)
    os.makedirs(f"{root}/etc", exist_ok=True)
    os.symlink("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", f"{root}/usr/lib64/ld-linux-x86-64.so.2")
    os.symlink("usr/lib", f"{root}/lib")
    os.symlink("usr/lib64", f"{root}/lib64")


def build_case_worlds(base: str, cases: Mapping[str, Callable[[str], tuple[WorldSpec, Sequence[Run]]]],
                      finish: Callable[[str, WorldSpec], None] | None = None
                      ) -> dict[str, tuple[str, Sequence[Run]]]:
    """Build every case's world once, concurrently, each in its own directory under `base`; `finish`
    (root, spec) then alters what gcc could not make.  name -> (root, runs)."""
    def one(name: str) -> tuple[str, tuple[str, Sequence[Run]]]:
        root = f"{base}/{name}"
        spec, runs = cases[name](root)
        build_world(spec, root, jobs=2)
        if finish is not None:
            finish(root, spec)
        return name, (root, runs)

    with ThreadPoolExecutor(max_workers=min(4, len(cases))) as pool:
        return dict(pool.map(one, cases))


def case_params(cases: Mapping[str, Callable[[str], tuple[WorldSpec, Sequence[Run]]]]) -> list:
    """pytest params (case name, run index, mode) of every run of every case."""
    out = []
    for name, fn in cases.items():
        _, runs = fn("/")
        for i, run in enumerate(runs):
            for mode in expand_modes(run.modes):
                out.append(pytest.param(name, i, mode, id=f"{name}-{run.name or i}-{mode}"))
    return out


def build_foo_world(d) -> str:
    """The smallest world with a dependency: `prog` needs libfoo.so.1 (no RPATH), both in `d` (a Path);
    the hostile-input tests mutate copies of these two files."""
    (d / "foo.c").write_text("int foo(void) { return 42; }\n")
    (d / "main.c").write_text("int foo(void);\nint main(void) { return foo() - 42; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(d / "libfoo.so.1"), "-Wl,-soname,libfoo.so.1",
                    str(d / "foo.c")], check=True)
    subprocess.run(["gcc", "-o", str(d / "prog"), str(d / "main.c"), "-L", str(d), "-l:libfoo.so.1"],
                   check=True)
    return str(d)
