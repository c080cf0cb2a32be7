"""`ldsim ldd` parses its own options without argparse (cold start); it must read every command line
exactly as the argparse parser does, and leave to argparse whatever it cannot be sure of."""

from __future__ import annotations

import itertools

from ldsim.cli import _fast_ldd_args, _split_own, build_parser

OWN = [["-i"], ["--secure"], ["-e", "A=1"], ["-e", "B=x=y"], ["-e", ""], ["--root", "/r"], ["--root=/s"],
       ["--root="], ["--profile", "debian-i386"], ["--pid", "12"], ["--pid= 7"], ["--pid", "x"], ["--pid", "-3"],
       ["--cpu", "x86-64-v3"], ["--cpu=baseline"], ["--cpu", "v9"], ["--uid", "5"], ["--egid=0"],
       ["-e", "-x"], ["-e"], ["--root", "--"], ["--root=-r"]]
REST = [[], ["/bin/ls"], ["-v", "/bin/ls"], ["--", "-r", "f"], ["--", "--", "f"], ["--help"], ["-e", "X=1", "f"]]


PARSER = build_parser(extras=False)


def _argparse(argv: list[str]) -> dict | None:
    try:
        ns = PARSER.parse_args(_split_own(argv))
    except SystemExit:
        return None
    return vars(ns)


def test_fast_ldd_args_read_like_argparse() -> None:
    compared = 0
    for n in (0, 1, 2):
        for own in itertools.permutations(OWN, n):
            for rest in REST:
                argv = ["ldd", *itertools.chain(*own), *rest]
                fast = _fast_ldd_args(argv)
                if fast is None:  # argparse answers these itself
                    continue
                assert vars(fast) == _argparse(argv), argv
                compared += 1
    assert compared > 1500


def test_fast_ldd_args_leave_doubtful_values_to_argparse() -> None:
    for argv in (["ldd", "--pid", "x", "f"], ["ldd", "--cpu", "v9", "f"], ["ldd", "-e", "-x", "f"]):
        assert _fast_ldd_args(argv) is None
    assert _fast_ldd_args(["ld.so", "f"]) is None
