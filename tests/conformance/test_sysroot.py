"""A sysroot whose libraries differ from the host's: `ldsim ld.so --root ROOT` against the real loader
run inside that root with chroot(8).  Absolute symlinks, the root's own ld.so.conf and ld.so.cache (built
by the real ldconfig -r) and a library that shadows a host soname with other dependencies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests.conformance.conftest import add_host_glibc
from tests.oracle import mask

pytestmark = [pytest.mark.conformance,
              pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")]
MULTIARCH = "usr/lib/x86_64-linux-gnu"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    r = str(tmp_path_factory.mktemp("sysroot"))
    build_world(WorldSpec((
        LibSpec(f"{MULTIARCH}/libz.so.1", soname="libz.so.1", needed=("libzdep.so",), libc=False),
        LibSpec(f"{MULTIARCH}/libzdep.so", soname="libzdep.so", libc=False),
        LibSpec("opt/lib/libfoo.so.1", soname="libfoo.so.1", needed=("libz.so.1",), libc=False),
        ProgSpec("usr/bin/prog", needed=("libfoo.so.1", "libz.so.1")),
    )), r)
    add_host_glibc(r)
    with open(f"{r}/etc/ld.so.conf", "w") as f:
        f.write("/opt/lib\n")
    subprocess.run(["ldconfig", "-r", r, "-X"], check=True)
    return r


def _compare(root: str, env: dict[str, str], args: list[str], tool: str = "ld.so") -> None:
    """The real `tool` (ld.so or ldd) run chrooted in `root` against `ldsim TOOL --root root`."""
    real_tool = "/lib64/ld-linux-x86-64.so.2" if tool == "ld.so" else "/usr/bin/ldd"
    # chroot in the child itself: a chroot(8) process would be traced by the host's loader instead
    real = subprocess.run([real_tool, *args], env=env, capture_output=True, timeout=60,
                          preexec_fn=lambda: (os.chroot(root), os.chdir("/")))
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sim = subprocess.run([sys.executable, "-m", "ldsim", tool, "-i", "--root", root, *eargs, *args],
                         env={"PYTHONPATH": here, "PATH": os.environ.get("PATH", "")},
                         capture_output=True, timeout=60)
    assert (mask(sim.stdout), mask(sim.stderr), sim.returncode) == \
        (mask(real.stdout), mask(real.stderr), real.returncode)


def test_listing_and_search_inside_the_root(root: str) -> None:
    _compare(root, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs,files,versions"}, ["/usr/bin/prog"])


def test_library_path_inside_the_root(root: str) -> None:
    _compare(root, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", "LD_LIBRARY_PATH": "/opt/lib:/nonexistent"},
             ["/usr/bin/prog"])


def test_the_host_libraries_are_not_used(root: str) -> None:
    """The root's libz needs libzdep.so; the host's does not: it must appear in the listing."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-m", "ldsim", "ldd", "-i", "--root", root, "/usr/bin/prog"],
                         env={"PYTHONPATH": here}, capture_output=True, text=True, timeout=60).stdout
    assert "libzdep.so => /lib/x86_64-linux-gnu/libzdep.so" in out or \
        "libzdep.so => /usr/lib/x86_64-linux-gnu/libzdep.so" in out, out


def test_root_dir_in_library_path_inside_the_root(root: str) -> None:
    """"/" in LD_LIBRARY_PATH: after its first miss, stat("") marks it nonexisting (not the root itself)."""
    _compare(root, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", "LD_LIBRARY_PATH": "/:/opt/lib:/"},
             ["/usr/bin/prog"])


@pytest.fixture(scope="module")
def hwcaps_root(tmp_path_factory) -> str:
    """libbar.so.2 and its dependency libfoo.so.1, each plain and in glibc-hwcaps/x86-64-v2, cached."""
    r = str(tmp_path_factory.mktemp("hwcapsroot"))
    objs = []
    for sub in ("", "glibc-hwcaps/x86-64-v2/"):
        objs += [LibSpec(f"opt/a/{sub}libbar.so.2", soname="libbar.so.2", needed=("libfoo.so.1",), libc=False),
                 LibSpec(f"opt/a/{sub}libfoo.so.1", soname="libfoo.so.1", libc=False)]
    build_world(WorldSpec((*objs, ProgSpec("usr/bin/prog", needed=("libbar.so.2",)))), r)
    add_host_glibc(r)
    with open(f"{r}/etc/ld.so.conf", "w") as f:
        f.write("/opt/a\n")
    subprocess.run(["ldconfig", "-r", r, "-X"], check=True)
    return r


@pytest.mark.parametrize("args", [["--list", "libbar.so.2"], ["libbar.so.2"], ["/usr/bin/prog"]])
def test_hwcaps_priorities_of_a_startup_cache_lookup_stay(hwcaps_root: str, args: list[str]) -> None:
    """`ld.so NAME` looks NAME up in the cache before _dl_init_paths: no glibc-hwcaps subdirectory is
    active, and the priority array made then (all 0) is kept, so the dependencies skip them too."""
    _compare(hwcaps_root, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}, args)


@pytest.mark.parametrize("cache", ["directory", "empty", "garbage", "missing", "dangling", "loop"])
def test_unusable_cache_files(tmp_path, cache: str) -> None:
    """An /etc/ld.so.cache that cannot be used: lookups fail quietly, but the errno of the failed
    open or mmap (a directory: ENODEV, 'Error 19' in ld.so's own strerror) ends up in the message
    of a search that opened nothing else."""
    r = str(tmp_path)
    build_world(WorldSpec((LibSpec("opt/lib/libfoo.so.1", soname="libfoo.so.1", libc=False),
                           ProgSpec("usr/bin/prog", needed=("libfoo.so.1",)))), r)
    add_host_glibc(r)
    c = f"{r}/etc/ld.so.cache"
    if cache == "directory":
        os.mkdir(c)
    elif cache in ("empty", "garbage"):
        with open(c, "wb") as f:
            f.write(b"" if cache == "empty" else b"not a cache" * 9)
    elif cache != "missing":
        os.symlink("/nowhere" if cache == "dangling" else "ld.so.cache", c)
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
    _compare(r, env, ["--list", "libfoo.so.1"])
    _compare(r, env, ["/usr/bin/prog"])


def _add_ldd(root: str) -> None:
    """bash, its libtinfo and the ldd script inside the root, so the real ldd can run chrooted."""
    os.makedirs(f"{root}/usr/bin", exist_ok=True)
    shutil.copy2(os.path.realpath("/lib/x86_64-linux-gnu/libtinfo.so.6"), f"{root}/{MULTIARCH}/libtinfo.so.6")
    shutil.copy2("/bin/bash", f"{root}/usr/bin/bash")
    shutil.copy2("/usr/bin/ldd", f"{root}/usr/bin/ldd")
    os.symlink("usr/bin", f"{root}/bin")


def _compare_ldd(root: str, env: dict[str, str], args: list[str]) -> None:
    _compare(root, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}, args, tool="ldd")


@pytest.mark.parametrize("preload", ["/nowhere.so\t/opt/lib32/libfoo.so.1 /opt/lib/libfoo.so.1\n",
                                     "/opt/lib/libneedy.so\n"])
@pytest.mark.parametrize("env", [{}, {"LD_DEBUG": "libs"}])
def test_ldd_under_the_roots_ld_so_preload(tmp_path, preload: str, env: dict[str, str]) -> None:
    """The root's /etc/ld.so.preload is read by the loader of ldd's own bash too: its ignored entries are
    printed on ldd's stderr before the script runs, and an entry whose dependency is missing ends bash
    (exit 127) before ldd looks at any file."""
    r = str(tmp_path)
    build_world(WorldSpec((LibSpec("opt/lib/libfoo.so.1", soname="libfoo.so.1", libc=False),
                           LibSpec("opt/lib32/libfoo.so.1", soname="libfoo.so.1", libc=False, cflags=("-m32",)),
                           LibSpec("opt/lib/libneedy.so", soname="libneedy.so", needed=("libgone.so.9",),
                                   libc=False),
                           ProgSpec("usr/bin/prog", needed=("libfoo.so.1",), rpath="/opt/lib"))), r)
    add_host_glibc(r)
    _add_ldd(r)
    with open(f"{r}/etc/ld.so.preload", "w") as f:
        f.write(preload)
    _compare_ldd(r, env, ["/usr/bin/prog"])


def _compare_exec(root: str, env: dict[str, str], prog: str) -> None:
    """The program executed inside the root (the kernel maps its PT_INTERP) vs `ldsim run --root`."""
    real = subprocess.run([prog], env=env, capture_output=True, timeout=60,
                          preexec_fn=lambda: (os.chroot(root), os.chdir("/")))
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sim = subprocess.run([sys.executable, "-m", "ldsim", "run", "-i", "--root", root, *eargs, prog],
                         env={"PYTHONPATH": here, "PATH": os.environ.get("PATH", "")},
                         capture_output=True, timeout=60)
    assert (mask(sim.stdout), mask(sim.stderr), sim.returncode) == \
        (mask(real.stdout), mask(real.stderr), real.returncode)


@pytest.fixture(scope="module")
def origin_root(tmp_path_factory) -> str:
    """A program whose DT_RUNPATH is $ORIGIN/../lib, and its library there."""
    r = str(tmp_path_factory.mktemp("originroot"))
    build_world(WorldSpec((LibSpec("opt/app/lib/libo.so.1", soname="libo.so.1", libc=False),
                           ProgSpec("opt/app/bin/prog", needed=("libo.so.1",), runpath="$ORIGIN/../lib"))), r)
    add_host_glibc(r)
    return r


@pytest.mark.parametrize("proc", ["absent", "planted", "mounted"])
@pytest.mark.parametrize("env", [{}, {"LD_ORIGIN_PATH": "/opt/app/bin//"}, {"LD_ORIGIN_PATH": ""},
                                 {"LD_LIBRARY_PATH": "$ORIGIN/../lib:/x", "LD_ORIGIN_PATH": "/opt/app/bin"}])
def test_exec_origin_comes_from_the_roots_proc(origin_root: str, proc: str, env: dict[str, str]) -> None:
    """An executed program's $ORIGIN is the directory of readlink("/proc/self/exe") (_dl_get_origin):
    inside a root without procfs on /proc that fails (LD_ORIGIN_PATH, else no $ORIGIN: the RUNPATH
    $ORIGIN/../lib is dropped), a link planted in the root's own /proc is believed, a mounted procfs
    names the program.  Also ld.so --help, whose $ORIGIN is the loader's own."""
    r = origin_root
    shutil.rmtree(f"{r}/proc", ignore_errors=True)
    if proc == "planted":
        os.makedirs(f"{r}/proc/self")
        os.symlink("/opt/app/bin/elsewhere", f"{r}/proc/self/exe")
    elif proc == "mounted":
        os.makedirs(f"{r}/proc")
        if subprocess.run(["mount", "--bind", "/proc", f"{r}/proc"], capture_output=True).returncode:
            pytest.skip("needs bind mounts")
    try:
        _compare_exec(r, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", **env}, "/opt/app/bin/prog")
        _compare(r, {"LD_LIBRARY_PATH": "$ORIGIN/x:/y", **env}, ["--help"])
    finally:
        if proc == "mounted":
            subprocess.run(["umount", "-l", f"{r}/proc"], capture_output=True)


def _ldsim_ldso(root: str, env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess:
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, "-m", "ldsim", "ld.so", "-i", "--root", root, *eargs, *args],
                          env={"PYTHONPATH": here, "PATH": os.environ.get("PATH", "")}, capture_output=True,
                          timeout=60)


@pytest.mark.parametrize("outdir", ["absent", "present", "symlinked"])
def test_debug_output_file_inside_the_root(root: str, tmp_path, outdir: str) -> None:
    """LD_DEBUG_OUTPUT=DIR/dbg names a file of the root: the trace goes to ROOT/DIR/dbg.PID (DIR resolved
    inside the root), or to stdout when it cannot be created there, whatever the host has at DIR."""
    made = []
    for who in ("real", "sim"):
        d = f"{tmp_path}/{who}"
        os.makedirs(d)  # the host's own directory of that name must not be used
        inside = f"{root}{d}"
        if outdir == "present":
            os.makedirs(inside)
        elif outdir == "symlinked":
            os.makedirs(f"{root}/var{d}")
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(f"/var{d}", inside)
        made.append(d)
    envs = [{"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": f"{d}/dbg"} for d in made]
    try:
        real = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "/usr/bin/prog"], env=envs[0], capture_output=True,
                              timeout=60, preexec_fn=lambda: (os.chroot(root), os.chdir("/")))
        sim = _ldsim_ldso(root, envs[1], ["/usr/bin/prog"])
        files = []
        for d in made:
            names = os.listdir(f"{root}{d}") if os.path.isdir(f"{root}{d}") else []
            files.append(mask(open(f"{root}{d}/{names[0]}", "rb").read()) if len(names) == 1 else names)
            assert os.listdir(d) == [], "a file was written outside the root"
        assert (mask(sim.stdout), mask(sim.stderr), sim.returncode, files[1]) == \
            (mask(real.stdout), mask(real.stderr), real.returncode, files[0])
    finally:
        top = f"{root}/{str(tmp_path).split('/')[1]}"
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(f"{root}/var", ignore_errors=True)


@pytest.mark.parametrize("args", [["/usr/bin/prog"], ["/usr/bin/prog/"], ["--list", "/usr/bin/prog/."]])
def test_trailing_slash_after_a_file_inside_the_root(root: str, args: list[str]) -> None:
    """A name ending in '/' must be a directory: "libfoo.so.1/" (also through the /lib symlink) is
    ENOTDIR for the kernel, so the preload cannot be opened and a program so named cannot be loaded."""
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs",
           "LD_PRELOAD": "/opt/lib/libfoo.so.1/ /lib/x86_64-linux-gnu/libz.so.1/ /opt/lib/ /opt/lib/libfoo.so.1/."}
    _compare(root, env, args)


@pytest.mark.parametrize("content", [
    b"# none\n#/nowhere/a.so\n/nowhere/b.so\n", b"/nowhere/a.so #c1\n/nowhere/b.so #c2\n/nowhere/c.so\n#c3\n/d.so",
    b"/nowhere/a.so\x00/nowhere/b.so\n/nowhere/c.so", b"/nowhere/a.so\n\x00", b"/opt/lib/libfoo.so.1#x:y\n#z"])
def test_ld_so_preload_file_parsing(root: str, content: bytes) -> None:
    """dl_main's parse of /etc/ld.so.preload: each later '#' is searched from the file's start in a window
    shrunk by what the previous comments took, so comments after the first may be read as names; a NUL
    ends the text that is split; a last name without separator is loaded after the others."""
    path = f"{root}/etc/ld.so.preload"
    with open(path, "wb") as f:
        f.write(content)
    try:
        _compare(root, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}, ["/usr/bin/prog"])
    finally:
        os.unlink(path)


def test_why_names_an_unknown_origin(origin_root: str) -> None:
    """`ldsim why` says why the RUNPATH $ORIGIN/../lib was not searched when the real loader, executing the
    program in a root without procfs, cannot know $ORIGIN (and so does not find the library)."""
    r = origin_root
    shutil.rmtree(f"{r}/proc", ignore_errors=True)
    real = subprocess.run(["/opt/app/bin/prog"], env={"LD_TRACE_LOADED_OBJECTS": "1"}, capture_output=True,
                          timeout=60, preexec_fn=lambda: (os.chroot(r), os.chdir("/")))
    assert b"libo.so.1 => not found" in real.stdout
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    why = subprocess.run([sys.executable, "-m", "ldsim", "why", "-i", "--root", r, "/opt/app/bin/prog", "libo.so.1"],
                         env={"PYTHONPATH": here, "PATH": os.environ.get("PATH", "")}, capture_output=True,
                         text=True, timeout=60)
    assert why.returncode == 1 and "$ORIGIN of the executable is unknown" in why.stdout, why.stdout


@pytest.mark.parametrize("env", [{"LD_LIBRARY_PATH": "/opt/fakelibc"}, {"LD_LIBRARY_PATH": "/opt/faketinfo"},
                                 {"LD_LIBRARY_PATH": "/opt/faketinfo", "LD_BIND_NOW": "1"}])
def test_ldd_when_library_path_replaces_bash_libraries(tmp_path, env: dict[str, str]) -> None:
    """LD_LIBRARY_PATH reaches ldd's own bash first: a libc.so.6 or libtinfo.so.6 there that lacks what
    bash needs makes bash's loader warn (no version information) and die of a symbol lookup error
    (exit 127) before the script looks at any file."""
    r = str(tmp_path)
    build_world(WorldSpec((LibSpec("opt/fakelibc/libc.so.6", soname="libc.so.6", libc=False),
                           LibSpec("opt/faketinfo/libtinfo.so.6", soname="libtinfo.so.6", libc=False),
                           ProgSpec("usr/bin/prog", needed=("libtinfo.so.6",)))), r)
    add_host_glibc(r)
    _add_ldd(r)
    _compare_ldd(r, env, ["/usr/bin/prog"])


@pytest.mark.parametrize("interp", ["/opt/missing/ld.so", "/opt", "/lib64/ld-linux-x86-64.so.2/"])
def test_exec_needs_the_program_interpreter_inside_the_root(tmp_path, interp: str) -> None:
    """The kernel opens PT_INTERP inside the root: when it cannot (absent, a directory, a trailing slash
    after a file), execve itself fails with that errno and no loader runs; ldsim ran the root's default
    loader anyway.  (`ldsim run` reports a failed execve on stderr, exit 3.)"""
    r = str(tmp_path)
    build_world(WorldSpec((LibSpec("opt/lib/libfoo.so.1", soname="libfoo.so.1", libc=False),
                           ProgSpec("usr/bin/prog", needed=("libfoo.so.1",), rpath="/opt/lib"))), r)
    add_host_glibc(r)
    subprocess.run(["patchelf", "--set-interpreter", interp, f"{r}/usr/bin/prog"], check=True)
    with pytest.raises(OSError) as real:
        subprocess.run(["/usr/bin/prog"], env={"LD_TRACE_LOADED_OBJECTS": "1"}, capture_output=True, timeout=60,
                       preexec_fn=lambda: (os.chroot(r), os.chdir("/")))
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sim = subprocess.run([sys.executable, "-m", "ldsim", "run", "-i", "--root", r, "-e", "LD_TRACE_LOADED_OBJECTS=1",
                          "/usr/bin/prog"], env={"PYTHONPATH": here, "PATH": os.environ.get("PATH", "")},
                         capture_output=True, text=True, timeout=60)
    assert (sim.stdout, sim.returncode) == ("", 3)
    assert f"cannot execute: program interpreter {interp}: {os.strerror(real.value.errno)}" in sim.stderr


def test_symlink_target_with_a_trailing_slash_inside_the_root(tmp_path) -> None:
    """A symlink whose target ends in '/' leads only to a directory: `lnk -> /opt/lib/libfoo.so.1/` is
    ENOTDIR for the kernel (the preload fails), `dl -> /opt/lib/` works as a directory."""
    r = str(tmp_path)
    build_world(WorldSpec((LibSpec("opt/lib/libfoo.so.1", soname="libfoo.so.1", libc=False),
                           ProgSpec("usr/bin/prog", needed=("libfoo.so.1",)))), r)
    add_host_glibc(r)
    os.makedirs(f"{r}/opt/s")
    os.symlink("/opt/lib/libfoo.so.1/", f"{r}/opt/s/lnk")
    os.symlink("../lib/libfoo.so.1/", f"{r}/opt/s/lnk2")
    os.symlink("/opt/lib/", f"{r}/opt/s/dl")
    _compare(r, {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", "LD_PRELOAD": "/opt/s/lnk /opt/s/lnk2",
                 "LD_LIBRARY_PATH": "/opt/s/dl"}, ["/usr/bin/prog"])
