"""Secure-execution mode (glibc-loader.md §1.2, §1.3) against the real loader.

Root-owned set-user-ID (4755), set-group-ID (2755) and file-capability programs built here (each does
nothing: `main` returns 0) are executed as nobody (`setpriv --reuid=65534 --regid=65534 --clear-groups
env -i ENV PROG`) and compared with `ldsim run -i --uid 65534 --euid 65534 --gid 65534 --egid 65534
-e ENV PROG`: stdout, stderr (the LD_DEBUG=libs trace and the loader's messages) and the exit status,
addresses and PIDs masked.  Whether a run is secure is ldsim's own decision from the file's mode, owner
and `security.capability`; plain programs and root callers are the controls.

Host state touched, always undone in `finally`: /etc/suid-debug (present while the traced runs happen,
absent for the others), two uniquely named libraries in /usr/lib/x86_64-linux-gnu (plain-name preloads
are only searched in system directories), and a /usr/lib/ldsim-test-XXXX directory (a trusted
directory, where the main program's `$ORIGIN` RPATH is kept).  Needs root, setpriv and setcap
(Debian package libcap2-bin).

The later sections (the ids access(2) and open(2) use, LD_PROFILE's file, the path walk through
symlinks and from the working directory, DAC-bypassing file capabilities, a set-user-ID ld.so, a nosuid
mount, ldd run by nobody) touch no host file: they run inside chrooted roots built under a temporary
directory, in world directories under /tmp, or in a private mount namespace (`unshare -m`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests import oracle
from tests.conformance.conftest import add_host_glibc, assert_same

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make set-user-ID programs"),
    pytest.mark.skipif(shutil.which("setpriv") is None or shutil.which("setcap") is None,
                       reason="needs setpriv (util-linux) and setcap (libcap2-bin)"),
]

NOBODY = 65534
SYSLIB = "/usr/lib/x86_64-linux-gnu"
SUID_DEBUG = "/etc/suid-debug"
TAG = f"ldsimsec{os.getpid()}"
PRE_PLAIN = f"lib{TAG}plain.so"  # in SYSLIB without the set-user-ID bit
PRE_SUID = f"lib{TAG}suid.so"  # in SYSLIB with it


def lib(path: str, **kw) -> LibSpec:
    kw.setdefault("libc", False)
    return LibSpec(path, soname=os.path.basename(path), **kw)


def prog(path: str, *needed: str, **kw) -> ProgSpec:
    return ProgSpec(path, needed=needed, **kw)


@dataclass(frozen=True)
class SRun:
    """One exec.  `{w}` = the world dir, `{t}` = the trusted dir, in `prog` and env values.
    `debug`: run while /etc/suid-debug exists.  `uid`: the caller (real = effective)."""

    name: str
    prog: str
    env: dict[str, str] = field(default_factory=dict)
    debug: bool = True
    uid: int = NOBODY
    ruid_only: bool = False  # `setpriv --ruid=UID`: the effective ids stay root's (secure for any program)
    ldso: tuple[str, ...] | None = None  # run `ld.so ARGS... PROG` instead of exec'ing PROG


# Programs of the world (relative to {w}) and their modes; `caps` for setcap.
MODES = {"bin/suid": 0o4755, "bin/sgid": 0o2755, "bin/plain": 0o755, "bin/caps": 0o755, "bin/capsi": 0o755,
         "bin/suid_origin": 0o4755, "bin/suid_dst": 0o4755, "bin/suid_runpath": 0o4755,
         "bin/suid_undef": 0o4755, "bin/uses": 0o755, "bin/suid_now": 0o4755}
CAPS = {"bin/caps": "cap_net_raw+p", "bin/capsi": "cap_net_raw+i"}
TRUSTED_MODES = {"bin/m": 0o4755, "bin/m_notfirst": 0o4755, "bin/m_alone": 0o4755, "bin/m_lib": 0o4755}


def world_spec(w: str) -> WorldSpec:
    return WorldSpec((
        prog("bin/suid", "libsa.so"), prog("bin/sgid", "libsa.so"), prog("bin/plain", "libsa.so"),
        prog("bin/caps", "libsa.so"), prog("bin/capsi", "libsa.so"),
        prog("bin/suid_origin", "libsb.so", rpath="$ORIGIN/../lib2"),
        prog("bin/suid_runpath", "libsb.so", runpath="$ORIGIN/../lib2"),
        prog("bin/suid_dst", "$ORIGIN/../lib2/libsb.so"),
        # a function called only lazily, whose library is replaced by one without it after linking
        prog("bin/suid_undef", "libud.so", uses=("ud_fn",), rpath=f"{w}/lib"),
        prog("bin/uses", "libsa.so", uses=("sa_fn",), rpath=f"{w}/lib"),  # a PLT call into libsa
        prog("bin/suid_now", "libsa.so", rpath=f"{w}/lib", cflags=("-Wl,-z,now",)),
        lib("lib/libsa.so", defines=("sa_fn",), uses=("sa_fn",)),  # its own call: a PLT (for LD_PROFILE)
        lib("lib/libud.so", defines=("ud_fn",)), lib("lib2/libsb.so"),
        lib("pre/libpre.so"), lib(f"pre/{PRE_PLAIN}"), lib(f"pre/{PRE_SUID}"),
        lib("lib3/libsc.so", runpath="$ORIGIN/dep", needed=("libsd.so",)), lib("lib3/dep/libsd.so"),
    ))


def trusted_spec(w: str) -> WorldSpec:
    """Programs under a trusted directory: `$ORIGIN` first in the main program's RPATH is kept there."""
    return WorldSpec((
        prog("bin/m", "libsb.so", rpath="$ORIGIN/../lib"),
        prog("bin/m_alone", "libsb.so", rpath="$ORIGIN"),
        prog("bin/m_notfirst", "libsb.so", rpath="/nonexistent/$ORIGIN/../lib"),
        # a library's own $ORIGIN needs no trusted directory, even in secure mode
        prog("bin/m_lib", "libsc.so", rpath=f"{w}/lib3"),
        lib("lib/libsb.so"), lib("bin/libsb.so"),
    ))


TUNED = "glibc.cpu.hwcaps=-SSE4_2:glibc.cpu.hwcap_mask=0"


def runs() -> list[SRun]:
    llp = {"LD_LIBRARY_PATH": "{w}/lib", "LD_DEBUG": "libs"}
    out = [
        SRun("llp-ignored-suid", "{w}/bin/suid", llp),
        SRun("llp-ignored-sgid", "{w}/bin/sgid", llp),
        SRun("llp-used-plain", "{w}/bin/plain", llp),
        SRun("llp-used-suid-by-root", "{w}/bin/suid", llp, uid=0),
        SRun("caps-p-secure", "{w}/bin/caps", llp),
        SRun("caps-i-not-secure", "{w}/bin/capsi", llp),
        SRun("caps-by-root", "{w}/bin/caps", llp, uid=0),
        SRun("preload-slash-ignored", "{w}/bin/suid",
             {**llp, "LD_LIBRARY_PATH": "", "LD_PRELOAD": "{w}/pre/libpre.so"}),
        SRun("preload-slash-plain", "{w}/bin/plain", {**llp, "LD_PRELOAD": "{w}/pre/libpre.so"}),
        SRun("preload-name-not-suid", "{w}/bin/suid", {"LD_DEBUG": "libs", "LD_PRELOAD": PRE_PLAIN}),
        SRun("preload-name-suid", "{w}/bin/suid", {"LD_DEBUG": "libs", "LD_PRELOAD": f"{PRE_SUID} {PRE_PLAIN}"}),
        SRun("preload-name-plain-prog", "{w}/bin/plain", {**llp, "LD_PRELOAD": f"{PRE_PLAIN}:{PRE_SUID}"}),
        SRun("preload-mixed", "{w}/bin/sgid",
             {"LD_DEBUG": "libs", "LD_PRELOAD": f"{{w}}/pre/{PRE_SUID}:libnonexistent{TAG}.so {PRE_SUID}"}),
        SRun("origin-dropped", "{w}/bin/suid_origin", {"LD_DEBUG": "libs"}),
        SRun("origin-runpath-dropped", "{w}/bin/suid_runpath", {"LD_DEBUG": "libs"}),
        SRun("dst-in-needed", "{w}/bin/suid_dst", {"LD_DEBUG": "libs"}),
        SRun("origin-kept-trusted", "{t}/bin/m", {"LD_DEBUG": "libs"}),
        SRun("origin-alone-trusted", "{t}/bin/m_alone", {"LD_DEBUG": "libs"}),
        SRun("origin-not-first", "{t}/bin/m_notfirst", {"LD_DEBUG": "libs"}),
        SRun("origin-of-library", "{t}/bin/m_lib", {"LD_DEBUG": "libs"}),
        SRun("debug-output-ignored", "{w}/bin/suid", {**llp, "LD_DEBUG_OUTPUT": "{w}/out/dbg"}),
        # LD_SHOW_AUXV: not in secure mode; otherwise the ids are the caller's
        SRun("show-auxv-secure", "{w}/bin/suid", {"LD_SHOW_AUXV": "1"}),
        SRun("show-auxv-plain", "{w}/bin/plain", {"LD_SHOW_AUXV": "1"}),
        SRun("show-auxv-by-root", "{w}/bin/suid", {"LD_SHOW_AUXV": "1"}, uid=0),
        SRun("show-auxv-ldso", "{w}/bin/suid", {"LD_SHOW_AUXV": "1"}, ldso=("--list",)),
        SRun("trace-exit-5", "{w}/bin/suid", {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}),
        SRun("unknown-debug-word-warns", "{w}/bin/suid", {**llp, "LD_DEBUG": "libs,bogus"}),
        SRun("preload-long-name-secure", "{w}/bin/suid", {**llp, "LD_PRELOAD": "x" * 300 + ".so " + PRE_SUID}),
        SRun("preload-long-name-plain", "{w}/bin/plain", {**llp, "LD_PRELOAD": "x" * 300 + ".so " + PRE_SUID}),
        SRun("kept-vars", "{w}/bin/suid", {**llp, "LD_BIND_NOW": "1", "LD_WARN": "1", "TMPDIR": "/x",
                                             "LD_HWCAP_MASK": "0", "LD_DYNAMIC_WEAK": "1"}),
        # the loader's tunables are SXID_ERASE: a secure process reads none of them
        SRun("tunables-ignored-suid", "{w}/bin/suid", {**llp, "GLIBC_TUNABLES": TUNED}),
        SRun("tunables-used-plain", "{w}/bin/plain", {**llp, "GLIBC_TUNABLES": TUNED}),
    ]
    # without /etc/suid-debug the debug mask is cleared; a trace request still exits 5
    out += [SRun("no-suid-debug", "{w}/bin/suid", llp, debug=False),
            SRun("no-suid-debug-plain", "{w}/bin/plain", llp, debug=False),
            SRun("no-suid-debug-preload", "{w}/bin/suid", {"LD_DEBUG": "libs", "LD_PRELOAD": PRE_PLAIN},
                 debug=False),
            SRun("no-suid-debug-trace", "{w}/bin/sgid", {"LD_TRACE_LOADED_OBJECTS": "1"}, debug=False),
            # LD_DEBUG=unused set dl_lazy = 0 before the mask was cleared: bind-now finds the undefined function
            SRun("no-suid-debug-unused-binds-now", "{w}/bin/suid_undef", {"LD_DEBUG": "unused"}, debug=False)]
    # with the mask kept, `unused` makes undefined references harmless
    out += [SRun("unused-undefined-ok", "{w}/bin/suid_undef", {"LD_DEBUG": "unused"}),
            SRun("unused-plain", "{w}/bin/suid_undef", {"LD_DEBUG": "unused"}, uid=0)]
    # LD_PROFILE is honoured in secure mode, LD_PROFILE_OUTPUT is not: the profile of libsa.so goes to
    # /var/profile (absent: an error line); profiling keeps every PLT lazy, DT_BIND_NOW and LD_BIND_NOW too
    prof = {"LD_PROFILE": "libsa.so", "LD_PROFILE_OUTPUT": "{w}/out"}
    out += [SRun("profile-secure", "{w}/bin/suid_now", {**prof, "LD_DEBUG": "reloc"}),
            SRun("profile-secure-no-debug", "{w}/bin/suid_now", prof, debug=False),
            SRun("profile-plain-not-writable", "{w}/bin/plain",
                 {**prof, "LD_PROFILE_OUTPUT": "{w}", "LD_LIBRARY_PATH": "{w}/lib"}),
            SRun("profile-plain-no-dir", "{w}/bin/plain",
                 {**prof, "LD_PROFILE_OUTPUT": "{w}/nodir", "LD_LIBRARY_PATH": "{w}/lib", "LD_DEBUG": "reloc"}),
            SRun("profile-not-matching", "{w}/bin/suid_now", {**prof, "LD_PROFILE": "libnone.so"}),
            SRun("profile-keeps-lazy", "{w}/bin/suid_undef", {"LD_PROFILE": "libnone.so", "LD_BIND_NOW": "1"})]
    # LD_AUDIT / --audit objects that cannot be opened: one error line each (dlmopen with __RTLD_SECURE:
    # in secure mode no '/' names and only set-user-ID files); names of NAME_MAX bytes are skipped
    audit = f"libnope{TAG}.so:{{w}}/pre/libnope.so::{PRE_PLAIN}:{{w}}/lib:{'y' * 255}.so:{{w}}/pre/libpre.so"
    out += [SRun("audit-secure", "{w}/bin/suid_now", {"LD_AUDIT": audit}),
            SRun("audit-plain", "{w}/bin/plain", {**llp, "LD_DEBUG": "", "LD_AUDIT": f"libnope{TAG}.so:{{w}}/lib"}),
            SRun("audit-trace", "{w}/bin/plain", {**llp, "LD_DEBUG": "", "LD_TRACE_LOADED_OBJECTS": "1",
                                                  "LD_AUDIT": "/nonexistent/libaudit.so"}),
            SRun("audit-option", "{w}/bin/plain", {**llp, "LD_DEBUG": "", "LD_AUDIT": "libnope1.so"},
                 ldso=("--audit", "libnope2.so:libnope3.so"))]
    # dl_lazy follows the environment's order: LD_BIND_NOW= after LD_DEBUG=unused makes it lazy again, so
    # the trace's relocation of the program skips its PLT and libsa is listed unused
    order = [("LD_TRACE_LOADED_OBJECTS", "1"), ("LD_DEBUG", "unused"), ("LD_BIND_NOW", "")]
    out += [SRun("unused-then-bind-now-empty", "{w}/bin/uses", dict(order), uid=0),
            SRun("bind-now-empty-then-unused", "{w}/bin/uses", dict([order[0], order[2], order[1]]), uid=0)]
    # ld.so run directly by a process whose effective uid is not its real one: secure, and glibc 2.36's
    # _dl_start_args_adjust asserts once secure mode has removed a variable from the environment
    direct = {"LD_DEBUG": "libs,files", "LD_PRELOAD": PRE_SUID}
    out += [SRun("direct-secure", "{w}/bin/plain", direct, ruid_only=True, ldso=("--library-path", "{w}/lib")),
            SRun("direct-secure-verify", "{w}/bin/plain", direct, ruid_only=True, ldso=("--verify",)),
            SRun("direct-secure-kept-env", "{w}/bin/plain", {"LD_DEBUG": "libs", "LD_BIND_NOW": "1"},
                 ruid_only=True, ldso=("--library-path", "{w}/lib")),
            SRun("direct-secure-list", "{w}/bin/plain", {"LD_DEBUG": "libs"}, ruid_only=True,
                 ldso=("--list", "--library-path", "{w}/lib")),
            SRun("direct-secure-trace-env", "{w}/bin/plain", {"LD_TRACE_LOADED_OBJECTS": "1"}, ruid_only=True,
                 ldso=("--list",)),
            SRun("direct-malloc-check", "{w}/bin/plain", {"MALLOC_CHECK_": "1"}, ruid_only=True, ldso=()),
            SRun("direct-malloc-check-erased", "{w}/bin/plain", {"MALLOC_CHECK_": "1"}, ruid_only=True, ldso=(),
                 debug=False),  # erased (so the assertion) only without /etc/suid-debug
            SRun("direct-not-secure", "{w}/bin/plain", llp, ldso=())]
    return out


RUNS = runs()


def _fmt(s: str, dirs: dict[str, str]) -> str:
    return s.replace("{w}", dirs["w"]).replace("{t}", dirs["t"])


def _real(r: SRun, dirs: dict[str, str]) -> oracle.Outcome:
    env = [f"{k}={_fmt(v, dirs)}" for k, v in r.env.items()]
    who = (["setpriv", f"--ruid={r.uid}"] if r.ruid_only
           else ["setpriv", f"--reuid={r.uid}", f"--regid={r.uid}", "--clear-groups"])
    ldso = [] if r.ldso is None else [oracle.RTLD, *(_fmt(a, dirs) for a in r.ldso)]
    return oracle.run([*who, "env", "-i", *env, *ldso, _fmt(r.prog, dirs)], {}, dirs["w"])


def _sim(r: SRun, dirs: dict[str, str]) -> oracle.Outcome:
    eargs = [a for k, v in r.env.items() for a in ("-e", f"{k}={_fmt(v, dirs)}")]
    ids = ["--uid", str(r.uid), "--euid", "0", "--gid", "0", "--egid", "0"] if r.ruid_only else \
        [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(r.uid))]
    cmd = ["run"] if r.ldso is None else ["ld.so"]
    ldso = [] if r.ldso is None else [_fmt(a, dirs) for a in r.ldso]
    return oracle.run([sys.executable, "-m", "ldsim", *cmd, "-i", *ids, *eargs, *ldso, _fmt(r.prog, dirs)],
                      oracle._own_env(), dirs["w"])


def _both(r: SRun, dirs: dict[str, str]) -> tuple[oracle.Outcome, oracle.Outcome, bool, bool]:
    """Outcomes, and whether LD_DEBUG_OUTPUT left a file behind (real, then ldsim)."""
    out_dir = os.path.join(dirs["w"], "out")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir, mode=0o777)
    os.chmod(out_dir, 0o777)
    real = _real(r, dirs)
    real_file = bool(os.listdir(out_dir))
    shutil.rmtree(out_dir)
    os.makedirs(out_dir, mode=0o777)
    sim = _sim(r, dirs)
    sim_file = bool(os.listdir(out_dir))
    return real, sim, real_file, sim_file


def _install_system_libs(w: str) -> list[str]:
    placed = []
    for name, mode in ((PRE_PLAIN, 0o644), (PRE_SUID, 0o4755)):
        dest = os.path.join(SYSLIB, name)
        placed.append(dest)
        shutil.copyfile(os.path.join(w, "pre", name), dest)
        os.chmod(dest, mode)
    return placed


@pytest.fixture(scope="module")
def results() -> dict[str, tuple]:
    """Build both worlds, run every case (traced ones while /etc/suid-debug exists), undo everything."""
    w = tempfile.mkdtemp(prefix="ldsim-secure-")
    t = tempfile.mkdtemp(prefix="ldsim-test-", dir="/usr/lib")
    placed: list[str] = []
    made_suid_debug = False
    profile_file = "/var/profile/libsa.so.profile"  # where a secure LD_PROFILE=libsa.so run writes
    had_profile_file = os.path.lexists(profile_file)
    try:
        for d in (w, t):
            os.chmod(d, 0o755)  # nobody must traverse it
        build_world(world_spec(w), w, jobs=4)
        shutil.copyfile(os.path.join(w, "lib2/libsb.so"), os.path.join(w, "lib/libud.so"))  # ud_fn is gone
        build_world(trusted_spec(w), t, jobs=4)
        for rel, mode in MODES.items():
            os.chmod(os.path.join(w, rel), mode)
        for rel, mode in TRUSTED_MODES.items():
            os.chmod(os.path.join(t, rel), mode)
        for rel, caps in CAPS.items():
            subprocess.run(["setcap", caps, os.path.join(w, rel)], check=True, capture_output=True)
        dirs = {"w": w, "t": t}
        placed = _install_system_libs(w)
        out: dict[str, tuple] = {}
        for phase in (True, False):
            if phase and not os.path.exists(SUID_DEBUG):
                open(SUID_DEBUG, "w").close()
                made_suid_debug = True
            if not phase and made_suid_debug:
                os.unlink(SUID_DEBUG)
                made_suid_debug = False
            todo = [r for r in RUNS if r.debug == phase]
            if not phase and os.path.exists(SUID_DEBUG):
                pytest.skip("/etc/suid-debug exists on this host; cannot run the cases without it")
            # LD_DEBUG_OUTPUT cases share the world's out/ dir: run them one by one, the rest in parallel
            for r in todo:
                if "LD_DEBUG_OUTPUT" in r.env:
                    out[r.name] = _both(r, dirs)
            par = [r for r in todo if "LD_DEBUG_OUTPUT" not in r.env]
            with ThreadPoolExecutor(max_workers=4) as pool:
                for r, res in zip(par, pool.map(lambda r: _sim_real(r, dirs), par)):
                    out[r.name] = res
        return out
    finally:
        if made_suid_debug:
            os.unlink(SUID_DEBUG)
        if not had_profile_file and os.path.lexists(profile_file):
            os.unlink(profile_file)
        for p in placed:
            if os.path.exists(p):
                os.unlink(p)
        shutil.rmtree(t, ignore_errors=True)
        shutil.rmtree(w, ignore_errors=True)


def _sim_real(r: SRun, dirs: dict[str, str]) -> tuple:
    return _real(r, dirs), _sim(r, dirs), False, False


@pytest.mark.parametrize("name", [r.name for r in RUNS])
def test_secure_exec(results, name: str) -> None:
    real, sim, real_file, sim_file = results[name]
    assert_same(real, sim)
    assert real_file == sim_file, f"LD_DEBUG_OUTPUT file: real {real_file}, ldsim {sim_file}"


# ------------------------------------------------------------------ secure exec inside a chrooted sysroot

MULTIARCH = "usr/lib/x86_64-linux-gnu"
ROOT_PRELOAD = "# /etc/ld.so.preload is honoured in secure mode, '/' entries included\n/opt/libqe.so libq1.so\tlibq2.so\n"


@pytest.fixture(scope="module")
def secure_root(tmp_path_factory) -> str:
    """A root with its own /etc/ld.so.preload and /etc/suid-debug (the host's /etc is never touched)."""
    r = str(tmp_path_factory.mktemp("secure_root"))
    os.chmod(r, 0o755)
    build_world(WorldSpec((
        ProgSpec("usr/bin/prog", needed=("libqa.so",)),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False),
        LibSpec(f"{MULTIARCH}/libq1.so", soname="libq1.so", libc=False),
        LibSpec(f"{MULTIARCH}/libq2.so", soname="libq2.so", libc=False),
        LibSpec(f"{MULTIARCH}/libq3.so", soname="libq3.so", libc=False),
        LibSpec("opt/libqe.so", soname="libqe.so", libc=False),
        LibSpec("opt/libqa.so", soname="libqa.so", libc=False),
    )), r, jobs=4)
    add_host_glibc(r)
    with open(f"{r}/etc/ld.so.preload", "w") as f:
        f.write(ROOT_PRELOAD)
    open(f"{r}/etc/suid-debug", "w").close()
    os.chmod(f"{r}/usr/bin/prog", 0o4755)
    os.chmod(f"{r}/{MULTIARCH}/libq2.so", 0o4755)
    os.chmod(f"{r}/{MULTIARCH}/libq3.so", 0o4755)
    return r


def _as_nobody_in(root: str):
    def enter() -> None:
        os.chroot(root)
        os.chdir("/")
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return enter


ROOT_RUNS = {
    "preload-file-and-env": {"LD_DEBUG": "libs", "LD_PRELOAD": "libq3.so /opt/libqe.so libq1.so",
                             "LD_LIBRARY_PATH": "/opt"},
    "trace-request": {"LD_TRACE_LOADED_OBJECTS": "1"},
}


@pytest.mark.parametrize("case", list(ROOT_RUNS))
def test_secure_exec_in_a_sysroot(secure_root: str, case: str) -> None:
    env = ROOT_RUNS[case]
    p = subprocess.run(["/usr/bin/prog"], env=env, capture_output=True, timeout=60,
                       preexec_fn=_as_nobody_in(secure_root))
    real = oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "--root", secure_root, *ids, *eargs,
                      "/usr/bin/prog"], oracle._own_env(), "/")
    assert_same(real, sim)


# ------------------------------------------------------------------ access(2) checks the real ids

REAL_GID = 4242  # the group of the set-group-ID program and of the files only that group may read


@pytest.fixture(scope="module")
def access_root(tmp_path_factory) -> str:
    """A root whose /etc/ld.so.preload names a library that exists (libq1, set-user-ID so a secure process
    may preload it) and one that does not; each case below changes the modes of /etc and that file."""
    r = str(tmp_path_factory.mktemp("access_root"))
    os.chmod(r, 0o755)
    build_world(WorldSpec((
        ProgSpec("usr/bin/suid", needed=("libqa.so",)), ProgSpec("usr/bin/sgid", needed=("libqa.so",)),
        ProgSpec("usr/bin/plain", needed=("libqa.so",)),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False),
        LibSpec(f"{MULTIARCH}/libq1.so", soname="libq1.so", libc=False),
    )), r, jobs=4)
    add_host_glibc(r)
    with open(f"{r}/etc/ld.so.preload", "w") as f:
        f.write(f"libq1.so libnope{TAG}.so\n")
    open(f"{r}/etc/suid-debug", "w").close()
    os.chown(f"{r}/usr/bin/sgid", 0, REAL_GID)  # before chmod: chown clears the set-ID bits
    os.chmod(f"{r}/usr/bin/sgid", 0o2755)
    os.chmod(f"{r}/usr/bin/suid", 0o4755)
    os.chmod(f"{r}/{MULTIARCH}/libq1.so", 0o4755)
    return r


# case -> (mode of /etc, mode and group of /etc/ld.so.preload, program, environment, ld.so run with the
# real uid nobody and the effective uid root (the ids ldsim gets with --uid 65534 --euid 0))
ACCESS_RUNS = {
    # dl_main's access(R_OK) fails for nobody: the file is not read although the effective uid could
    "preload-file-root-only": (0o755, 0o600, 0, "usr/bin/suid", {"LD_DEBUG": "libs"}, False),
    "preload-file-group-only": (0o755, 0o640, REAL_GID, "usr/bin/sgid", {"LD_DEBUG": "libs"}, False),
    "preload-file-readable": (0o755, 0o644, 0, "usr/bin/suid", {"LD_DEBUG": "libs"}, False),
    # nobody may not search /etc: /etc/suid-debug does not exist for access(F_OK), LD_DEBUG is cleared
    "etc-not-searchable": (0o700, 0o644, 0, "usr/bin/suid", {"LD_DEBUG": "libs"}, False),
    "direct-preload-file-root-only": (0o755, 0o600, 0, "usr/bin/plain", {}, True),
    "direct-preload-file-readable": (0o755, 0o644, 0, "usr/bin/plain", {}, True),
}


def _with_ids(root: str, direct: bool):
    def enter() -> None:
        os.chroot(root)
        os.chdir("/")
        os.setgroups([])
        if direct:
            os.setresuid(NOBODY, 0, 0)
        else:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    return enter


@pytest.mark.parametrize("case", list(ACCESS_RUNS))
def test_access_uses_the_real_ids(access_root: str, case: str) -> None:
    """access(2) (/etc/ld.so.preload R_OK, /etc/suid-debug F_OK) asks with the real ids, open(2) with
    the effective ones."""
    etc_mode, file_mode, file_gid, prog, env, direct = ACCESS_RUNS[case]
    os.chmod(f"{access_root}/etc", etc_mode)
    os.chown(f"{access_root}/etc/ld.so.preload", 0, file_gid)
    os.chmod(f"{access_root}/etc/ld.so.preload", file_mode)
    argv = [oracle.RTLD, f"/{prog}"] if direct else [f"/{prog}"]
    try:
        p = subprocess.run(argv, env=env, capture_output=True, timeout=60,
                           preexec_fn=_with_ids(access_root, direct))
    finally:
        os.chmod(f"{access_root}/etc", 0o755)
    real = oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    ids = ["--uid", str(NOBODY), "--euid", "0", "--gid", "0", "--egid", "0"] if direct else \
        [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    cmd = ["ld.so", "-i", "--root", access_root, *ids, *eargs, "--", f"/{prog}"] if direct else \
        ["run", "-i", "--root", access_root, *ids, *eargs, f"/{prog}"]
    os.chmod(f"{access_root}/etc", etc_mode)
    try:
        sim = oracle.run([sys.executable, "-m", "ldsim", *cmd], oracle._own_env(), "/")
    finally:
        os.chmod(f"{access_root}/etc", 0o755)
    assert_same(real, sim)


# ------------------------------------------------------------------ LD_PROFILE's file: the effective ids

@pytest.fixture(scope="module")
def profile_root(tmp_path_factory) -> str:
    """A root with a set-group-ID program (group REAL_GID) whose library has a PLT, and /var/profile (a
    secure process writes LIB.profile there, whatever LD_PROFILE_OUTPUT says)."""
    r = str(tmp_path_factory.mktemp("profile_root"))
    os.chmod(r, 0o755)
    build_world(WorldSpec((
        ProgSpec("usr/bin/sgid", needed=("libqa.so",)),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False, defines=("qa_fn",), uses=("qa_fn",)),
    )), r, jobs=4)
    add_host_glibc(r)
    os.chown(f"{r}/usr/bin/sgid", 0, REAL_GID)
    os.chmod(f"{r}/usr/bin/sgid", 0o2755)
    os.makedirs(f"{r}/var/profile")
    return r


# case -> (group and mode of /var/profile, None or the owner, group and mode of an empty libqa.so.profile)
PROFILE_RUNS = {
    "dir-writable-by-the-group": ((REAL_GID, 0o770), None),
    "dir-not-writable": ((0, 0o775), None),
    "file-writable-by-the-group": ((0, 0o755), (0, REAL_GID, 0o660)),
    "file-write-only": ((0, 0o755), (NOBODY, 0, 0o220)),  # O_RDWR needs the read bit too
    "file-read-write": ((0, 0o755), (NOBODY, 0, 0o600)),
}


def _profile_setup(root: str, case: str) -> None:
    (dgid, dmode), file = PROFILE_RUNS[case]
    pdir = f"{root}/var/profile"
    for name in os.listdir(pdir):
        os.unlink(f"{pdir}/{name}")
    os.chown(pdir, 0, dgid)
    os.chmod(pdir, dmode)
    if file is not None:
        uid, gid, mode = file
        open(f"{pdir}/libqa.so.profile", "w").close()
        os.chown(f"{pdir}/libqa.so.profile", uid, gid)
        os.chmod(f"{pdir}/libqa.so.profile", mode)


@pytest.mark.parametrize("case", list(PROFILE_RUNS))
def test_profile_file_with_the_effective_ids(profile_root: str, case: str) -> None:
    """_dl_start_profile's open(O_RDWR|O_CREAT) is checked with the effective gid of a set-group-ID
    process, and an existing file needs read and write permission."""
    env = {"LD_PROFILE": "libqa.so"}
    _profile_setup(profile_root, case)
    p = subprocess.run(["/usr/bin/sgid"], env=env, capture_output=True, timeout=60,
                       preexec_fn=_with_ids(profile_root, False))
    real = oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)
    _profile_setup(profile_root, case)
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "--root", profile_root, *ids,
                      "-e", "LD_PROFILE=libqa.so", "/usr/bin/sgid"], oracle._own_env(), "/")
    assert_same(real, sim)


# ------------------------------------------------------------------ the path walk follows symlinks

@pytest.fixture(scope="module")
def walk_root(tmp_path_factory) -> str:
    """Directories reached through symlinks whose targets lie in /secret (0700, root's): nobody's
    path walk must search /secret, so every candidate there fails with EACCES and the system copy wins."""
    r = str(tmp_path_factory.mktemp("walk_root"))
    os.chmod(r, 0o755)
    build_world(WorldSpec((
        ProgSpec("usr/bin/plain", needed=("libqa.so", "libqb.so"), rpath="/opt/a/b/../l1:/opt/chain"),
        ProgSpec("usr/bin/sgid", needed=("libqa.so", "libqb.so"), rpath="/opt/a/b/../l1:/opt/chain"),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False),
        LibSpec(f"{MULTIARCH}/libqb.so", soname="libqb.so", libc=False),
        LibSpec("secret/libqa.so", soname="libqa.so", libc=False),
        LibSpec("secret/d/libqb.so", soname="libqb.so", libc=False),
        LibSpec("pub/libqb.so", soname="libqb.so", libc=False),
    )), r, jobs=4)
    add_host_glibc(r)
    os.makedirs(f"{r}/opt/a/b")
    os.symlink("/secret", f"{r}/opt/a/l1")  # reached lexically as /opt/a/b/../l1
    os.symlink("c1", f"{r}/opt/chain")  # chain -> c1 -> /opt/c2 -> ../secret/d
    os.symlink("/opt/c2", f"{r}/opt/c1")
    os.symlink("../secret/d", f"{r}/opt/c2")
    os.symlink("../secret/d/..", f"{r}/opt/dots")
    os.symlink("/secret/libqa.so", f"{r}/pub/libqa.so")
    os.chmod(f"{r}/secret", 0o700)
    os.chown(f"{r}/usr/bin/sgid", 0, REAL_GID)
    os.chmod(f"{r}/usr/bin/sgid", 0o2755)
    open(f"{r}/etc/suid-debug", "w").close()
    return r


WALK_RUNS = {
    "rpath-through-symlinks": ("usr/bin/plain", {"LD_DEBUG": "libs"}),
    "library-path-through-symlinks": ("usr/bin/plain", {"LD_DEBUG": "libs", "LD_LIBRARY_PATH": "/pub:/opt/dots"}),
    "preload-through-symlinks": ("usr/bin/plain", {"LD_DEBUG": "libs", "LD_PRELOAD": "/pub/libqa.so"}),
    "secure-rpath-through-symlinks": ("usr/bin/sgid", {"LD_DEBUG": "libs"}),
}


@pytest.mark.parametrize("case", list(WALK_RUNS))
def test_path_walk_searches_symlink_targets(walk_root: str, case: str) -> None:
    prog, env = WALK_RUNS[case]
    p = subprocess.run([f"/{prog}"], env=env, capture_output=True, timeout=60,
                       preexec_fn=_with_ids(walk_root, False))
    real = oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "--root", walk_root, *ids, *eargs,
                      f"/{prog}"], oracle._own_env(), "/")
    assert_same(real, sim)


# ------------------------------------------------------------------ capabilities that bypass the mode bits

DAC_CAPS = {"usr/bin/read_search": "cap_dac_read_search+ep", "usr/bin/override": "cap_dac_override+ep",
            "usr/bin/override_not_effective": "cap_dac_override+p", "usr/bin/raw": "cap_net_raw+ep"}


@pytest.fixture(scope="module")
def caps_root(tmp_path_factory) -> str:
    """Programs with file capabilities whose RPATH is /secret (0700, root's), holding a 0600 libqa.so."""
    r = str(tmp_path_factory.mktemp("caps_root"))
    os.chmod(r, 0o755)
    build_world(WorldSpec((
        *(ProgSpec(p, needed=("libqa.so",), rpath="/secret") for p in DAC_CAPS),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False),
        LibSpec("secret/libqa.so", soname="libqa.so", libc=False),
    )), r, jobs=4)
    add_host_glibc(r)
    open(f"{r}/etc/suid-debug", "w").close()
    for p, caps in DAC_CAPS.items():
        subprocess.run(["setcap", caps, f"{r}/{p}"], check=True, capture_output=True)
    os.chmod(f"{r}/secret", 0o700)
    os.chmod(f"{r}/secret/libqa.so", 0o600)
    return r


@pytest.mark.parametrize("prog", list(DAC_CAPS))
def test_effective_file_capabilities_bypass_the_mode_bits(caps_root: str, prog: str) -> None:
    """CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE in the effective set (file capabilities +ep) let nobody's
    loader search /secret and read its library; in the permitted set only they do not."""
    env = {"LD_DEBUG": "libs"}
    p = subprocess.run([f"/{prog}"], env=env, capture_output=True, timeout=60,
                       preexec_fn=_with_ids(caps_root, False))
    real = oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "--root", caps_root, *ids, "-e",
                      "LD_DEBUG=libs", f"/{prog}"], oracle._own_env(), "/")
    assert_same(real, sim)


@pytest.fixture(scope="module")
def suid_ldso_root(tmp_path_factory) -> str:
    """A root whose own ld.so file is set-user-ID root, and a program whose RPATH is /secret (0700)."""
    r = str(tmp_path_factory.mktemp("suid_ldso_root"))
    os.chmod(r, 0o755)
    build_world(WorldSpec((
        ProgSpec("usr/bin/plain", needed=("libqa.so",), rpath="/secret"),
        LibSpec(f"{MULTIARCH}/libqa.so", soname="libqa.so", libc=False),
        LibSpec("secret/libqa.so", soname="libqa.so", libc=False),
    )), r, jobs=4)
    add_host_glibc(r)
    os.chmod(f"{r}/secret", 0o700)
    os.chmod(f"{r}/{MULTIARCH}/ld-linux-x86-64.so.2", 0o4755)
    return r


@pytest.mark.parametrize("args,env", [(("--list",), {}), ((), {"LD_TRACE_LOADED_OBJECTS": "1"})],
                         ids=["list", "trace-env-exits-5"])
def test_a_set_user_id_loader_runs_with_its_owner_ids(suid_ldso_root: str, args: tuple[str, ...],
                                                      env: dict[str, str]) -> None:
    """`ld.so PROG` by nobody, ld.so's file being set-user-ID root: the kernel gives the process root's
    effective uid (and AT_SECURE), so its loader may search /secret."""
    argv = [oracle.RTLD, *args, "/usr/bin/plain"]
    p = subprocess.run(argv, env=env, capture_output=True, timeout=60, preexec_fn=_with_ids(suid_ldso_root, False))
    real = oracle.Outcome(oracle.mask(p.stdout), oracle.mask(p.stderr), p.returncode)
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = oracle.run([sys.executable, "-m", "ldsim", "ld.so", "-i", "--root", suid_ldso_root, *ids, *eargs, "--",
                      *argv[1:]], oracle._own_env(), "/")
    assert_same(real, sim)


@pytest.mark.parametrize("cwd_mode", [0o700, 0o711], ids=["cwd-not-searchable", "cwd-searchable"])
def test_relative_paths_search_the_working_directory(cwd_mode: int) -> None:
    """A relative RPATH entry is looked up from the working directory, which nobody must be allowed to
    search (may_lookup on the walk's starting directory), even when its own subdirectory is open."""
    w = tempfile.mkdtemp(prefix="ldsim-secure-cwd-")  # under /tmp: nobody may reach it
    try:
        _relative_from_cwd(w, cwd_mode)
    finally:
        shutil.rmtree(w, ignore_errors=True)


def _relative_from_cwd(w: str, cwd_mode: int) -> None:
    os.chmod(w, 0o755)
    build_world(WorldSpec((
        ProgSpec("bin/p", needed=("libqa.so",), rpath="lib"),
        LibSpec("priv/lib/libqa.so", soname="libqa.so", libc=False),
        LibSpec("lib2/libqa.so", soname="libqa.so", libc=False),
    )), w, jobs=2)
    for d in ("bin", "lib2", "priv/lib"):
        os.chmod(f"{w}/{d}", 0o755)
    os.chmod(f"{w}/priv", cwd_mode)
    env = {"LD_DEBUG": "libs", "LD_LIBRARY_PATH": f"{w}/lib2"}
    real = oracle.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i",
                       *(f"{k}={v}" for k, v in env.items()), f"{w}/bin/p"], {}, f"{w}/priv")
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", *ids, *eargs, f"{w}/bin/p"], oracle._own_env(),
                     f"{w}/priv")
    assert_same(real, sim)


# ------------------------------------------------------------------ a nosuid mount

_NOSUID_RUN = r"""
import json, os, subprocess, sys
mnt, src, tree, progs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,mode=755", "tmpfs", mnt], check=True)
env = {"LD_DEBUG": "libs", "LD_LIBRARY_PATH": f"{src}/lib2"}
out = {}
for name, (mode, caps) in progs.items():
    dest = f"{mnt}/{name}"
    subprocess.run(["cp", f"{src}/bin/p", dest], check=True)
    os.chmod(dest, mode)
    if caps:
        subprocess.run(["setcap", caps, dest], check=True)
    real = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i",
                           *(f"{k}={v}" for k, v in env.items()), dest], capture_output=True, cwd="/")
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, "65534")]
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = subprocess.run([sys.executable, "-m", "ldsim", "run", "-i", *ids, *eargs, dest], capture_output=True,
                         cwd="/", env={"PATH": os.environ["PATH"], "PYTHONPATH": tree})
    out[name] = [[p.stdout.decode("latin-1"), p.stderr.decode("latin-1"), p.returncode] for p in (real, sim)]
print(json.dumps(out))
"""

NOSUID_PROGS = {"suid": (0o4755, None), "sgid": (0o2755, None), "caps": (0o755, "cap_dac_override+ep")}


@pytest.fixture(scope="module")
def nosuid_results() -> dict:
    """Set-ID and file-capability copies of one program on a tmpfs mounted nosuid (in a private mount
    namespace: `unshare -m`, nothing is mounted on the host), each run as nobody and simulated there."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    w = tempfile.mkdtemp(prefix="ldsim-secure-nosuid-")
    try:
        os.chmod(w, 0o755)
        build_world(WorldSpec((ProgSpec("bin/p", needed=("libqa.so",)),
                               LibSpec("lib2/libqa.so", soname="libqa.so", libc=False))), w, jobs=2)
        for d in ("bin", "lib2"):
            os.chmod(f"{w}/{d}", 0o755)
        os.mkdir(f"{w}/mnt")
        os.chmod(f"{w}/mnt", 0o755)
        tree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import json
        p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", _NOSUID_RUN,
                            f"{w}/mnt", w, tree, json.dumps(NOSUID_PROGS)], capture_output=True, timeout=300)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        return json.loads(p.stdout)
    finally:
        shutil.rmtree(w, ignore_errors=True)


@pytest.mark.parametrize("name", list(NOSUID_PROGS))
def test_a_nosuid_mount_is_not_secure(nosuid_results: dict, name: str) -> None:
    """execve ignores set-ID bits and file capabilities on a nosuid mount (mnt_may_suid): no secure mode,
    so LD_LIBRARY_PATH and LD_DEBUG apply."""
    real, sim = (oracle.Outcome(oracle.mask(o.encode("latin-1")), oracle.mask(e.encode("latin-1")), s)
                 for o, e, s in nosuid_results[name])
    assert_same(real, sim)


# ------------------------------------------------------------------ ldd run by another user

def _private_rpath_world(prefix: str, *extra) -> str:
    """A temporary world: bin/p's RPATH lists priv/ (only root may search it) before pub/, each holding a
    libqa.so; `extra` specs are added.  The caller removes it."""
    w = tempfile.mkdtemp(prefix=prefix)
    try:
        os.chmod(w, 0o755)
        build_world(WorldSpec((
            ProgSpec("bin/p", needed=("libqa.so",), rpath=f"{w}/priv:{w}/pub"), *extra,
            LibSpec("priv/libqa.so", soname="libqa.so", libc=False),
            LibSpec("pub/libqa.so", soname="libqa.so", libc=False),
        )), w, jobs=2)
        for d in ("bin", "pub"):
            os.chmod(f"{w}/{d}", 0o755)
        os.chmod(f"{w}/priv", 0o700)
    except BaseException:
        shutil.rmtree(w, ignore_errors=True)
        raise
    return w


@pytest.fixture(scope="module")
def ldd_world():
    """A program whose RPATH lists a directory only root may search before an open one, a program only
    executable (0711), and a copy in a directory only root may search."""
    w = _private_rpath_world("ldsim-secure-ldd-", ProgSpec("bin/q", needed=("libqa.so",)))
    try:
        os.chmod(f"{w}/bin/q", 0o711)
        os.mkdir(f"{w}/sec", 0o700)
        shutil.copy(f"{w}/bin/p", f"{w}/sec/p")
        yield w
    finally:
        shutil.rmtree(w, ignore_errors=True)


@pytest.mark.parametrize("args", [["bin/p"], ["bin/q"], ["sec/p"], ["-v", "bin/p", "bin/q"]],
                         ids=["rpath", "unreadable", "unsearchable", "batch"])
def test_ldd_by_another_user(ldd_world: str, args: list[str]) -> None:
    """`ldsim ldd --uid N --gid N` is ldd run by that user: its tests and its loader see what N may."""
    path = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    real = oracle.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i",
                       f"PATH={path['PATH']}", "ldd", *args], {}, ldd_world)
    sim = oracle.run([sys.executable, "-m", "ldsim", "ldd", "-i", "--uid", str(NOBODY), "--gid", str(NOBODY),
                      "-e", f"PATH={path['PATH']}", *args], oracle._own_env(), ldd_world)
    assert_same(real, sim)


# ------------------------------------------------------------------ a caller with no_new_privs

NNP_PROGS = {"suid": (0o4755, None), "sgid": (0o2755, None), "caps-ep": (0o755, "cap_dac_override+ep"),
             "caps-p": (0o755, "cap_dac_override+p")}


@pytest.fixture(scope="module")
def nnp_world():
    """Copies of one program, set-ID or with file capabilities; its RPATH lists a directory only root
    may search before an open one."""
    w = _private_rpath_world("ldsim-secure-nnp-")
    try:
        for name, (mode, caps) in NNP_PROGS.items():
            shutil.copy(f"{w}/bin/p", f"{w}/bin/{name}")
            os.chmod(f"{w}/bin/{name}", mode)
            if caps:
                subprocess.run(["setcap", caps, f"{w}/bin/{name}"], check=True, capture_output=True)
        yield w
    finally:
        shutil.rmtree(w, ignore_errors=True)


@pytest.mark.parametrize("name", list(NNP_PROGS))
def test_no_new_privs_caller(nnp_world: str, name: str) -> None:
    """`setpriv --no-new-privs`: set-ID bits give no ids (not secure, nobody's permissions); file
    capabilities give none either, but the effective bit alone still makes the exec secure (exit 5 for
    a trace request)."""
    env = {"LD_TRACE_LOADED_OBJECTS": "1"}
    prog = f"{nnp_world}/bin/{name}"
    real = oracle.run(["setpriv", "--no-new-privs", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                       "env", "-i", "LD_TRACE_LOADED_OBJECTS=1", prog], {}, nnp_world)
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    sim = oracle.run([sys.executable, "-m", "ldsim", "run", "-i", "--no-new-privs", *ids, *eargs, prog],
                     oracle._own_env(), nnp_world)
    assert_same(real, sim)
