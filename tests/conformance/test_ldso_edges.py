"""`ld.so [OPTIONS] PROGRAM` and exec under odd command lines and environments, against the real loader
(dl_main's option loop and process_envvars, elf/rtld.c).  Each case is one edge a differential hunt found
ldsim getting wrong."""

from __future__ import annotations

import os
import re
import sys

import pytest

from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests import oracle
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance

def _debug_files(cwd: str, base: str = "") -> list[bytes]:
    """The masked contents of the `BASE.PID` files LD_DEBUG_OUTPUT=BASE left in cwd."""
    pattern = re.compile(re.escape(base) + r"\.\d+$")
    return [oracle.mask(open(os.path.join(cwd, n), "rb").read())
            for n in sorted(os.listdir(cwd)) if pattern.match(n)]


def test_empty_debug_output_names_dot_pid(tmp_path) -> None:
    """LD_DEBUG_OUTPUT= (empty) is still a file name: process_envvars opens ".PID" in the working
    directory and the debug lines go there, not to stderr."""
    env = {"LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": ""}
    real_dir, sim_dir = tmp_path / "real", tmp_path / "sim"
    real_dir.mkdir()
    sim_dir.mkdir()
    assert_same(oracle.real_ldso(["/bin/true"], env, str(real_dir)),
                oracle.ldsim_ldso(["/bin/true"], env, str(sim_dir)))
    real_files, sim_files = _debug_files(str(real_dir)), _debug_files(str(sim_dir))
    assert len(real_files) == 1 and real_files == sim_files


@pytest.mark.parametrize("args", [["--", "/bin/true"], ["--list", "--", "/bin/true"], ["--"]],
                         ids=["first", "after-list", "alone"])
def test_double_dash_is_an_unrecognized_option(tmp_path, args: list[str]) -> None:
    """dl_main's option loop means '--' to end the options, but tests `_dl_argv[1][1] == '\\0'` on an
    argument whose second byte is '-': '--' is an unrecognized option (usage message, exit 1)."""
    assert_same(oracle.real_ldso(args, {}, str(tmp_path)), oracle.ldsim_ldso(args, {}, str(tmp_path)))


LIST_LOOKUPS = [
    ("found", ["--list", "/bin/true", "malloc", "printf"], {}),
    ("in-ld.so", ["--list", "/bin/true", "_dl_argv", "environ"], {"LD_DEBUG": "symbols,bindings"}),
    ("undefined", ["--list", "/bin/true", "malloc", "no_such_symbol", "free"], {"LD_DEBUG": "bindings"}),
    ("argv0", ["--argv0", "zz", "--list", "/bin/true", "no_such_symbol"], {}),
    ("ld.so-itself", ["--list", "/lib64/ld-linux-x86-64.so.2", "/bin/true"], {}),
    ("not-in-trace-mode", ["/bin/true", "no_such_symbol"], {"LD_TRACE_LOADED_OBJECTS": "1"}),
]


@pytest.mark.parametrize(("args", "env"), [c[1:] for c in LIST_LOOKUPS], ids=[c[0] for c in LIST_LOOKUPS])
def test_list_looks_up_the_words_after_the_program(tmp_path, args: list[str], env: dict[str, str]) -> None:
    """`ld.so --list PROGRAM NAME...` (rtld_mode_list, not trace mode): after the listing dl_main looks
    each NAME up from the main map ("NAME found at 0x... in object at 0x..."); an undefined one is a
    fatal symbol lookup error, exit 127."""
    assert_same(oracle.real_ldso(args, env, str(tmp_path)), oracle.ldsim_ldso(args, env, str(tmp_path)))


@pytest.mark.parametrize("prog", ["/nonexistent/prog", "/etc/hostname", "/etc"], ids=["missing", "text", "dir"])
def test_argv0_is_set_after_the_program_is_mapped(tmp_path, prog: str) -> None:
    """--argv0 replaces _dl_argv[0] only after dl_main has mapped the program: an error mapping it is
    reported under the program's own path."""
    args = ["--argv0", "other-name", prog]
    assert_same(oracle.real_ldso(args, {}, str(tmp_path)), oracle.ldsim_ldso(args, {}, str(tmp_path)))


MODE_ORDERS = [
    ("verify-then-list", ["--verify", "--list", "/bin/true"]),
    ("list-then-verify", ["--list", "--verify", "/bin/true"]),
    ("help-then-verify", ["--help", "--verify", "/bin/true"]),
    ("verify-then-help", ["--verify", "--help"]),
    ("list-verify-list", ["--list", "--verify", "--list", "/bin/true"]),
]


@pytest.mark.parametrize("args", [c[1] for c in MODE_ORDERS], ids=[c[0] for c in MODE_ORDERS])
def test_the_last_mode_option_wins(tmp_path, args: list[str]) -> None:
    """--list and --verify set one state.mode in dl_main's loop: the last wins (--help stays)."""
    assert_same(oracle.real_ldso(args, {}, str(tmp_path)), oracle.ldsim_ldso(args, {}, str(tmp_path)))


def test_list_tunables_is_not_simulated(tmp_path) -> None:
    """--list-tunables is a mode like --list: ldsim says it does not simulate it (exit 3), and a later
    --list replaces it, as in the real loader."""
    sim = oracle.ldsim_ldso(["--list-tunables"], {}, str(tmp_path))
    assert (sim.stdout, sim.status) == (b"", 3) and b"not simulated" in sim.stderr
    args = ["--list-tunables", "--list", "/bin/true"]
    assert_same(oracle.real_ldso(args, {}, str(tmp_path)), oracle.ldsim_ldso(args, {}, str(tmp_path)))


SECURE_HELP = [("program", ["--help", "/bin/true"]), ("no-program", ["--help"]),
               ("unmappable-program", ["--help", "/nonexistent/prog"])]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run ld.so with only its real uid changed")
@pytest.mark.parametrize("args", [c[1] for c in SECURE_HELP], ids=[c[0] for c in SECURE_HELP])
def test_secure_help_with_a_program_asserts(tmp_path, args: list[str]) -> None:
    """ld.so run by a process whose real uid is not its effective one is secure: process_envvars
    unsetenv()s LD_LIBRARY_PATH, and --help with a program that maps then reaches glibc 2.36's
    _dl_start_args_adjust, whose assertion fails (exit 127); without a mapped program _dl_help runs."""
    env = ["LD_LIBRARY_PATH=/x"]
    real = oracle.run(["setpriv", "--ruid=65534", "env", "-i", *env, oracle.RTLD, *args], {}, str(tmp_path))
    ids = ["--uid", "65534", "--euid", "0", "--gid", "0", "--egid", "0"]
    sim = oracle.run([sys.executable, "-m", "ldsim", "ld.so", "-i", *ids, "-e", env[0], "--", *args],
                     oracle._own_env(), str(tmp_path))
    assert_same(real, sim)


@pytest.fixture(scope="module")
def rpath_world(tmp_path_factory) -> str:
    """bin/m (RPATH $ORIGIN/../lib) needs lib/libr.so (RPATH $ORIGIN/../pre), which needs pre/libp.so."""
    root = str(tmp_path_factory.mktemp("rpath_world"))
    build_world(WorldSpec((
        ProgSpec("bin/m", needed=("libr.so",), rpath="$ORIGIN/../lib"),
        LibSpec("lib/libr.so", soname="libr.so", needed=("libp.so",), rpath="$ORIGIN/../pre", libc=False),
        LibSpec("pre/libp.so", soname="libp.so", libc=False),
    )), root, jobs=2)
    return root


INHIBIT = [("trailing-colon", "{root}/lib/libr.so:"), ("leading-colon", ":{root}/lib/libr.so"),
           ("empty", ""), ("empty-elements", "x::{root}/lib/libr.so"), ("lone-colon", ":"),
           ("prefix", "{root}/lib/libr")]


@pytest.mark.parametrize("inhibit", [c[1] for c in INHIBIT], ids=[c[0] for c in INHIBIT])
def test_inhibit_rpath_list_scan(rpath_world: str, inhibit: str) -> None:
    """--inhibit-rpath LIST is scanned by decompose_rpath against each object's l_name (the main
    program's is ""): an empty element names the main program, except a trailing one, never tried."""
    args = ["--list", "--inhibit-rpath", inhibit.replace("{root}", rpath_world), f"{rpath_world}/bin/m"]
    env = {"LD_DEBUG": "libs"}
    assert_same(oracle.real_ldso(args, env, rpath_world), oracle.ldsim_ldso(args, env, rpath_world))


@pytest.mark.parametrize("args", [["--help", "/bin/true"], ["--version"], ["--bogus"], ["--help"]],
                         ids=["help-program", "version", "usage-error", "help"])
def test_debug_output_before_the_program_runs(tmp_path, args: list[str]) -> None:
    """process_envvars opens LD_DEBUG_OUTPUT.PID before the options are read: --help's debug lines
    (mapping the program, the vDSO lookups) go there, and --version or a usage error leave it empty."""
    env = {"LD_DEBUG": "files,symbols", "LD_DEBUG_OUTPUT": "dbg"}
    real_dir, sim_dir = tmp_path / "real", tmp_path / "sim"
    real_dir.mkdir()
    sim_dir.mkdir()
    assert_same(oracle.real_ldso(args, env, str(real_dir)), oracle.ldsim_ldso(args, env, str(sim_dir)))
    real_files, sim_files = _debug_files(str(real_dir), "dbg"), _debug_files(str(sim_dir), "dbg")
    assert len(real_files) == 1 and real_files == sim_files


NOBODY = 65534


@pytest.fixture(scope="module")
def private_world():
    """A world where nobody may not read everything: lib/ (0755) has liba.so, libb.so; priv/ (0700)
    and lib600/ (0755, its liba.so 0600) hide other copies; bin/m000 is 0700; out/ is root's 0755."""
    import shutil
    import tempfile
    root = tempfile.mkdtemp(prefix="ldsim-private-")
    try:
        build_world(WorldSpec((
            ProgSpec("bin/m", needed=("liba.so",)),
            LibSpec("lib/liba.so", soname="liba.so", needed=("libb.so",), libc=False),
            LibSpec("lib/libb.so", soname="libb.so", libc=False),
        )), root, jobs=2)
        for d in ("priv", "lib600", "out"):
            os.mkdir(f"{root}/{d}")
        for d in ("priv", "lib600"):
            shutil.copy(f"{root}/lib/liba.so", f"{root}/{d}/liba.so")
        shutil.copy(f"{root}/bin/m", f"{root}/bin/m000")
        modes = {"": 0o755, "bin": 0o755, "lib": 0o755, "priv": 0o700, "lib600": 0o755,
                 "lib600/liba.so": 0o600, "bin/m000": 0o700, "out": 0o755}
        for rel, mode in modes.items():
            os.chmod(os.path.join(root, rel), mode)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


PRIVATE = [
    ("dir-not-searchable", ["{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/priv:{r}/lib"}),
    ("file-not-readable", ["{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/lib600:{r}/lib"}),
    ("only-unreadable", ["{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/lib600"}),
    ("trace-only-unreadable", ["{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/lib600", "LD_TRACE_LOADED_OBJECTS": "1"}),
    ("preload-unreadable", ["{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/lib", "LD_PRELOAD": "{r}/lib600/liba.so"}),
    ("debug-output-not-writable", ["{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/lib", "LD_DEBUG_OUTPUT": "{r}/out/d"}),
    ("ldso-program-unreadable", [oracle.RTLD, "--list", "{r}/bin/m000"], {}),
    ("ldso-dir-not-searchable", [oracle.RTLD, "--list", "{r}/bin/m"], {"LD_LIBRARY_PATH": "{r}/priv:{r}/lib"}),
]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run programs as nobody")
@pytest.mark.parametrize(("argv", "env"), [c[1:] for c in PRIVATE], ids=[c[0] for c in PRIVATE])
def test_files_nobody_may_not_read(private_world: str, argv: list[str], env: dict[str, str]) -> None:
    """Run as nobody (`setpriv --reuid=65534 --regid=65534 --clear-groups`), the loader meets EACCES
    where ldsim, as root, could read: a directory it may not search or a file it may not read is passed
    over like a missing one, reported when nothing else is found; LD_DEBUG_OUTPUT it may not create
    falls back to stdout.  Against `ldsim run|ld.so --uid 65534 ...`."""
    r = private_world
    argv = [a.replace("{r}", r) for a in argv]
    env = {"LD_DEBUG": "libs", **{k: v.replace("{r}", r) for k, v in env.items()}}
    envl = [f"{k}={v}" for k, v in env.items()]
    real = oracle.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i",
                       *envl, *argv], {}, r)
    ids = [a for k in ("--uid", "--euid", "--gid", "--egid") for a in (k, str(NOBODY))]
    eargs = [a for e in envl for a in ("-e", e)]
    cmd = ["ld.so", *ids, "-i", *eargs, "--", *argv[1:]] if argv[0] == oracle.RTLD else \
        ["run", *ids, "-i", *eargs, "--", *argv]
    sim = oracle.run([sys.executable, "-m", "ldsim", *cmd], oracle._own_env(), r)
    assert_same(real, sim)
    assert not os.listdir(f"{r}/out")
