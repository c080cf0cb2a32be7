"""Differential tests of files that are not ELF objects where the loader expects one: sockets, devices,
directories, FIFOs, empty and unreadable files, symlink loops, odd names — given to `ld.so` and `ldd` as
the program, or met in LD_LIBRARY_PATH under the name of a library the program needs (the search goes
on past some, stops at others).  Each is compared with the real loader and ldd at test time.

ldsim never opens a FIFO, socket or device (no blocking, no side effect): what the loader would see is
worked out from its type (world._open_special).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same, build_foo_world

pytestmark = pytest.mark.conformance

NOBODY = 65534
TRACE = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("hostile_files")
    return build_foo_world(d)


def _bind_socket(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)  # the socket file stays after the close


def _loop(path: str) -> None:
    os.symlink("other", path)
    os.symlink(os.path.basename(path), os.path.join(os.path.dirname(path), "other"))


def _unreadable_copy(built: str) -> Callable[[str], None]:
    def make(path: str) -> None:
        shutil.copy(f"{built}/libfoo.so.1", path)
        os.chmod(path, 0)
    return make


MAKERS: dict[str, Callable[[str], object]] = {
    "directory": os.mkdir,
    "socket": _bind_socket,
    "dev-null": lambda p: os.symlink("/dev/null", p),
    "dev-zero": lambda p: os.symlink("/dev/zero", p),
    "empty": lambda p: open(p, "wb").close(),
    "text": lambda p: open(p, "w").write("not an object\n"),
    "symlink-loop": _loop,
    "symlink-to-itself": lambda p: os.symlink(os.path.basename(p), p),
    "dangling-symlink": lambda p: os.symlink("nowhere", p),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_needed_name_taken_by_a_non_object(built, tmp_path, kind: str) -> None:
    """The first LD_LIBRARY_PATH directory holds something else under the needed library's name."""
    w = tmp_path / "w"
    (w / "bad").mkdir(parents=True)
    (w / "good").mkdir()
    shutil.copy(f"{built}/prog", w / "prog")
    shutil.copy(f"{built}/libfoo.so.1", w / "good")
    MAKERS[kind](str(w / "bad" / "libfoo.so.1"))
    env = {"LD_LIBRARY_PATH": f"{w}/bad:{w}/good"}
    prog = str(w / "prog")
    assert_same(oracle.real_ldso([prog], {**TRACE, **env}, str(w)), oracle.sim_ldso(prog, {**TRACE, **env}, str(w)))
    assert_same(oracle.real_ldd([prog], env, str(w)), oracle.sim_ldd([prog], env, str(w)))


@pytest.mark.parametrize("kind", [*MAKERS, "newline\nname", "space name"])
def test_non_object_given_as_the_program(built, tmp_path, kind: str) -> None:
    """`ld.so FILE`, `ld.so --verify FILE` and `ldd FILE` for each kind of file (odd names: a copy of
    the program)."""
    path = str(tmp_path / "x")
    if kind in MAKERS:
        MAKERS[kind](path)
    else:
        path = str(tmp_path / kind)
        shutil.copy(f"{built}/prog", path)
    cwd = str(tmp_path)
    for argv, env in (([path], TRACE), (["--verify", path], {})):
        assert_same(oracle.real_ldso(argv, env, cwd), oracle.sim_ldso_argv(argv, env, cwd))
    assert_same(oracle.real_ldd([path], {}, cwd), oracle.sim_ldd([path], {}, cwd))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the loader as nobody")
def test_unreadable_library_as_nobody(built) -> None:
    """Run as nobody, a library it may not read (mode 000) is passed over like a missing one (the
    world lies outside pytest's 0700 directory, where nobody could not reach the program)."""
    top = tempfile.mkdtemp(prefix="ldsim-hostile-")
    try:
        _run_unreadable_as_nobody(built, pathlib.Path(top))
    finally:
        shutil.rmtree(top)


def _run_unreadable_as_nobody(built: str, tmp_path: pathlib.Path) -> None:
    w = tmp_path / "w"
    (w / "bad").mkdir(parents=True)
    (w / "good").mkdir()
    shutil.copy(f"{built}/prog", w / "prog")
    shutil.copy(f"{built}/libfoo.so.1", w / "good")
    _unreadable_copy(built)(str(w / "bad" / "libfoo.so.1"))
    for d in (tmp_path, w, w / "bad", w / "good"):
        os.chmod(d, 0o755)
    env = [f"{k}={v}" for k, v in {**TRACE, "LD_LIBRARY_PATH": f"{w}/bad:{w}/good"}.items()]
    real = oracle.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i",
                       *env, oracle.RTLD, str(w / "prog")], {}, str(w))
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    sim = oracle.run([sys.executable, "-m", "ldsim", "ld.so", *ids, "-i", *(a for e in env for a in ("-e", e)),
                      "--", str(w / "prog")], oracle._own_env(), str(w))
    assert b"libfoo.so.1 => " + str(w).encode() + b"/good/libfoo.so.1" in real.stdout  # the case at hand
    assert_same(real, sim)


@pytest.mark.parametrize("where", ["program", "needed"])
def test_fifo(built, tmp_path, where: str) -> None:
    """Opening a FIFO no one writes to blocks the real loader for ever (it is killed here after a few
    seconds); ldsim says so in one line, `ldsim: FILE: ...`, exit 3, at once."""
    fifo = str(tmp_path / "libfoo.so.1")
    os.mkfifo(fifo)
    shutil.copy(f"{built}/prog", tmp_path / "prog")
    prog = fifo if where == "program" else str(tmp_path / "prog")
    env = {**TRACE, "LD_LIBRARY_PATH": str(tmp_path)}
    with pytest.raises(subprocess.TimeoutExpired):
        oracle.run([oracle.RTLD, prog], env, str(tmp_path), timeout=2)
    sim = oracle.ldsim_ldso([prog], env, str(tmp_path))
    assert (sim.status, sim.stdout) == (3, b"")
    assert sim.stderr.startswith(f"ldsim: {fifo}: ".encode()) and sim.stderr.count(b"\n") == 1


@pytest.mark.parametrize("how", ["needed", "preload"])
def test_proc_self_exe(built, tmp_path, how: str) -> None:
    """/proc/self/exe as a DT_NEEDED entry or in LD_PRELOAD is the simulated process's executable, not
    ldsim's: ld.so itself when run as `ld.so PROG` (a second copy, listed under that name), the PIE
    program when executed ('cannot dynamically load position-independent executable')."""
    prog = str(tmp_path / "prog")
    shutil.copy(f"{built}/prog", prog)
    shutil.copy(f"{built}/libfoo.so.1", tmp_path)
    env = {"LD_LIBRARY_PATH": str(tmp_path)}
    if how == "needed":
        subprocess.run(["patchelf", "--add-needed", "/proc/self/exe", prog], check=True)
    else:
        env["LD_PRELOAD"] = "/proc/self/exe"
    cwd = str(tmp_path)
    assert_same(oracle.real_ldso([prog], {**TRACE, **env}, cwd), oracle.sim_ldso(prog, {**TRACE, **env}, cwd))
    assert_same(oracle.real_ldd([prog], env, cwd), oracle.sim_ldd([prog], env, cwd))
    assert_same(oracle.run([prog], env, cwd), oracle.sim_exec(prog, env, cwd))


def test_ldd_stops_at_a_fifo(built, tmp_path) -> None:
    """`ldd A PROG B` where PROG needs a library that is a FIFO: the real ldd prints A's list and
    PROG's header, then hangs in the loader's open(2) (killed here after a few seconds); ldsim prints
    the same, then its one line, exit 3."""
    fifo = str(tmp_path / "libfoo.so.1")
    os.mkfifo(fifo)
    prog = str(tmp_path / "prog")
    shutil.copy(f"{built}/prog", prog)
    args, env = ["/usr/bin/true", prog, "/usr/bin/true"], {"LD_LIBRARY_PATH": str(tmp_path)}
    real = subprocess.Popen(["ldd", *args], env={**oracle.LDD_PATH, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        real.communicate(timeout=2)
        pytest.fail("the real ldd did not block")
    except subprocess.TimeoutExpired:
        os.killpg(real.pid, signal.SIGKILL)  # the script and the loader it runs
        stdout, _ = real.communicate()
    sim = oracle.ldsim_ldd(args, env)
    assert (sim.status, sim.stdout) == (3, oracle.mask(stdout))
    assert sim.stderr.startswith(f"ldsim: {fifo}: ".encode()) and sim.stderr.count(b"\n") == 1


# a program that cannot be found (a dangling symlink, a loop) is ldsim's unreadable input: exit 3
EXEC_KINDS = {**{k: v for k, v in MAKERS.items() if "symlink" not in k}, "fifo": os.mkfifo, "empty-executable": lambda p: (open(p, "wb").close(), os.chmod(p, 0o755)),
              "text-executable": lambda p: (open(p, "w").write("not an object\n"), os.chmod(p, 0o755))}


@pytest.mark.parametrize("kind", list(EXEC_KINDS))
def test_exec_of_a_non_object(tmp_path, kind: str) -> None:
    """execve of each kind of file fails (do_open_execat: EACCES for anything but a regular file with an
    x bit, even for root; ENOEXEC for no binary format); `ldsim run` says the same
    strerror in its one line, exit 126."""
    path = str(tmp_path / "x")
    EXEC_KINDS[kind](path)
    with pytest.raises(OSError) as failed:
        subprocess.run([path], env={}, capture_output=True, timeout=5)
    sim = oracle.ldsim_run(path, {}, str(tmp_path))
    expected = f"ldsim: {path}: cannot execute: {os.strerror(failed.value.errno)}\n".encode()
    assert (sim.status, sim.stdout, sim.stderr) == (126, b"", expected)
