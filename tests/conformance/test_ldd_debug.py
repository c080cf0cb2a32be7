"""`ldd` under LD_DEBUG against the real one, stdout and stderr apart.

ldd is a bash script, and bash's own loader reads LD_DEBUG too: its start (the libraries bash loads,
init calls) comes first on stderr; each subshell bash forks and that exits normally (one per executable
RTLD for `RTLD --version 2>&1`, two for try_trace) prints its exit (fini calls, final statistics) again,
and so does the script's own end; the `RTLD --verify FILE` runs print on ldd's stderr.  Also the IFUNC
resolvers of libc's time and gettimeofday, which look their vDSO function up while a real start binds
them (LD_BIND_NOW): bash binds both.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same
from tests.conformance.test_binding import _uncycled

pytestmark = pytest.mark.conformance

CASES = [
    ("libs", {"LD_DEBUG": "libs"}, ["/bin/true"]),
    ("libs-not-dynamic", {"LD_DEBUG": "libs"}, ["/etc/passwd"]),
    ("files-several", {"LD_DEBUG": "files"}, ["/bin/true", "/usr/bin/ls", "/nonexistent"]),
    ("unknown-word", {"LD_DEBUG": "bogus"}, ["/bin/true"]),
    ("unknown-and-libs", {"LD_DEBUG": "libs,bogus"}, ["/usr/bin/ls"]),
    ("versions-scopes-reloc", {"LD_DEBUG": "versions,scopes,reloc"}, ["/bin/true"]),
    ("libs-r-v", {"LD_DEBUG": "libs"}, ["-r", "-v", "/usr/bin/ls"]),
    ("libs-u", {"LD_DEBUG": "libs"}, ["-u", "/usr/bin/ls"]),
    ("libs-version-option", {"LD_DEBUG": "libs"}, ["--version"]),
    ("libs-bad-option", {"LD_DEBUG": "libs"}, ["--bogus"]),
    ("libs-no-file", {"LD_DEBUG": "libs"}, []),
    ("libs-preload", {"LD_DEBUG": "libs", "LD_PRELOAD": "libm.so.6"}, ["/bin/true"]),
    ("help", {"LD_DEBUG": "help"}, ["/bin/true"]),
    ("unused", {"LD_DEBUG": "unused"}, ["/bin/true"]),
    ("bindings-now", {"LD_DEBUG": "bindings", "LD_BIND_NOW": "1"}, ["/bin/true"]),
    ("all-now", {"LD_DEBUG": "all", "LD_BIND_NOW": "1"}, ["/usr/bin/ls"]),
    ("statistics-now", {"LD_DEBUG": "statistics", "LD_BIND_NOW": "1"}, ["/bin/true"]),
]


@pytest.mark.parametrize(("name", "env", "args"), CASES, ids=[c[0] for c in CASES])
def test_ldd_under_ld_debug(tmp_path, name: str, env: dict[str, str], args: list[str]) -> None:
    real = oracle.real_ldd(args, env, str(tmp_path))
    sim = oracle.ldsim_ldd(args, env, str(tmp_path))
    assert_same(_uncycled(real), _uncycled(sim))


def test_debug_output_keeps_bash_quiet(tmp_path) -> None:
    """With LD_DEBUG_OUTPUT the shell's debug lines go to files: ldd's own output is the trace alone."""
    env = {"LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": str(tmp_path / "dbg")}
    assert_same(oracle.real_ldd(["/bin/true"], env, str(tmp_path)),
                oracle.ldsim_ldd(["/bin/true"], {**env, "LD_DEBUG_OUTPUT": str(tmp_path / "sim")}, str(tmp_path)))


def test_lazy_bindings_of_the_shell_are_not_simulated(tmp_path) -> None:
    """What bash binds lazily while it runs the script cannot be known: one line, exit 3."""
    sim = oracle.ldsim_ldd(["/bin/true"], {"LD_DEBUG": "bindings"}, str(tmp_path))
    assert sim.status == 3 and sim.stdout == b"" and sim.stderr.count(b"\n") == 1
    assert b"not simulated" in sim.stderr


def test_time_ifunc_looks_up_the_vdso(tmp_path) -> None:
    """A program bound at start-up to libc's time and gettimeofday runs their IFUNC resolvers, which look
    __vdso_time / __vdso_gettimeofday up: executed vs `ldsim run`."""
    src = tmp_path / "t.c"
    src.write_text("#include <time.h>\n#include <sys/time.h>\n"
                   "int main(void) { struct timeval tv; return time(0) == 0 && gettimeofday(&tv, 0); }\n")
    prog = str(tmp_path / "t")
    subprocess.run(["gcc", "-o", prog, str(src)], check=True)
    for env in ({"LD_BIND_NOW": "1", "LD_DEBUG": "bindings,symbols"}, {"LD_DEBUG": "bindings"},
                {"LD_BIND_NOW": "1", "LD_DEBUG": "statistics"}):
        real = oracle.run([prog], env, str(tmp_path))
        sim = oracle.ldsim_run(prog, env, str(tmp_path))
        if "LD_BIND_NOW" not in env:  # lazily the calls bind at run time, after what ldsim simulates
            real = oracle.Outcome(real.stdout, _before_running(real.stderr), real.status)
            sim = oracle.Outcome(sim.stdout, _before_running(sim.stderr), sim.status)
        assert_same(_uncycled(real), _uncycled(sim))
    assert os.path.exists(prog)


def _before_running(stderr: bytes) -> bytes:
    """The lines up to `transferring control`."""
    cut = stderr.find(b"transferring control")
    return stderr if cut < 0 else stderr[:stderr.find(b"\n", cut) + 1]


def test_a_32_bit_program_under_ld_debug_files(tmp_path) -> None:
    """The i386 loader's `generating link map` lines: every field sizeof (void *) * 2 wide."""
    src = tmp_path / "m.c"
    src.write_text("int main(void) { return 0; }\n")
    prog = str(tmp_path / "m32")
    if subprocess.run(["gcc", "-m32", "-o", prog, str(src)], capture_output=True).returncode:
        pytest.skip("gcc -m32 cannot link (Debian: gcc-multilib)")
    if not os.path.exists("/lib/ld-linux.so.2"):
        pytest.skip("no i386 loader (Debian: libc6-i386)")
    for env in ({"LD_DEBUG": "files"}, {"LD_DEBUG": "libs,files", "LD_LIBRARY_PATH": str(tmp_path)}):
        assert_same(oracle.real_ldd([prog], env, str(tmp_path)), oracle.ldsim_ldd([prog], env, str(tmp_path)))
