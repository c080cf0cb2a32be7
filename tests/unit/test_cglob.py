"""ldsim.cglob against this machine's glibc glob(3) and fnmatch(3), called through ctypes at test time."""

from __future__ import annotations

import ctypes
import os

import pytest
from hypothesis import given, settings, strategies as st

from ldsim.cglob import fnmatch, glob
from ldsim.world import HostWorld

try:
    LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: nothing to compare with
    pytest.skip("needs glibc's libc.so.6", allow_module_level=True)
FNM_PERIOD = 4


class _Glob(ctypes.Structure):
    _fields_ = [("pathc", ctypes.c_size_t), ("pathv", ctypes.POINTER(ctypes.c_char_p)), ("offs", ctypes.c_size_t),
                ("flags", ctypes.c_int), ("funcs", ctypes.c_void_p * 8)]


def _real_glob(pattern: str) -> list[str]:
    g = _Glob()
    if LIBC.glob64(os.fsencode(pattern), 0, None, ctypes.byref(g)) != 0:
        return []
    try:
        return [os.fsdecode(g.pathv[i]) for i in range(g.pathc)]
    finally:
        LIBC.globfree64(ctypes.byref(g))


# [.c.] and [=c=] (collating elements) are not modelled: left out of the alphabet
PATTERN_PIECES = list("ab.[]!^-:\\*?z1") + ["[:digit:]", "[:alpha:]", "[:z:]", "[:foo:]"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PATTERN_PIECES), max_size=8).map("".join),
       st.text(alphabet="ab.[]-1z:\\^!", max_size=6))
def test_fnmatch_period_is_glibcs(pattern, name):
    assert fnmatch(pattern, name) == (LIBC.fnmatch(os.fsencode(pattern), os.fsencode(name), FNM_PERIOD) == 0)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    # four levels below a directory of its own: a tail of at most four '..' never reaches shared dirs
    d = os.path.join(str(tmp_path_factory.mktemp("globtree")), "d1/d2/d3/d4")
    for rel in ("a/x.conf", "a/y.conf", "a/.h.conf", "b/x.conf", "b/sub/z.conf", "c.d/q.conf", "[x]/k.conf",
                "s*/m.conf"):
        os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
        open(os.path.join(d, rel), "w").close()
    os.symlink("a", os.path.join(d, "la"))
    os.symlink("nowhere", os.path.join(d, "a/dead.conf"))
    return d


GLOB_PIECES = ["a", "b", "*", "?", ".*", "[ab]", "x.conf", "*.conf", "", "la", "sub", "[x]", "\\[x]", "s\\*", ".",
               "..", "c.d", "[!a]*", "x.conf/", "a/"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(GLOB_PIECES), min_size=1, max_size=4).map("/".join), st.booleans(), st.booleans())
def test_glob_names_are_glibcs(tree, tail, absolute, doubled):
    """Same matches, same order and the same text: `//` and relative prefixes are kept as written."""
    pattern = f"{tree}/{tail}" if absolute or tail.startswith("/") else tail  # never the host's own tree
    if doubled:
        pattern = pattern.replace("/", "//", 1)
    cwd = os.getcwd()
    os.chdir(tree)
    try:
        real = _real_glob(pattern)
    finally:
        os.chdir(cwd)
    assert glob(HostWorld(tree), pattern) == real
