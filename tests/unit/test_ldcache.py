"""ld.so.cache reader/writer: against caches the real ldconfig writes, and on hostile bytes."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from ldsim import ldcache
from ldsim.ldcache import NewEntry, build_cache, libcmp, parse_cache
from ldsim.render.ldconfig import print_cache_lines

LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"
HOST = dict(hwcaps_subdirs=["x86-64-v3", "x86-64-v2"], hwcap_mask_bits=0x2, platform_bit=None, isa_level=2)
needs_ldconfig = pytest.mark.skipif(not os.path.exists(LDCONFIG), reason="no ldconfig")


def _real_cache(tmp_path, fmt: str) -> tuple[bytes, str]:
    """A cache of this machine's own ld.so.conf written by the real ldconfig into a scratch file."""
    out = tmp_path / f"cache.{fmt}"
    subprocess.run([LDCONFIG, "-X", "-i", "-c", fmt, "-C", str(out)], check=True, capture_output=True)
    return out.read_bytes(), str(out)


def _real_listing(path: str) -> list[str]:
    r = subprocess.run([LDCONFIG, "-p", "-C", path], check=True, capture_output=True, text=True,
                       errors="surrogateescape")
    return r.stdout.splitlines()


@needs_ldconfig
@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_reader_matches_ldconfig_p(tmp_path, fmt):
    data, path = _real_cache(tmp_path, fmt)
    cache = parse_cache(data)
    assert cache.error is None and cache.format == fmt
    assert print_cache_lines(cache, path) == _real_listing(path)


@needs_ldconfig
@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_writer_roundtrip_is_byte_identical(tmp_path, fmt):
    """Rebuilding the real cache from its own entries gives the same bytes (sort, strings, padding)."""
    data, _ = _real_cache(tmp_path, fmt)
    cache = parse_cache(data)
    entries = []
    for e in cache.entries:
        d, f = e.path.rsplit("/", 1)
        entries.append(NewEntry(d, f, e.soname, e.flags, e.isa_level,
                                0 if e.is_glibc_hwcaps else e.hwcap, e.hwcaps_subdir))
    assert build_cache(entries, fmt, cache.generator or ldcache.GENERATOR_2_36, cache.glibc_hwcaps) == data


@needs_ldconfig
@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_lookup_returns_first_plain_x86_64_line(tmp_path, fmt):
    """Without glibc-hwcaps or legacy-hwcap entries, ld.so takes the first `(libc6,x86-64)` line."""
    data, path = _real_cache(tmp_path, fmt)
    cache = parse_cache(data)
    expected: dict[str, str] = {}
    others: set[str] = set()
    for line in _real_listing(path)[1:]:
        if not line.startswith("\t"):
            continue
        soname, rest = line[1:].split(" (", 1)
        kind, target = rest.split(") => ", 1)
        if kind == "libc6,x86-64":
            expected.setdefault(soname, target)
        else:
            others.add(soname)
    assert expected
    for soname, target in expected.items():
        assert cache.lookup(soname, **HOST) == target, soname
    for soname in others - set(expected):
        assert cache.lookup(soname, **HOST) is None
    assert cache.lookup("libdoesnotexist.so.1", **HOST) is None


def _entry(soname, d="/l", f=None, flags=0x0303, hwcap=0, sub=None, isa=0):
    return NewEntry(d, f or soname, soname, flags, isa, hwcap, sub)


def test_hwcaps_priority_and_isa_skip():
    entries = [
        _entry("libz.so.1", "/l"),
        _entry("libz.so.1", "/l/glibc-hwcaps/x86-64-v2", "libz.so.1.2", sub="x86-64-v2", isa=1),
        _entry("libz.so.1", "/l/glibc-hwcaps/x86-64-v3", "libz.so.1.3", sub="x86-64-v3", isa=2),
        _entry("libz.so.1", "/l/glibc-hwcaps/x86-64-v4", "libz.so.1.4", sub="x86-64-v4", isa=3),
        _entry("libz.so.1", "/l/tls", hwcap=1 << 63),
        _entry("libz.so.1", "/l/haswell", hwcap=1 << 50),
    ]
    c = parse_cache(build_cache(entries, "new"))
    assert [e.hwcaps_subdir for e in c.entries][:3] == ["x86-64-v2", "x86-64-v3", "x86-64-v4"]
    assert c.lookup("libz.so.1", **HOST) == "/l/glibc-hwcaps/x86-64-v3/libz.so.1.3"
    v4 = dict(HOST, hwcaps_subdirs=["x86-64-v4", "x86-64-v3", "x86-64-v2"], isa_level=3)
    assert c.lookup("libz.so.1", **v4) == "/l/glibc-hwcaps/x86-64-v4/libz.so.1.4"
    # v4 named in the active list but the CPU lacks the ISA level: skipped on the ISA check
    assert c.lookup("libz.so.1", **dict(v4, isa_level=2)) == "/l/glibc-hwcaps/x86-64-v3/libz.so.1.3"
    none = dict(HOST, hwcaps_subdirs=[])
    # tls (bit 63) sorts before haswell (bit 50): same bit count, bigger value first
    assert c.lookup("libz.so.1", **none) == "/l/tls/libz.so.1"
    c2 = parse_cache(build_cache([entries[0], entries[-1]], "new"))
    assert c2.lookup("libz.so.1", **none) == "/l/libz.so.1"  # platform-tagged, platform unknown
    assert c2.lookup("libz.so.1", **dict(none, platform_bit=50)) == "/l/haswell/libz.so.1"
    assert c2.lookup("libz.so.1", **dict(none, platform_bit=51)) == "/l/libz.so.1"


def test_old_format_has_no_hwcap_filter():
    c = parse_cache(build_cache([_entry("liba.so.1"), _entry("liba.so.1", "/m")], "old"))
    assert c.format == "old" and c.lookup("liba.so.1", **HOST) == "/l/liba.so.1"


@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_truncation_never_raises(fmt):
    data = build_cache([_entry(f"lib{i}.so.{i}") for i in range(7)], fmt)
    for n in range(len(data) + 1):
        c = parse_cache(data[:n])
        assert (c.format is None) == (c.error is not None) or c.error == "malformed extension data"
        c.lookup("lib3.so.3", **HOST)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_raises(blob):
    for data in (blob, ldcache.CACHEMAGIC_VERSION_NEW + blob, ldcache.CACHEMAGIC + b"\0" + blob):
        c = parse_cache(data)
        c.lookup("libc.so.6", **HOST)
        if c.format is None:
            assert c.error


def test_bad_indices_fail_lookup_quietly():
    data = bytearray(build_cache([_entry("libq.so.1")], "new"))
    struct.pack_into("<I", data, 48 + 4, 0xFFFFFF)  # key outside the file
    c = parse_cache(bytes(data))
    assert c.lookup("libq.so.1", **HOST) is None


def test_libcmp_numeric():
    assert libcmp("libx.so.10", "libx.so.9") > 0
    assert libcmp("libx.so.1", "libx.so.a") > 0
    assert libcmp("liba.so", "liba.so.1") < 0
    assert libcmp("abc", "abc") == 0
