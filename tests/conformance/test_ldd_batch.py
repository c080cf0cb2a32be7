"""`ldsim ldd FILE...` over many files, simulated in forked workers (`--jobs`), against the real ldd given
the same list: the "FILE:" headers, every file's lines and messages in the list's order, and the exit
status; and a script that ends in the middle of the list (a truncated program: `exited with unknown exit
code`) prints nothing after that file, whichever worker simulated the files after it."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.oracle import diff_report, ldsim_ldd, real_ldd


def _programs(n: int) -> list[str]:
    out = []
    for name in sorted(os.listdir("/usr/bin")):
        path = os.path.join("/usr/bin", name)
        try:
            with open(path, "rb") as f:
                if os.path.isfile(path) and f.read(4) == b"\x7fELF":
                    out.append(path)
        except OSError:
            continue
        if len(out) == n:
            break
    assert len(out) == n
    return out


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("batch")
    short = d / "short"  # the header whole, the dynamic section's page past EOF: --verify dies of SIGBUS
    shutil.copyfile("/usr/bin/true", short)
    os.truncate(short, 1000)
    os.chmod(short, 0o755)
    text = d / "notes.txt"
    text.write_text("not ELF\n")
    return {"short": str(short), "text": str(text), "dir": str(d), "missing": str(d / "missing")}


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
@pytest.mark.parametrize("opts", [[], ["-v"]], ids=["plain", "verbose"])
def test_many_files_in_order(jobs: str, opts: list[str], odd_files: dict[str, str]) -> None:
    progs = _programs(70)
    args = [*opts, *progs[:30], odd_files["missing"], odd_files["text"], *progs[30:], odd_files["dir"]]
    real = real_ldd(args)
    sim = ldsim_ldd(["--jobs", jobs, *args])
    assert real == sim, diff_report(real, sim)


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_script_exit_in_the_middle(jobs: str, odd_files: dict[str, str]) -> None:
    progs = _programs(70)
    args = [*progs[:41], odd_files["short"], *progs[41:]]
    real = real_ldd(args)
    assert b"unknown exit code" in real.stderr  # the case this test is about
    sim = ldsim_ldd(["--jobs", jobs, *args])
    assert real == sim, diff_report(real, sim)
