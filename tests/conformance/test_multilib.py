"""Multilib worlds on this x86-64 host: i386, x86-64 and x32 files side by side, each listed by the real
`ldd` (whose RTLDLIST loop tries /lib/ld-linux.so.2, /lib64/ld-linux-x86-64.so.2, /libx32/ld-linux-x32.so.2
in turn), executed by the kernel, or run by the i386 loader, against ldsim at test time.

Debian packages: gcc-multilib (libc6-i386, libc6-x32 and gcc -mx32).  Each part skips with its reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same
from tests.conformance.test_foreign import FIB, MAIN, MAIN0, _cc, _need, _need_m32

pytestmark = pytest.mark.conformance
RTLDX32 = "/libx32/ld-linux-x32.so.2"


def _need_x32_refused() -> None:
    """gcc -mx32 links, the x32 loader is installed, and the kernel does not execute x32 code (with x32,
    the x32 loader would list the file, and that loader is not simulated)."""
    from ldsim.kernelabi import probe_x32
    _need_m32()
    _need(RTLDX32, packages=("libc6-x32",))
    if probe_x32():
        pytest.skip("this kernel executes x32 programs: the x32 loader is not simulated")
    p = subprocess.run(["gcc", "-mx32", "-x", "c", "-o", os.devnull, "-"], input=MAIN0, capture_output=True,
                       text=True, timeout=120)
    if p.returncode:
        pytest.skip("gcc -mx32 cannot link (Debian: gcc-multilib, libc6-dev-x32)")


@pytest.fixture(scope="module")
def abis(tmp_path_factory) -> str:
    """One program and one library of each ABI: i386 (m32, lib32/libf.so), x86-64 (m64, lib64/libf.so) and
    x32 (mx32, libx32/libf.so), each program needing libf.so through its RUNPATH."""
    _need_x32_refused()
    d = str(tmp_path_factory.mktemp("abis"))
    _build_abis(d, (("32", "-m32"), ("64", "-m64"), ("x32", "-mx32")), rpath=True)
    return d


def _build_abis(d: str, abis, rpath: bool = False) -> None:
    """For each (abi, gcc flag): d/libABI/libf.so and d/mABI needing it (with an RPATH to it, or none)."""
    for abi, flag in abis:
        os.makedirs(f"{d}/lib{abi}")
        _cc(["gcc", flag, "-shared", "-fPIC"], f"{d}/lib{abi}/libf.so", FIB)
        _cc(["gcc", flag], f"{d}/m{abi}", MAIN, f"-L{d}/lib{abi}", "-lf",
            *([f"-Wl,-rpath,{d}/lib{abi}"] if rpath else []))


LDD_CALLS = [
    ["mx32"],
    ["m32", "m64", "mx32", "libx32/libf.so", "m32"],
    ["-r", "libx32/libf.so", "lib32/libf.so"],
    ["-v", "mx32", "m64"],
]


@pytest.mark.parametrize("debug", ["", "libs"])
@pytest.mark.parametrize("args", LDD_CALLS, ids=["-".join(a) for a in LDD_CALLS])
def test_ldd_skips_the_x32_loader_the_kernel_cannot_run(abis: str, args: list[str], debug: str) -> None:
    """The kernel has no x32 ABI: the script's `RTLD --version` fails for /libx32/ld-linux-x32.so.2, which
    it then skips, so an x32 file is `not a dynamic executable` (exit 1) after the i386 and x86-64 loaders'
    `--verify` refused it, and the other files are listed as usual (ldsim said the x32 loader was not
    simulated, exit 3).  Under LD_DEBUG the subshell that tried it exits with bash's fini lines."""
    env = {"LD_DEBUG": debug} if debug else {}
    argv = [a if a.startswith("-") else f"{abis}/{a}" for a in args]
    assert_same(oracle.real_ldd(argv, env, abis), oracle.ldsim_ldd(argv, env, abis))


def test_exec_of_an_x32_program_fails_with_enoexec(abis: str) -> None:
    """execve of an x32 program on a kernel without x32: ENOEXEC before any loader runs (ldsim ran the
    x86-64 loader on it and exited 0).  `ldsim run` reports a failed execve on stderr, exit 3."""
    prog = f"{abis}/mx32"
    with pytest.raises(OSError) as real:
        subprocess.run([prog], env={"LD_TRACE_LOADED_OBJECTS": "1"}, capture_output=True, timeout=60)
    assert real.value.errno == errno.ENOEXEC
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "-e", "LD_TRACE_LOADED_OBJECTS=1", prog],
                     oracle._own_env())
    assert (sim.stdout, sim.stderr, sim.status) == (
        b"", f"ldsim: {prog}: cannot execute: {os.strerror(real.value.errno)}\n".encode(), 3)


INTERPS = {
    "64-bit-program-i386-loader": ("-m64", "/lib/ld-linux.so.2"),
    "i386-program-x86-64-loader": ("-m32", "/lib64/ld-linux-x86-64.so.2"),
    "i386-program-x32-loader": ("-m32", RTLDX32),
    "64-bit-program-text-file": ("-m64", "{d}/text"),
    "i386-program-text-file": ("-m32", "{d}/text"),
    "64-bit-program-no-x-bit": ("-m64", "{d}/noexec"),
}


@pytest.mark.parametrize("case", INTERPS)
def test_exec_wants_an_interpreter_of_the_programs_own_binfmt(tmp_path, case: str) -> None:
    """execve reads PT_INTERP's ELF header in the program's class: too short is EIO, not ELF or not of the
    program's binfmt (elf_check_arch, compat_elf_check_arch, e_phentsize) is ELIBBAD, a file without any
    x bit is EACCES (fs/binfmt_elf.c load_elf_binary, open_exec).  ldsim ran the interpreter's loader on
    the program, or the default one on a text file."""
    flag, interp = INTERPS[case]
    _need_m32()
    if "x32" in case:
        _need_x32_refused()
    d = str(tmp_path)
    with open(f"{d}/text", "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(f"{d}/text", 0o755)
    with open(f"{d}/noexec", "wb") as f, open("/lib64/ld-linux-x86-64.so.2", "rb") as g:
        f.write(g.read())
    os.chmod(f"{d}/noexec", 0o644)
    interp = interp.replace("{d}", d)
    _cc(["gcc", flag], f"{d}/prog", MAIN0)
    subprocess.run(["patchelf", "--set-interpreter", interp, f"{d}/prog"], check=True)
    try:
        subprocess.run([f"{d}/prog"], env={"LD_TRACE_LOADED_OBJECTS": "1"}, capture_output=True, timeout=60)
    except OSError as e:
        want = f"ldsim: {d}/prog: cannot execute: program interpreter {interp}: {os.strerror(e.errno)}\n"
        real = (b"", want.encode(), 3)
    else:
        pytest.fail("the kernel ran it")
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "-e", "LD_TRACE_LOADED_OBJECTS=1", f"{d}/prog"],
                     oracle._own_env())
    assert (sim.stdout, sim.stderr, sim.status) == real


RTLD32 = "/lib/ld-linux.so.2"
LOADER_RUNS = [
    ([], {}),
    ([], {"LD_TRACE_LOADED_OBJECTS": "1"}),
    (["{d}/m32"], {"LD_DEBUG": "libs"}),
    (["--list", "{d}/m64"], {}),
    (["--library-path", "{d}/lib32", "{d}/m32"], {"LD_TRACE_LOADED_OBJECTS": "1"}),
]


@pytest.mark.parametrize("args,env", LOADER_RUNS, ids=[str(i) for i in range(len(LOADER_RUNS))])
def test_exec_of_the_i386_loader_runs_it_by_its_own_rules(tmp_path, args: list[str], env: dict[str, str]) -> None:
    """`exec /lib/ld-linux.so.2 ARGS` (no PT_INTERP: ld.so itself is the program) parses its own options
    with the i386 build's rules; ldsim judged the file by the default x86-64 profile, found no loader
    there, and called it a static program."""
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    d = str(tmp_path)
    _build_abis(d, (("32", "-m32"), ("64", "-m64")))
    argv = [RTLD32, *(a.replace("{d}", d) for a in args)]
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", *eargs, *argv], oracle._own_env(), d)
    assert_same(oracle.run(argv, dict(env), d), sim)


@pytest.mark.parametrize("flag", ["-m64", "-m32"])
def test_exec_with_a_library_as_interpreter_faults(tmp_path, flag: str) -> None:
    """PT_INTERP naming a library of the program's own ABI: the kernel maps it and jumps to its entry
    point, e_entry 0, its read-only ELF header: SIGSEGV before anything is printed (ldsim ran the default
    loader's rules on the program as if that library were ld.so)."""
    if flag == "-m32":
        _need_m32()
    d = str(tmp_path)
    _cc(["gcc", flag, "-shared", "-fPIC"], f"{d}/libf.so", FIB)
    _cc(["gcc", flag], f"{d}/prog", MAIN0)
    subprocess.run(["patchelf", "--set-interpreter", f"{d}/libf.so", f"{d}/prog"], check=True)
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", *eargs, f"{d}/prog"], oracle._own_env(), d)
    assert_same(oracle.run([f"{d}/prog"], env, d), sim)


ORDER_ENVS = {
    "auxv-then-debug": {"LD_SHOW_AUXV": "1", "LD_DEBUG": "bogus,libs"},
    "debug-then-auxv": {"LD_DEBUG": "bogus,libs", "LD_SHOW_AUXV": "1"},
}


@pytest.mark.parametrize("args", [["m32"], ["-u", "m32", "m64"]], ids=["one", "unused-two"])
@pytest.mark.parametrize("env", ORDER_ENVS)
def test_ldd_traces_in_bashs_export_order(tmp_path, env: str, args: list[str]) -> None:
    """ldd's trace gets its environment from bash: the temporary LD_TRACE_LOADED_OBJECTS... assignments,
    then the exported variables in the order of bash's variable hash table (FNV-1, 1024 buckets), not the
    caller's.  So the traced loader prints LD_SHOW_AUXV's vector before LD_DEBUG's warning whatever their
    order (process_envvars reads them in environment order); ldsim kept the caller's order."""
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    d = str(tmp_path)
    _build_abis(d, (("32", "-m32"), ("64", "-m64")))
    full = {**ORDER_ENVS[env], "LD_LIBRARY_PATH": f"{d}/lib32:{d}/lib64"}
    argv = [a if a.startswith("-") else f"{d}/{a}" for a in args]
    assert_same(oracle.real_ldd(argv, full, d), oracle.ldsim_ldd(argv, full, d))


def test_bash_export_order_is_bashs() -> None:
    """lddscript.bash_export_order against bash itself: `NAME=VALUE... env` run by `bash -c` with an
    environment of many names (hash collisions in the 4-bucket temporary table and chains in the
    1024-bucket global one included) lists its environment in the predicted order."""
    import shutil
    from ldsim.lddscript import bash_export_order
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash")
    exported = tuple((f"V{i}_{c}", str(i)) for i, c in enumerate("QWERTYUIOPASDFGHJKLZXCVBNM" * 3))
    temporary = (("T1", "a"), ("LONGER_NAME", ""), ("V3_R", "shadow"), ("T2", "b"), ("T3", "c"), ("T4", "d"))
    script = " ".join(f"{k}={v}" if v else f"{k}=" for k, v in temporary) + " /usr/bin/env"
    p = subprocess.run([bash, "-c", script], env=dict(exported), capture_output=True, text=True, timeout=60)
    names = [line.split("=", 1)[0] for line in p.stdout.splitlines()]
    real = [n for n in names if n not in ("PWD", "SHLVL", "_")]
    assert real == [k for k, _ in bash_export_order(temporary, exported)]


# ------------------------------------------------------------------ a biarch root, listed by its own ldd


@pytest.fixture(scope="module")
def biarch_root(tmp_path_factory) -> str:
    """A copy of this machine's loaders in a root: x86-64 glibc, libc6-i386's /lib32 loader and libc,
    the x32 loader (which this kernel does not run), bash and the ldd script; i386 and x86-64 builds of
    libq.so.1 in /opt/l32 and /opt/l64 and their legacy hwcap subdirectories, cached by `ldconfig -r`
    (hwcap-flagged entries, i386 ones flagged ELF); programs of each ABI."""
    import shutil
    from tests.conformance.conftest import add_host_glibc
    from tests.conformance.test_sysroot import _add_ldd
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    r = str(tmp_path_factory.mktemp("biarch"))
    add_host_glibc(r)
    _add_ldd(r)
    os.makedirs(f"{r}/usr/lib32")
    for name in ("ld-linux.so.2", "libc.so.6"):
        shutil.copy2(f"/usr/lib32/{name}", f"{r}/usr/lib32/{name}")
    os.symlink("usr/lib32", f"{r}/lib32")
    os.symlink("/lib32/ld-linux.so.2", f"{r}/usr/lib/ld-linux.so.2")
    x32 = os.path.exists(RTLDX32)
    if x32:
        os.makedirs(f"{r}/usr/libx32")
        shutil.copy2(RTLDX32, f"{r}/usr/libx32/ld-linux-x32.so.2")
        os.symlink("usr/libx32", f"{r}/libx32")
    q = FIB.replace("f(", "q(")
    for abi, flag in (("32", "-m32"), ("64", "-m64")):
        for sub in ("", "/i686", "/sse2", "/tls", "/i686/sse2", "/x86_64"):
            os.makedirs(f"{r}/opt/l{abi}{sub}", exist_ok=True)
            _cc(["gcc", flag, "-shared", "-fPIC", "-Wl,-soname,libq.so.1"], f"{r}/opt/l{abi}{sub}/libq.so.1", q)
        os.makedirs(f"{r}/app/lib{abi}", exist_ok=True)
        _cc(["gcc", flag, "-shared", "-fPIC"], f"{r}/app/lib{abi}/libf.so", FIB)
        _cc(["gcc", flag], f"{r}/app/q{abi}", "int q(void);\n" + MAIN0.replace("0;", "q();"),
            f"{r}/opt/l{abi}/libq.so.1")
        _cc(["gcc", flag], f"{r}/app/p{abi}", MAIN, f"-L{r}/app/lib{abi}", "-lf", "-Wl,-rpath,/app/$LIB:/app/lib32")
    os.rename(f"{r}/app/lib64", f"{r}/app/lib")  # $LIB: lib32 for the i386 loader, lib for Debian's x86-64
    if x32:  # an x32 program where gcc -mx32 links (else the runs leave it out)
        subprocess.run(["gcc", "-mx32", "-o", f"{r}/app/mx32", "-x", "c", "-"], input=MAIN0, text=True,
                       capture_output=True, timeout=120)
    with open(f"{r}/etc/ld.so.conf", "w") as f:
        f.write("/opt/l64\n/opt/l32\n")
    if subprocess.run(["/sbin/ldconfig", "-r", r], capture_output=True, timeout=120).returncode:
        pytest.skip("ldconfig -r failed")
    return r


BIARCH_RUNS = [
    ([], "q32 q64 p32 p64 mx32 /lib32/libc.so.6", {}),
    (["-v"], "q32 p64", {}),
    ([], "q32 mx32 p64", {"LD_DEBUG": "libs"}),
    ([], "q32 q64", {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-SSE2"}),
]


@pytest.mark.parametrize("opts,progs,env", BIARCH_RUNS, ids=[str(i) for i in range(len(BIARCH_RUNS))])
def test_biarch_root_ldd(biarch_root: str, opts: list[str], progs: str, env: dict[str, str]) -> None:
    """The root's own ldd run chrooted against `ldsim ldd --root`: the i386 loader picked from RTLDLIST
    for 32-bit files, the cache's hwcap entries chosen per loader, $LIB per loader, the x32 loader
    skipped (its --version cannot run), x32 files not dynamic executables."""
    r = biarch_root
    files = [p if p.startswith("/") else f"/app/{p}" for p in progs.split()]
    files = [f for f in files if os.path.exists(r + f)]
    full = {"PATH": "/usr/bin:/bin", **env}
    real = subprocess.run(["/usr/bin/ldd", *opts, *files], env=full, capture_output=True, timeout=60,
                          preexec_fn=lambda: (os.chroot(r), os.chdir("/")))
    eargs = [a for k, v in full.items() for a in ("-e", f"{k}={v}")]
    sim = oracle.run([sys.executable, "-m", "ldsim", "ldd", "--root", r, "-i", *eargs, *opts, *files],
                     oracle._own_env())
    assert_same(oracle.Outcome(oracle.mask(real.stdout), oracle.mask(real.stderr), real.returncode), sim)
