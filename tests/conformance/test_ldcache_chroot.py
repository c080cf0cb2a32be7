"""ld.so's use of a root's /etc/ld.so.cache: the real loader chrooted into a root whose cache the real
`ldconfig -r` wrote (then damaged or made stale), against `ldsim ld.so --root`.

Every expectation comes from running the real tools at test time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests.conformance.conftest import add_host_glibc, assert_same
from tests.oracle import Outcome, mask

pytestmark = pytest.mark.conformance

LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"
if not (os.path.exists(LDCONFIG) and os.geteuid() == 0):
    pytest.skip("needs the real ldconfig and root (ldconfig -r and the loader chroot)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
RTLD = "/lib64/ld-linux-x86-64.so.2"
TRACE = {"LD_DEBUG": "libs"}


def _world() -> WorldSpec:
    """/bin/prog needs liba.so.1 (in /opt/a, with x86-64-v2 and -v3 copies under glibc-hwcaps) and
    libb.so.2 (/opt/b); both directories only in ld.so.conf, so the cache decides."""
    return WorldSpec((
        ProgSpec("bin/prog", needed=("liba.so.1", "libb.so.2")),
        LibSpec("opt/a/liba.so.1", soname="liba.so.1", libc=False),
        LibSpec("opt/a/glibc-hwcaps/x86-64-v2/liba.so.1", soname="liba.so.1", libc=False,
                cflags=("-Wl,-z,x86-64-v2",)),
        LibSpec("opt/a/glibc-hwcaps/x86-64-v3/liba.so.1", soname="liba.so.1", libc=False,
                cflags=("-Wl,-z,x86-64-v3",)),
        LibSpec("opt/b/libb.so.2", soname="libb.so.2", libc=False),
    ))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("cache_root")
    build_world(_world(), str(r), jobs=2)
    add_host_glibc(str(r))
    (r / "etc/ld.so.conf").write_text("/opt/a\n/opt/b\n")
    return r


def _real_ldconfig(root: Path, *args: str) -> None:
    p = subprocess.run(["ldconfig", "-r", str(root), *args], executable=LDCONFIG, capture_output=True,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert p.returncode == 0, p.stderr


def _chrooted(root: Path, argv: list[str], env: dict[str, str]) -> Outcome:
    p = subprocess.run(argv, env=env, capture_output=True, timeout=60,
                       preexec_fn=lambda: (os.chroot(root), os.chdir("/")))
    return Outcome(mask(p.stdout), mask(p.stderr), p.returncode)


def _ldsim(root: Path, argv: list[str], env: dict[str, str]) -> Outcome:
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    p = subprocess.run([sys.executable, "-m", "ldsim", "ld.so", "--root", str(root), "-i", *eargs, "--", *argv],
                       env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "")}, capture_output=True,
                       timeout=60)
    return Outcome(mask(p.stdout), mask(p.stderr), p.returncode)


def _u32(data: bytes, off: int) -> int:
    return int.from_bytes(data[off:off + 4], "little")


def _hwcaps_strings(data: bytes) -> int:
    """Offset of the glibc-hwcaps section's array of string offsets in a new-format cache."""
    ext = _u32(data, 32)
    for i in range(_u32(data, ext + 4)):
        sec = ext + 8 + 16 * i
        if _u32(data, sec) == 1:  # cache_extension_tag_glibc_hwcaps
            return _u32(data, sec + 8)
    raise AssertionError("no glibc-hwcaps section")


def _hwcaps_offset_past_end(index: int) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        b = bytearray(data)
        at = _hwcaps_strings(data) + 4 * index
        b[at:at + 4] = (len(data) + 0x100).to_bytes(4, "little")
        return bytes(b)
    return damage


@pytest.mark.parametrize("index", [0, 1])
def test_hwcaps_string_outside_the_cache(root: Path, index: int) -> None:
    """glibc_hwcaps_priorities_init (elf/dl-cache.c) stores a 0 for a hwcaps name whose string offset
    lies past the file but advances neither list: while an active subdirectory is left to merge it
    writes zeros off its array until the loader dies of SIGSEGV, at the first lookup that meets a
    glibc-hwcaps entry (ldsim gave that name priority 0 and went on loading)."""
    _real_ldconfig(root)
    cache = root / "etc/ld.so.cache"
    good = cache.read_bytes()
    try:
        cache.write_bytes(_hwcaps_offset_past_end(index)(good))
        argv = [RTLD, "--list", "/bin/prog"]
        assert_same(_chrooted(root, argv, TRACE), _ldsim(root, argv[1:], TRACE))
    finally:
        cache.write_bytes(good)


# Sonames whose digit runs pass 2**31: _dl_cache_libcmp's int values and differences wrap, so the
# table ldconfig wrote is not sorted for a comparison that does not wrap, and the binary search of
# search_cache finds (or misses) entries accordingly.
WRAPPING = {
    "two": ("2147483647", "3000000000"),
    "six": ("2147483647", "3500000000", "2", "4294967295", "10", "2147483648"),
}


@pytest.fixture(scope="module")
def wrapping_roots(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for case, numbers in WRAPPING.items():
        r = tmp_path_factory.mktemp(f"wrap_{case}")
        names = [f"libx.so.{n}" for n in numbers]
        build_world(WorldSpec((
            *(ProgSpec(f"bin/prog{i}", needed=(n,)) for i, n in enumerate(names)),
            *(LibSpec(f"opt/a/{n}", soname=n, libc=False) for n in names),
        )), str(r), jobs=2)
        add_host_glibc(str(r))
        (r / "etc/ld.so.conf").write_text("/opt/a\n")
        _real_ldconfig(r)
        out[case] = r
    return out


@pytest.mark.parametrize("case,index", [(c, i) for c, ns in WRAPPING.items() for i in range(len(ns))])
def test_cache_lookup_of_wrapping_sonames(wrapping_roots: dict[str, Path], case: str, index: int) -> None:
    """search_cache compares with the wrapping _dl_cache_libcmp too: some of these names are found in
    the cache, others (present in it) are missed."""
    root = wrapping_roots[case]
    argv = [RTLD, "--list", f"/bin/prog{index}"]
    assert_same(_chrooted(root, argv, TRACE), _ldsim(root, argv[1:], TRACE))
