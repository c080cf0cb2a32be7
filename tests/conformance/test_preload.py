"""Preloading in normal mode (glibc-loader.md §4.1 step 3, §3.10) against the real loader.

LD_PRELOAD, `--preload` and /etc/ld.so.preload, in dl_main's order; their place in the search list
before the program's DT_NEEDED; de-duplication with needed libraries; the error line of a preload that
cannot be loaded (also under ldd, where missing preloads are never faked).  /etc/ld.so.preload is shown
in a sysroot: `ldsim --root ROOT` against the real loader chrooted into ROOT, so the host's /etc is never
touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.materialize import File, LibSpec, ProgSpec, WorldSpec, build_world
from tests.conformance.conftest import add_host_glibc, Run, assert_same, expand_modes, outcomes
from tests.oracle import Outcome, mask

pytestmark = pytest.mark.conformance

EXEC = ("ldd", "trace", "exec")
MULTIARCH = "usr/lib/x86_64-linux-gnu"


def lib(path: str, **kw) -> LibSpec:
    kw.setdefault("libc", False)
    return LibSpec(path, soname=os.path.basename(path), **kw)


def world() -> WorldSpec:
    return WorldSpec((
        ProgSpec("bin/m", needed=("liba.so", "libb.so")),
        ProgSpec("bin/mr", needed=("liba.so",), rpath="$ORIGIN/../lib"),
        lib("lib/liba.so", needed=("libc1.so",)), lib("lib/libb.so"), lib("lib/libc1.so"),
        lib("pre/libp1.so", needed=("libpd.so",)), lib("pre/libp2.so"), lib("pre/libpd.so"),
        lib("lib/libpr.so"),  # found for a preload through the main program's RPATH
        lib("pre/libb.so"),  # a second libb: the preloaded one wins over lib/libb.so
        lib("lib32/libp32.so", m32=True),
        lib("pre/libpm.so", needed=("libnowhere.so",)),  # a preload whose dependency exists nowhere
    ), files=(File("pre/libtext.so", b"not an ELF file\n"),))


LLP = {"LD_LIBRARY_PATH": "{root}/lib:{root}/pre"}
RUNS = [
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "libp1.so libp2.so"}, modes=EXEC, name="order"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "libp2.so"}, modes=("trace", "exec"), name="env-then-option",
        args=("--preload", "libp1.so:libp2.so")),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "libb.so:liba.so"}, modes=EXEC, name="dedupe-with-needed"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "{root}/pre/libb.so"}, modes=EXEC, name="path-shadows-needed"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "libp1.so {root}/pre/libp1.so libp1.so"}, modes=EXEC,
        name="same-twice"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "libmissing.so /nonexistent/libx.so libp2.so"}, modes=EXEC,
        name="missing"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "{root}/pre/libtext.so {root}/lib32/libp32.so"}, modes=EXEC,
        name="broken"),
    Run("{root}/bin/m", LLP, modes=("trace", "exec"), name="option-missing",
        args=("--preload", "libnope.so:libp2.so")),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "  libp2.so::libp1.so\tlibp2.so: "}, modes=EXEC,
        name="separators"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": ""}, modes=EXEC, name="empty"),
    Run("bin/m", {**LLP, "LD_PRELOAD": "pre/libp2.so ./pre/libp1.so"}, modes=EXEC, name="relative-path"),
    Run("{root}/bin/mr", {"LD_PRELOAD": "libpr.so"}, modes=EXEC, name="found-through-main-rpath"),
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "$ORIGIN/../pre/libp2.so"}, modes=EXEC, name="dst-in-path"),
    # ldd's own shell cannot start either (its loader exits 127 before the script runs): ldd prints nothing
    Run("{root}/bin/m", {**LLP, "LD_PRELOAD": "libpm.so"}, modes=EXEC, name="dependency-of-preload-missing"),
    # audit objects that cannot be opened: reported by ldd's own shell too (on stderr), then in the listing
    Run("{root}/bin/m", {**LLP, "LD_AUDIT": "libnoaudit.so:/nonexistent/libaudit.so"}, modes=("ldd",),
        name="audit-missing"),
    Run("{root}/bin/m", {**LLP, "LD_AUDIT": "libnoaudit.so", "LD_PRELOAD": "libp2.so"}, modes=("ldd",),
        name="audit-and-preload"),
    # the shell's start relocates libc with LD_PROFILE=libc.so.6: its profile file cannot be opened there
    # (ldd's listings relocate nothing)
    Run("{root}/bin/m", {**LLP, "LD_PROFILE": "libc.so.6", "LD_PROFILE_OUTPUT": "{root}/nodir"}, modes=("ldd",),
        name="profile-of-the-shell"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[Outcome, Outcome]]:
    root = str(tmp_path_factory.mktemp("preload"))
    build_world(world(), root, jobs=4)
    keys = [(i, mode) for i, r in enumerate(RUNS) for mode in expand_modes(r.modes)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(keys, pool.map(lambda k: outcomes(RUNS[k[0]], k[1], root), keys)))


@pytest.mark.parametrize("index,mode", [pytest.param(i, m, id=f"{r.name}-{m}")
                                        for i, r in enumerate(RUNS) for m in expand_modes(r.modes)])
def test_preload(results, index: int, mode: str) -> None:
    assert_same(*results[(index, mode)])


# ------------------------------------------------------------------------- /etc/ld.so.preload, chrooted

PRELOAD_FILE = "# comment\n/nx1.so  libq1.so:#x libq9.so\n\tnx2.so\nlibq2.so:libqa.so"


@pytest.fixture(scope="module")
def sysroot(tmp_path_factory) -> str:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    r = str(tmp_path_factory.mktemp("preload_root"))
    build_world(WorldSpec((
        ProgSpec("usr/bin/prog", needed=("libqa.so",)),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False),
        LibSpec(f"{MULTIARCH}/libq1.so", soname="libq1.so", needed=("libqd.so",), libc=False),
        LibSpec(f"{MULTIARCH}/libq2.so", soname="libq2.so", libc=False),
        LibSpec(f"{MULTIARCH}/libqd.so", soname="libqd.so", libc=False),
        LibSpec("opt/libqe.so", soname="libqe.so", libc=False),
    )), r, jobs=4)
    add_host_glibc(r)
    with open(f"{r}/etc/ld.so.preload", "w") as f:
        f.write(PRELOAD_FILE)
    return r


def _chrooted(root: str, env: dict[str, str], argv: list[str]) -> Outcome:
    p = subprocess.run(argv, env=env, capture_output=True, timeout=60,
                       preexec_fn=lambda: (os.chroot(root), os.chdir("/")))
    return Outcome(mask(p.stdout), mask(p.stderr), p.returncode)


def _ldsim(root: str, env: dict[str, str], command: str, argv: list[str]) -> Outcome:
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-m", "ldsim", command, "-i", "--root", root, *eargs, *argv],
                       env={"PYTHONPATH": here, "PATH": os.environ.get("PATH", "")},
                       capture_output=True, timeout=60)
    return Outcome(mask(p.stdout), mask(p.stderr), p.returncode)


ROOT_CASES = {
    "file-only-trace": ({"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}, []),
    "file-only-exec": ({"LD_DEBUG": "libs"}, []),
    "env-option-file-order": ({"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", "LD_PRELOAD": "libq2.so"},
                              ["--preload", "/opt/libqe.so"]),
}


@pytest.mark.parametrize("case", list(ROOT_CASES))
def test_etc_ld_so_preload_in_a_sysroot(sysroot: str, case: str) -> None:
    env, opts = ROOT_CASES[case]
    real = _chrooted(sysroot, env, ["/lib64/ld-linux-x86-64.so.2", *opts, "/usr/bin/prog"])
    assert_same(real, _ldsim(sysroot, env, "ld.so", [*opts, "/usr/bin/prog"]))


def test_etc_ld_so_preload_exec_in_a_sysroot(sysroot: str) -> None:
    """A real exec of the program (not ld.so PROG) inside the root: `ldsim run --root`."""
    env = {"LD_DEBUG": "libs", "LD_PRELOAD": "libq2.so"}
    assert_same(_chrooted(sysroot, env, ["/usr/bin/prog"]), _ldsim(sysroot, env, "run", ["/usr/bin/prog"]))
