"""Loaders of other roots and architectures, each against its own real loader at test time:

- i386 on this host (libc6-i386, the biarch /lib/ld-linux.so.2 -> /lib32): the real `ldd` (whose RTLDLIST
  loop picks the i386 loader for 32-bit files) vs `ldsim ldd`, with LD_DEBUG=libs traces;
- an i386 multiarch root (Debian's libc6:i386 unpacked with dpkg-deb): its loader run chrooted vs
  `ldsim ld.so --root` / `ldsim ldd --root`, the profile detected from the root's ld.so;
- an aarch64 root (libc6-arm64-cross's loader and libc): qemu-user executing the program under the
  root's loader with LD_TRACE_LOADED_OBJECTS and LD_DEBUG=libs vs `ldsim run --root` / `ldsim ldd --root`
  (qemu-user 7.2 maps no vDSO, so the `linux-vdso.so.1` line is dropped from ldsim's side);
- a musl root: `ld-musl-x86_64.so.1 --list` run chrooted vs `ldsim ldd --root` and `ldsim ld.so --root`,
  relocation errors ("Error relocating ...: symbol not found") included.

Debian packages: gcc-multilib (libc6-i386), musl musl-tools, qemu-user, gcc-aarch64-linux-gnu
(libc6-arm64-cross); libc6:i386 is fetched with `apt-get download` (needs `dpkg --add-architecture i386`).
Each part skips with its reason when its tools are missing.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance
FIB = "int f(void){return 1;}\n"
GIB = "int g(void){return 2;}\n"
FG = "int g(void); int f(void){return g();}\n"
MAIN = "int f(void); int main(void){return f();}\n"
MAIN0 = "int main(void){return 0;}\n"


def _sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


def _need(*tools: str, packages: tuple[str, ...] = ()) -> None:
    """Skip unless every tool (a command or an absolute path) is there; try apt-get once when root."""
    def missing() -> list[str]:
        return [t for t in tools if not (os.path.exists(t) if t.startswith("/") else shutil.which(t))]
    if missing() and packages and os.geteuid() == 0 and shutil.which("apt-get"):
        _sh(["apt-get", "install", "-y", "-qq", *packages],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if missing():
        pytest.skip(f"needs {', '.join(missing())} (Debian: {' '.join(packages) or 'n/a'})")


def _m32() -> bool:
    """gcc can build 32-bit x86 programs (gcc-multilib)."""
    if not shutil.which("gcc"):
        return False
    p = subprocess.run(["gcc", "-m32", "-x", "c", "-o", os.devnull, "-"], input=MAIN0, capture_output=True,
                       text=True, timeout=120)
    return p.returncode == 0


def _need_m32() -> None:
    _need("gcc", packages=("gcc-multilib",))
    if not _m32():
        _need("/usr/lib32/crt1.o", packages=("gcc-multilib",))
        if not _m32():
            pytest.skip("gcc -m32 cannot link (Debian: gcc-multilib)")


def _cc(cc: list[str], out: str, src: str, *flags: str) -> None:
    path = out + ".c"
    with open(path, "w") as f:
        f.write(src)
    p = _sh([*cc, "-o", out, path, *flags])
    if p.returncode:
        pytest.fail(f"{' '.join(cc)} failed: {p.stderr}")
    os.unlink(path)


def _ldsim(args: list[str], env: dict[str, str] | None = None) -> oracle.Outcome:
    """`ldsim CMD [--root R] -i -e K=V ... ARGS`: args = [CMD, "--root", R, *ARGS]."""
    eargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    cmd, rest = args[0], args[1:]
    own = rest[:2] if rest[:1] in (["--root"], ["--profile"]) else []
    return oracle.run([sys.executable, "-m", "ldsim", cmd, *own, "-i", *eargs, *rest[len(own):]],
                      oracle._own_env())


def _chrooted(root: str, argv: list[str], env: dict[str, str]) -> oracle.Outcome:
    def enter() -> None:
        os.chroot(root)
        os.chdir("/")
    p = subprocess.run(argv, env=env, capture_output=True, preexec_fn=enter, timeout=60)
    return oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)


def _drop(out: oracle.Outcome, pattern: bytes, stream: str = "stdout") -> oracle.Outcome:
    rx = re.compile(pattern)
    text = b"".join(line for line in getattr(out, stream).splitlines(keepends=True) if not rx.search(line))
    return oracle.Outcome(**{**out.__dict__, stream: text})


# ---------------------------------------------------------------------------------------------- i386 host


@pytest.fixture(scope="module")
def i386_host(tmp_path_factory) -> str:
    _need_m32()
    _need("/lib/ld-linux.so.2", packages=("libc6-i386",))
    d = str(tmp_path_factory.mktemp("i386"))
    cc = ["gcc", "-m32"]
    for sub in ("lib", "plat/i686", "lib32", "l64", "sys"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    _cc([*cc, "-shared", "-fPIC"], f"{d}/lib/libf.so", FIB)
    _cc([*cc, "-shared", "-fPIC"], f"{d}/plat/i686/libf.so", FIB)
    _cc([*cc, "-shared", "-fPIC"], f"{d}/lib32/libf.so", FIB)
    _cc(["gcc", "-shared", "-fPIC"], f"{d}/l64/libf.so", FIB)  # 64-bit: the i386 loader skips it
    _cc([*cc], f"{d}/runpath", MAIN, f"-L{d}/lib", "-lf", "-Wl,-rpath,$ORIGIN/lib", "-Wl,--enable-new-dtags")
    _cc([*cc], f"{d}/rpath", MAIN, f"-L{d}/lib", "-lf", f"-Wl,-rpath,{d}/plat", "-Wl,--disable-new-dtags")
    _cc([*cc], f"{d}/dst", MAIN, f"-L{d}/lib", "-lf", "-Wl,-rpath,$ORIGIN/$LIB:$ORIGIN/plat/$PLATFORM")
    _cc([*cc], f"{d}/missing", MAIN, f"-L{d}/lib", "-lf")
    _cc([*cc], f"{d}/plain", MAIN0)
    _cc(["gcc"], f"{d}/prog64", MAIN0)
    return d


I386_HOST_RUNS = [
    ("runpath", {"-v": ""}),
    ("runpath", {}),
    ("rpath", {}),
    ("dst", {}),
    ("missing", {}),
    ("missing", {"LD_LIBRARY_PATH": "{d}/l64:{d}/lib"}),
    ("plain", {}),
    ("prog64", {}),
]


@pytest.mark.parametrize("prog,env", I386_HOST_RUNS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(I386_HOST_RUNS)])
@pytest.mark.parametrize("debug", ["", "libs"])
def test_i386_host_ldd(i386_host: str, prog: str, env: dict[str, str], debug: str) -> None:
    """The real ldd picks /lib/ld-linux.so.2 for 32-bit files (RTLDLIST, `--verify`); ldsim must too.
    With LD_DEBUG (which would trace ldd's bash too) the i386 loader is run directly, traced."""
    d = i386_host
    full = {k: v.replace("{d}", d) for k, v in env.items()}
    opts = [k for k in full if k.startswith("-")]
    full = {k: v for k, v in full.items() if not k.startswith("-")}
    if not debug:
        argv = [*opts, f"{d}/{prog}"]
        assert_same(oracle.real_ldd(argv, full, d), oracle.ldsim_ldd(argv, full, d))
        return
    if prog == "prog64":
        pytest.skip("a 64-bit file is not the i386 loader's")
    full.update({"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": debug})
    real = oracle.run(["/lib/ld-linux.so.2", f"{d}/{prog}"], full, d)
    sim = _ldsim(["ld.so", "--profile", "debian-i386-biarch", f"{d}/{prog}"], full)
    assert_same(real, sim)


# ---------------------------------------------------------------------------------------------- i386 root


@pytest.fixture(scope="module")
def i386_root(tmp_path_factory) -> str:
    _need_m32()
    _need("dpkg-deb", "apt-get")
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    dl = str(tmp_path_factory.mktemp("debs"))
    p = _sh(["apt-get", "download", "libc6:i386"], cwd=dl)
    debs = glob.glob(f"{dl}/libc6_*_i386.deb")
    if not debs:
        pytest.skip(f"apt-get download libc6:i386 failed (dpkg --add-architecture i386?): {p.stderr.strip()[-200:]}")
    r = str(tmp_path_factory.mktemp("i386root"))
    _sh(["dpkg-deb", "-x", debs[0], r])
    for sub in ("app/lib/i386-linux-gnu", "usr/lib/i386-linux-gnu", "app/other"):
        os.makedirs(f"{r}/{sub}", exist_ok=True)
    cc = ["gcc", "-m32"]
    _cc([*cc, "-shared", "-fPIC"], f"{r}/usr/lib/i386-linux-gnu/libf.so", FIB)
    _cc([*cc, "-shared", "-fPIC"], f"{r}/app/lib/i386-linux-gnu/libg.so", GIB)
    _cc([*cc, "-shared", "-fPIC"], f"{r}/app/other/libf.so", FIB)
    _cc([*cc], f"{r}/app/sys", MAIN, f"-L{r}/usr/lib/i386-linux-gnu", "-lf")
    _cc([*cc], f"{r}/app/lib_dst", MAIN, f"-L{r}/usr/lib/i386-linux-gnu", "-lf",
        f"-L{r}/app/lib/i386-linux-gnu", "-lg", "-Wl,-rpath,/app/$LIB", "-Wl,--no-as-needed")
    _cc([*cc], f"{r}/app/missing", MAIN0 + "int g(void);int h(void){return g();}\n",
        f"-L{r}/app/lib/i386-linux-gnu", "-Wl,--no-as-needed", "-lg")
    # a cache of the root's own, made by ldconfig -r (its i386 entries carry flags 0x0003)
    os.makedirs(f"{r}/opt/lib32", exist_ok=True)
    _cc([*cc, "-shared", "-fPIC", "-Wl,-soname,libh.so.1"], f"{r}/opt/lib32/libh.so.1", GIB.replace("g(", "h("))
    _cc([*cc], f"{r}/app/cached", MAIN0 + "int h(void);int k(void){return h();}\n", f"{r}/opt/lib32/libh.so.1")
    with open(f"{r}/etc/ld.so.conf", "w") as f:
        f.write("/opt/lib32\n")
    if _sh(["/sbin/ldconfig", "-r", r]).returncode:
        pytest.skip("ldconfig -r failed")
    return r


I386_ROOT_RUNS = [
    ("/app/cached", {}),
    ("/app/sys", {}),
    ("/app/lib_dst", {}),
    ("/app/missing", {}),
    ("/app/sys", {"LD_LIBRARY_PATH": "/app/other"}),
]


@pytest.mark.parametrize("prog,env", I386_ROOT_RUNS, ids=[f"{i}" for i in range(len(I386_ROOT_RUNS))])
def test_i386_root(i386_root: str, prog: str, env: dict[str, str]) -> None:
    """The root's own i386 loader (multiarch system dirs, $LIB=lib/i386-linux-gnu), detected from it."""
    r = i386_root
    traced = {**env, "LD_DEBUG": "libs"}
    real = _chrooted(r, ["/lib/ld-linux.so.2", "--list", prog], traced)
    sim = _ldsim(["ld.so", "--root", r, "--list", prog], traced)
    assert_same(real, sim)
    real = _chrooted(r, ["/lib/ld-linux.so.2", prog], {**env, "LD_TRACE_LOADED_OBJECTS": "1"})
    sim = _ldsim(["ldd", "--root", r, prog], env)
    assert_same(real, sim)


def test_i386_root_scan_undefined_symbols(i386_root: str, tmp_path) -> None:
    """`ldsim scan --root` of an i386 root reports each program's undefined symbols as the root's loader
    does under `ldd -r` (LD_WARN, LD_BIND_NOW, traced): Elf32_Rel references looked up in 32-bit tables
    (ldsim checked no ELFCLASS32 object before).  /app/undef was linked against a libf.so defining
    `nothere`; the root's libf.so does not."""
    import json
    r = i386_root
    _cc(["gcc", "-m32", "-shared", "-fPIC", "-Wl,-soname,libf.so"], f"{tmp_path}/libf.so",
        FIB + "int nothere(void){return 2;}\n")
    _cc(["gcc", "-m32"], f"{r}/app/undef", "int f(void); int nothere(void);\n"
        "int refs(int c){return c > 5 ? nothere() : f();}\n" + MAIN0, f"-L{tmp_path}", "-lf")
    progs = sorted(f"/app/{n}" for n in os.listdir(f"{r}/app") if os.path.isfile(f"{r}/app/{n}"))
    real = set()
    for prog in progs:
        out = _chrooted(r, ["/lib/ld-linux.so.2", prog],
                        {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes"})
        for line in out.stderr.decode().splitlines():
            message, _, obj = line.rpartition("\t")
            if message.startswith("undefined symbol: ") and obj == f"({prog})":
                real.add((prog, message))
    p = _sh([sys.executable, "-m", "ldsim", "scan", "--root", r, "-i", "--json", "/app"], env=oracle._own_env())
    sim = {(f["file"], f["detail"]) for f in json.loads(p.stdout)["findings"] if f["kind"] == "undefined-symbol"}
    assert ("/app/undef", "undefined symbol: nothere") in real
    assert sim == real


# ---------------------------------------------------------------------------------------------- aarch64


@pytest.fixture(scope="module")
def aarch64_root(tmp_path_factory) -> str:
    cross = "/usr/aarch64-linux-gnu/lib"
    _need("aarch64-linux-gnu-gcc", "qemu-aarch64", f"{cross}/ld-linux-aarch64.so.1",
          packages=("gcc-aarch64-linux-gnu", "qemu-user"))
    r = str(tmp_path_factory.mktemp("a64root"))
    for sub in ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "app/lib/atomics", "app/plat/aarch64",
                "app/lib/aarch64-linux-gnu", "app/x86", "etc"):
        os.makedirs(f"{r}/{sub}", exist_ok=True)
    for name in ("ld-linux-aarch64.so.1", "libc.so.6"):
        shutil.copy2(f"{cross}/{name}", f"{r}/lib/aarch64-linux-gnu/{name}")
    os.symlink("aarch64-linux-gnu/ld-linux-aarch64.so.1", f"{r}/lib/ld-linux-aarch64.so.1")
    cc = ["aarch64-linux-gnu-gcc"]
    so = [*cc, "-shared", "-fPIC"]
    _cc(so, f"{r}/usr/lib/aarch64-linux-gnu/libf.so", FIB)
    _cc(so, f"{r}/app/lib/atomics/libf.so", FIB)
    _cc(so, f"{r}/app/plat/aarch64/libg.so", GIB)
    _cc(so, f"{r}/app/lib/aarch64-linux-gnu/libg.so", GIB)
    _cc(["gcc", "-shared", "-fPIC"], f"{r}/app/x86/libf.so", FIB)  # x86-64: wrong machine, skipped
    lib = f"-L{r}/usr/lib/aarch64-linux-gnu"
    _cc(cc, f"{r}/app/sys", MAIN, lib, "-lf")
    _cc(cc, f"{r}/app/hwcap", MAIN, lib, "-lf", "-Wl,-rpath,/app/lib", "-Wl,--enable-new-dtags")
    _cc(cc, f"{r}/app/dst", MAIN + "int g(void);int h(void){return g();}\n", lib, "-lf",
        f"-L{r}/app/plat/aarch64", "-Wl,--no-as-needed", "-lg", "-Wl,-rpath,/app/plat/$PLATFORM:/app/$LIB",
        "-Wl,--disable-new-dtags")
    _cc(cc, f"{r}/app/missing", MAIN0 + "int g(void);int h(void){return g();}\n",
        f"-L{r}/app/plat/aarch64", "-Wl,--no-as-needed", "-lg")
    # a cache written by ldsim: the aarch64 loader takes only flags 0x0a03 (an x86-64 0x0303 entry is not its)
    from ldsim.ldcache import NewEntry, build_cache
    for sub, lib in (("opt/c", "k"), ("opt/d", "q")):
        os.makedirs(f"{r}/{sub}", exist_ok=True)
        _cc(so, f"{r}/{sub}/lib{lib}.so", GIB.replace("g(", f"{lib}("))
    _cc(cc, f"{r}/app/cached", MAIN0 + "int k(void);int q(void);int h(void){return k()+q();}\n",
        f"-L{r}/opt/c", f"-L{r}/opt/d", "-lk", "-lq")
    with open(f"{r}/etc/ld.so.cache", "wb") as f:
        f.write(build_cache([NewEntry("/opt/c", "libk.so", "libk.so", 0x0A03),
                             NewEntry("/opt/d", "libq.so", "libq.so", 0x0303)]))
    return r


A64_RUNS = [
    ("/app/cached", {}),
    ("/app/sys", {}),
    ("/app/hwcap", {}),
    ("/app/dst", {}),
    ("/app/missing", {}),
    ("/app/sys", {"LD_LIBRARY_PATH": "/app/x86:/nonexistent:/app/lib"}),
]


def _qemu(r: str, prog: str, env: dict[str, str]) -> oracle.Outcome:
    argv = ["qemu-aarch64", "-L", r, "-0", prog]
    for k, v in env.items():
        argv += ["-E", f"{k}={v}"]
    return oracle.run([*argv, r + prog], {})


@pytest.mark.parametrize("prog,env", A64_RUNS, ids=[f"{i}" for i in range(len(A64_RUNS))])
def test_aarch64_root(aarch64_root: str, prog: str, env: dict[str, str]) -> None:
    """The root's aarch64 loader (cache flags 0x0a03, $PLATFORM aarch64, the "atomics" legacy hwcap)."""
    r = aarch64_root
    traced = {**env, "LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
    real = _qemu(r, prog, traced)
    sim = _drop(_ldsim(["run", "--root", r, prog], traced), rb"^\tlinux-vdso\.so\.1 ")
    assert_same(real, sim)
    real = _qemu(r, prog, {**env, "LD_TRACE_LOADED_OBJECTS": "1"})
    sim = _drop(_ldsim(["ldd", "--root", r, prog], env), rb"^\tlinux-vdso\.so\.1 ")
    assert_same(real, sim)


def test_aarch64_loader_version(aarch64_root: str) -> None:
    """The root's loader prints its own build's version (libc6-arm64-cross's, not the profile's: ldsim
    printed the version the profile was written from)."""
    r = aarch64_root
    rtld = "/lib/ld-linux-aarch64.so.1"
    real = oracle.run(["qemu-aarch64", "-L", r, "-0", rtld, r + rtld, "--version"], {})
    assert_same(real, _ldsim(["ld.so", "--root", r, "--version"]))


@pytest.fixture(scope="module")
def aarch64_binding(aarch64_root: str, tmp_path_factory) -> str:
    """The aarch64 root plus /app/undef: linked against a libu.so.1 that defines `nothere`, a variable and
    TLS (R_AARCH64_GLOB_DAT, JUMP_SLOT, TLS_TPREL, TLSDESC); the root's libu.so.1 lacks `nothere`."""
    r = aarch64_root
    t = str(tmp_path_factory.mktemp("a64link"))
    so = ["aarch64-linux-gnu-gcc", "-shared", "-fPIC", "-Wl,-soname,libu.so.1"]
    lib = "int f(void){return 1;} int dv = 3; __thread int etv;\n"
    _cc(so, f"{t}/libu.so.1", lib + "int nothere(void){return 2;}\n")
    os.makedirs(f"{r}/app/u", exist_ok=True)
    _cc(so, f"{r}/app/u/libu.so.1", lib)
    _cc(["aarch64-linux-gnu-gcc"], f"{r}/app/undef",
        "int f(void); int nothere(void); extern int dv; __thread int tv; extern __thread int etv;\n"
        "int refs(int c){return c > 5 ? nothere() : f() + dv + tv + etv;}\n"
        "int main(int c, char **v){return refs(c);}\n", f"{t}/libu.so.1")
    return r


@pytest.mark.parametrize("bind_now", [True, False], ids=["now", "lazy"])
@pytest.mark.parametrize("debug", ["symbols", "bindings", ""])
@pytest.mark.parametrize("prog", ["/app/undef", "/app/cached"])
def test_aarch64_root_binding(aarch64_binding: str, prog: str, debug: str, bind_now: bool) -> None:
    """`ldd -r`/`ldd -d` of the aarch64 root, traced: its relocations (R_AARCH64_*: RELA only, the type
    classes and cases of sysdeps/aarch64/dl-machine.h) looked up as the root's loader does, and the
    undefined symbols it reports.  ldsim read them as x86-64's ("unexpected reloc type 0x00").  qemu-user
    7.2 maps no vDSO: the vDSO's line and setup_vdso_pointers' lookups are dropped from ldsim's side."""
    r = aarch64_binding
    env = {"LD_LIBRARY_PATH": "/app/u", "LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "1"}
    if bind_now:
        env["LD_BIND_NOW"] = "1"
    if debug:
        env["LD_DEBUG"] = debug
    real = _qemu(r, prog, env)
    sim = _ldsim(["run", "--root", r, prog], env)
    sim = _drop(_drop(sim, rb"linux-vdso\.so\.1"), rb"linux-vdso\.so\.1", "stderr")
    assert_same(real, sim)


# ---------------------------------------------------------------------------------------------- musl


@pytest.fixture(scope="module")
def musl_roots(tmp_path_factory) -> tuple[str, str]:
    """Two musl roots: one with /etc/ld-musl-x86_64.path, one without (musl's built-in default path)."""
    _need("musl-gcc", "/lib/ld-musl-x86_64.so.1", packages=("musl", "musl-tools", "musl-dev"))
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    roots = []
    for with_path in (True, False):
        r = str(tmp_path_factory.mktemp("muslroot"))
        for sub in ("lib", "etc", "app/lib", "opt/lib", "usr/lib", "usr/local/lib"):
            os.makedirs(f"{r}/{sub}", exist_ok=True)
        shutil.copy2(os.path.realpath("/lib/ld-musl-x86_64.so.1"), f"{r}/lib/ld-musl-x86_64.so.1")
        if with_path:
            with open(f"{r}/etc/ld-musl-x86_64.path", "w") as f:
                f.write("/opt/lib\n/usr/lib:/nonexistent\n")
        cc = ["musl-gcc"]
        so = [*cc, "-shared", "-fPIC"]
        _cc(so, f"{r}/opt/lib/libg.so", GIB)
        _cc(so, f"{r}/usr/local/lib/libg.so", GIB)
        _cc(so, f"{r}/app/lib/libf.so", FG, f"-L{r}/opt/lib", "-lg")
        link = [f"-L{r}/app/lib", "-lf", f"-Wl,-rpath-link,{r}/opt/lib"]
        _cc(cc, f"{r}/app/rpath", MAIN, *link, "-Wl,-rpath,$ORIGIN/lib", "-Wl,--disable-new-dtags")
        _cc(cc, f"{r}/app/runpath", MAIN, *link, "-Wl,-rpath,/app/lib:/opt/lib", "-Wl,--enable-new-dtags")
        _cc(cc, f"{r}/app/norpath", MAIN, *link)
        # unusable files first in LD_LIBRARY_PATH: not ELF, another class, another machine
        for sub in ("wj", "w32", "wm"):
            os.makedirs(f"{r}/{sub}", exist_ok=True)
        with open(f"{r}/wj/libf.so", "w") as f:
            f.write("junk\n")
        if _m32():  # gcc-multilib
            _cc(["gcc", "-m32", "-shared", "-fPIC"], f"{r}/w32/libf.so", FIB)
        with open(f"{r}/app/lib/libf.so", "rb") as f:
            data = bytearray(f.read())
        data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64: musl never checks e_machine
        with open(f"{r}/wm/libf.so", "wb") as f:
            f.write(data)
        roots.append(r)
    return roots[0], roots[1]


MUSL_RUNS = [
    ("/app/rpath", {}),
    ("/app/runpath", {}),
    ("/app/norpath", {}),
    ("/app/norpath", {"LD_LIBRARY_PATH": "/nonexistent:/app/lib"}),
    ("/app/rpath", {"LD_PRELOAD": "libg.so /opt/lib/libg.so"}),
    ("/app/norpath", {"LD_LIBRARY_PATH": "/wj:/app/lib"}),
    ("/app/norpath", {"LD_LIBRARY_PATH": "/w32:/app/lib"}),
    ("/app/norpath", {"LD_LIBRARY_PATH": "/wm:/app/lib"}),
]


@pytest.mark.parametrize("which", ["path-file", "default-path"])
@pytest.mark.parametrize("prog,env", MUSL_RUNS, ids=[f"{i}" for i in range(len(MUSL_RUNS))])
def test_musl_root(musl_roots: tuple[str, str], which: str, prog: str, env: dict[str, str]) -> None:
    """musl's rules: LD_LIBRARY_PATH, then RPATH/RUNPATH up the needed-by chain, then the path file."""
    r = musl_roots[0 if which == "path-file" else 1]
    real = _chrooted(r, ["/lib/ld-musl-x86_64.so.1", "--list", prog], env)
    sim = _ldsim(["ldd", "--root", r, prog], env)
    assert_same(real, sim)


@pytest.mark.parametrize("prog", ["/app/rpath", "/app/norpath"])
def test_musl_program_under_glibc_ldd(musl_roots: tuple[str, str], prog: str) -> None:
    """On a glibc system, glibc's ldd lists a musl program with glibc's loader (not musl's rules)."""
    path = musl_roots[0] + prog
    assert_same(oracle.real_ldd([path]), oracle.ldsim_ldd([path]))


MUSL_LDSO_ARGS = [
    ["--list", "/app/norpath"],
    ["--list", "--library-path", "/app/lib", "/app/norpath"],
    ["--library-path=/nonexistent:/app/lib", "--list", "/app/norpath"],
    ["--list", "--preload", "/opt/lib/libg.so", "/app/rpath"],
    ["--list"],
    ["--bogus", "/app/rpath"],
    ["--list", "/app/lib/libf.so"],
    ["--list", "/etc/ld-musl-x86_64.path"],
    ["--list", "/nonexistent"],
]


@pytest.mark.parametrize("argv", MUSL_LDSO_ARGS, ids=[" ".join(a) for a in MUSL_LDSO_ARGS])
def test_musl_loader_command_line(musl_roots: tuple[str, str], argv: list[str]) -> None:
    """`ld-musl [options] PROGRAM` (__dls3's option loop, its usage text and errors) vs `ldsim ld.so --root`."""
    r = musl_roots[0]
    real = _chrooted(r, ["/lib/ld-musl-x86_64.so.1", *argv], {})
    assert_same(real, _ldsim(["ld.so", "--root", r, *argv]))


@pytest.fixture(scope="module")
def musl_edges(musl_roots: tuple[str, str]) -> str:
    """The first musl root plus files for map_library's and path_open's corners: a static program, a
    directory named like a library, a library directory whose candidate path does not fit path_open's
    512-byte buffer, and libcs (glibc's, a copy of musl's, one defining only __libc_start_main)."""
    r = musl_roots[0]
    for sub in ("edge/dir/libf.so", "edge/glibc", "edge/libcs"):
        os.makedirs(f"{r}/{sub}", exist_ok=True)
    _cc(["musl-gcc", "-static"], f"{r}/edge/static", MAIN0)
    # "/edge/long/" + components: the candidate DIR/libf.so is 511 bytes in one, 512 in the other
    for total in (511, 512):
        d, fill = f"/edge/long{total}", total - len("/edge/long511") - len("/libf.so")
        while fill > 0:
            part = min(fill - 1, 200) if fill > 201 else fill - 1
            d, fill = f"{d}/{'a' * max(part, 1)}", fill - max(part, 1) - 1
        assert len(f"{d}/libf.so") == total, (d, total)
        os.makedirs(r + d, exist_ok=True)
        shutil.copy2(f"{r}/app/lib/libf.so", f"{r}{d}/libf.so")
        with open(f"{r}/edge/long{total}.txt", "w") as f:
            f.write(d)
    shutil.copy2(os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6"), f"{r}/edge/glibc/libc.so.6")
    shutil.copy2(os.path.realpath("/lib/ld-musl-x86_64.so.1"), f"{r}/edge/libcs/libmine.so")
    _cc(["musl-gcc", "-shared", "-fPIC"], f"{r}/edge/libcs/libhalf.so", "int __libc_start_main(void){return 0;}\n")
    # messages in musl's strerror wording: a program whose loader's path file is empty (no directory
    # tried: errno 0), a symlink loop, an empty DT_NEEDED (EINVAL)
    _need("patchelf", packages=("patchelf",))
    os.makedirs(f"{r}/edge/pfx/etc", exist_ok=True)
    open(f"{r}/edge/pfx/etc/ld-musl-x86_64.path", "w").close()
    shutil.copy2(f"{r}/app/norpath", f"{r}/edge/nopath")
    shutil.copy2(f"{r}/app/norpath", f"{r}/edge/emptyneed")
    for argv in (["--set-interpreter", "/edge/pfx/lib/ld-musl-x86_64.so.1", f"{r}/edge/nopath"],
                 ["--replace-needed", "libf.so", "", f"{r}/edge/emptyneed"]):
        if _sh(["patchelf", *argv]).returncode:
            pytest.skip(f"patchelf {argv[0]} failed")
    os.makedirs(f"{r}/edge/loop", exist_ok=True)
    os.symlink("libf.so", f"{r}/edge/loop/libf.so")
    # relocation: a program linked against a libu.so with `nothere` and `dv`, run with one without
    # `nothere`; a weak undefined reference; a copy relocation (non-PIE); a glibc program
    os.makedirs(f"{r}/edge/u", exist_ok=True)
    so = ["musl-gcc", "-shared", "-fPIC", "-Wl,-soname,libu.so"]
    _cc(so, f"{r}/edge/libu.so", "int f(void){return 1;} int nothere(void){return 2;} int dv[4] = {3};\n")
    _cc(so, f"{r}/edge/u/libu.so", "int f(void){return 1;} int dv[4] = {3};\n")
    _cc(["musl-gcc", "-no-pie", "-fno-pic"], f"{r}/edge/undef",
        "int f(void); int nothere(void); extern int dv[4]; __attribute__((weak)) int wk(void);\n"
        "int main(int c, char **v){return c > 5 ? nothere() + (wk ? wk() : 0) : f() + dv[0];}\n",
        f"{r}/edge/libu.so")
    shutil.copy2("/bin/true", f"{r}/edge/glibc/true")
    return r


def _long(r: str, total: int) -> str:
    with open(f"{r}/edge/long{total}.txt") as f:
        return f.read()


MUSL_EDGE_RUNS = [
    # map_library: no PT_DYNAMIC, "Not a valid dynamic program"
    (["--list", "/edge/static"], {}),
    # a directory opens; its read() fails: EISDIR, and the search ends there
    (["--list", "/app/norpath"], {"LD_LIBRARY_PATH": "/edge/dir:/app/lib"}),
    # path_open: a candidate that does not fit the 512-byte buffer is not tried
    (["--list", "/app/norpath"], {"LD_LIBRARY_PATH": "{long512}:/app/lib"}),
    (["--list", "/app/norpath"], {"LD_LIBRARY_PATH": "{long512}"}),
    (["--list", "/app/norpath"], {"LD_LIBRARY_PATH": "{long511}:/app/lib"}),
    # a libc mapped by path or found by a search is the loader itself, listed as "libc.so"
    (["--list", "/app/norpath"], {"LD_PRELOAD": "/edge/glibc/libc.so.6", "LD_LIBRARY_PATH": "/app/lib"}),
    (["--list", "/app/norpath"], {"LD_PRELOAD": "/lib/../lib/ld-musl-x86_64.so.1", "LD_LIBRARY_PATH": "/app/lib"}),
    (["--list", "/app/norpath"], {"LD_PRELOAD": "libmine.so libhalf.so", "LD_LIBRARY_PATH": "/edge/libcs:/app/lib"}),
    # musl's strerror: "No error information", "Filename too long", "Symbolic link loop", "Invalid argument"
    (["--list", "/edge/nopath"], {}),
    (["--list", "/edge/nopath"], {"LD_LIBRARY_PATH": "/" + "a" * 300}),
    (["--list", "/app/norpath"], {"LD_LIBRARY_PATH": "/edge/loop:/app/lib"}),
    (["--list", "/edge/emptyneed"], {}),
    (["--list", "/" + "a" * 300], {}),
    # do_relocs: "symbol not found" per relocation (a weak undefined one is no error), and for glibc's
    # objects "unsupported relocation type"
    (["--list", "/edge/undef"], {"LD_LIBRARY_PATH": "/edge/u"}),
    (["--list", "/edge/undef"], {"LD_LIBRARY_PATH": "/edge"}),
    (["--list", "/edge/glibc/true"], {}),
]


@pytest.mark.parametrize("argv,env", MUSL_EDGE_RUNS, ids=[f"{i}" for i in range(len(MUSL_EDGE_RUNS))])
def test_musl_edges(musl_edges: str, argv: list[str], env: dict[str, str]) -> None:
    """musl's map_library, path_open buffer and libc detection (load_library), chrooted vs ldsim."""
    r = musl_edges
    env = {k: v.replace("{long511}", _long(r, 511)).replace("{long512}", _long(r, 512)) for k, v in env.items()}
    real = _chrooted(r, ["/lib/ld-musl-x86_64.so.1", *argv], env)
    assert_same(real, _ldsim(["ld.so", "--root", r, *argv], env))


MUSL_EXEC_RUNS = [
    ("/app/norpath", {}),
    # executed, the program's $ORIGIN comes from /proc/self/exe: with nothing on the root's /proc its
    # whole RPATH is dropped (fixup_rpath), unlike under --list
    ("/app/rpath", {}),
    ("/app/norpath", {"LD_LIBRARY_PATH": "/nonexistent", "LD_PRELOAD": "/edge/glibc/libc.so.6"}),
    ("/edge/undef", {"LD_LIBRARY_PATH": "/edge/u"}),
]


@pytest.mark.parametrize("prog,env", MUSL_EXEC_RUNS, ids=[f"{i}" for i in range(len(MUSL_EXEC_RUNS))])
def test_musl_exec(musl_edges: str, prog: str, env: dict[str, str]) -> None:
    """A musl program executed in its root (chroot) vs `ldsim run --root`: musl's loader prints only its
    errors and exits 127 (ldsim ran glibc's rules and printed glibc's message).  Only runs that fail are
    compared: what a program that starts then does is not simulated."""
    r = musl_edges
    real = _chrooted(r, [prog], env)
    assert real.status == 127, real
    assert_same(real, _ldsim(["run", "--root", r, prog], env))
