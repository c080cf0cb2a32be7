"""LD_SHOW_AUXV against the real loader: `_dl_show_auxv` prints the kernel's auxiliary vector on stdout
while process_envvars reads the variable — the entries' order and the kernel's own values (AT_HWCAP,
AT_MINSIGSTKSZ, ...) as this machine's kernel gives them, the executed file's AT_PHNUM, the ids,
AT_EXECFN (the name execve was given: under ldd, the script for bash and RTLD for the trace).  Exec of a
program, ld.so run explicitly, ldd (bash's start, the trace; the --verify runs' stdout is discarded),
and the variable's place among LD_DEBUG's own early output (an unknown word's warning, help's exit).
Addresses are masked."""

from __future__ import annotations

import sys

import pytest

from tests import oracle

pytestmark = pytest.mark.conformance

AUXV = {"LD_SHOW_AUXV": "1"}
PROGS = ["/usr/bin/true", "/usr/bin/ls"]  # exec'd: only true (ls would print its listing)


def _same(real: oracle.Outcome, sim: oracle.Outcome) -> None:
    assert b"AT_PHNUM" in real.stdout or b"AT_PHNUM" not in sim.stdout
    assert real == sim, oracle.diff_report(real, sim)


ENVS = {
    "plain": AUXV,
    "empty-value": {"LD_SHOW_AUXV": ""},
    "with-bind-now": {**AUXV, "LD_BIND_NOW": "1"},
    "debug-help-after": {**AUXV, "LD_DEBUG": "help"},  # printed, then the help, exit 0
    "debug-help-before": {"LD_DEBUG": "help", **AUXV},  # help exits before the variable is read
    "debug-unknown": {"LD_DEBUG": "bogus,libs", **AUXV},
}


@pytest.mark.parametrize("env", ENVS, ids=list(ENVS))
def test_exec(env: str) -> None:
    real = oracle.run([PROGS[0]], ENVS[env], "/")
    sim = oracle.ldsim_run(PROGS[0], ENVS[env], "/")
    _same(real, sim)


@pytest.mark.parametrize("env", ENVS, ids=list(ENVS))
@pytest.mark.parametrize("opts", [["--list", PROGS[1]], [PROGS[0]], ["--verify", PROGS[1]]],
                         ids=["list", "run", "verify"])
def test_loader_invoked(opts: list[str], env: str) -> None:
    real = oracle.real_ldso(opts, ENVS[env], "/")
    sim = oracle.ldsim_ldso(opts, ENVS[env], "/")
    _same(real, sim)


@pytest.mark.parametrize("args", [[PROGS[0]], ["-v", *PROGS]],
                         ids=["one", "two-verbose"])
def test_ldd(args: list[str]) -> None:
    real = oracle.real_ldd(args, AUXV, "/")
    sim = oracle.ldsim_ldd(args, AUXV, "/")
    _same(real, sim)


RTLD32 = "/lib/ld-linux.so.2"


@pytest.fixture(scope="module")
def prog32(tmp_path_factory) -> str:
    """A 32-bit program (gcc -m32) for the i386 loader of libc6-i386."""
    from tests.conformance.test_foreign import MAIN0, _cc, _need, _need_m32
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    d = str(tmp_path_factory.mktemp("auxv32"))
    _cc(["gcc", "-m32"], f"{d}/m32", MAIN0)
    return f"{d}/m32"


I386_RUNS = [(h, e) for h in ("exec", "ld.so", "exec-ld.so") for e in ("plain", "debug-unknown")] + [("ldd", "plain")]


@pytest.mark.parametrize("how,env", I386_RUNS, ids=[f"{h}-{e}" for h, e in I386_RUNS])
def test_i386_process(prog32: str, how: str, env: str) -> None:
    """An i386 process on this x86-64 kernel gets the compat vector (ARCH_DLINFO_IA32: AT_SYSINFO before
    AT_SYSINFO_EHDR, AT_PLATFORM i686, AT_PHENT 32) and the i386 loader prints AT_HWCAP bit by bit with
    its _dl_x86_cap_flags names (sysdeps/unix/sysv/linux/i386/dl-procinfo.h); ldsim knew only its own
    ABI's vector and said so (exit 3)."""
    e = ENVS[env]
    if how == "ldd":
        real, sim = oracle.real_ldd([prog32], e, "/"), oracle.ldsim_ldd([prog32], e, "/")
    else:
        argv = {"exec": [prog32], "ld.so": [RTLD32, prog32], "exec-ld.so": [RTLD32, "--list", prog32]}[how]
        eargs = [a for k, v in e.items() for a in ("-e", f"{k}={v}")]
        cmd = (["ld.so", "--profile", "debian-i386-biarch", "-i", *eargs, *argv[1:]] if how == "ld.so"
               else ["run", "-i", *eargs, *argv])
        real = oracle.run(argv, e, "/")
        sim = oracle.run([sys.executable, "-m", "ldsim", *cmd], oracle._own_env(), "/")
    assert b"AT_SYSINFO:" in real.stdout
    _same(real, sim)
