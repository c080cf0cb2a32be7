"""LD_SHOW_AUXV against the real loader: `_dl_show_auxv` prints the kernel's auxiliary vector on stdout
while process_envvars reads the variable — the entries' order and the kernel's own values (AT_HWCAP,
AT_MINSIGSTKSZ, ...) as this machine's kernel gives them, the executed file's AT_PHNUM, the ids,
AT_EXECFN (the name execve was given: under ldd, the script for bash and RTLD for the trace).  Exec of a
program, ld.so run explicitly, ldd (bash's start, the trace; the --verify runs' stdout is discarded),
and the variable's place among LD_DEBUG's own early output (an unknown word's warning, help's exit).
Addresses are masked."""

from __future__ import annotations

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
