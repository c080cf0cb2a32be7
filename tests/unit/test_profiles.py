"""Loader profiles (ldsim/conf/profiles/*.toml), their detection from a root's loader, and musl's small
pure rules (ldsim.musl)."""

from __future__ import annotations

import os

import pytest

from ldsim.glibc import PROFILES, profile_from_toml
from ldsim.hwcaps import Cpu, capstr, cpu_for_profile, HwcapsChoice
from ldsim.musl import arch_of, path_file, reserved_index, split_path
from ldsim.profiles import identify_loader, is_musl_interp, profile_by_name
from ldsim.world import HostWorld


def test_every_profile_is_complete_and_named_by_its_file() -> None:
    assert {"debian-x86_64", "debian-i386", "debian-i386-biarch", "debian-aarch64", "fedora-x86_64"} <= set(PROFILES)
    for p in PROFILES.values():
        assert all(d.startswith("/") and d.endswith("/") for d in p.system_dirs)
        assert p.rtld in p.ldd_rtlds


def test_unknown_profile_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile keys: colour"):
        profile_from_toml('name = "x"\ncolour = 1\n')
    with pytest.raises(ValueError, match="unknown profile"):
        profile_by_name("no-such-profile")


@pytest.mark.parametrize("rtld,name", [
    ("/lib64/ld-linux-x86-64.so.2", "debian-x86_64"),
    ("/lib/ld-linux.so.2", "debian-i386-biarch"),
    ("/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1", "debian-aarch64"),
])
def test_a_loader_identifies_by_its_compiled_in_system_dirs(rtld: str, name: str) -> None:
    if not os.path.exists(rtld):
        pytest.skip(f"{rtld} is not installed here")
    found = identify_loader(HostWorld(None), rtld)
    assert found is not None and found.name == name


def test_i386_and_aarch64_legacy_hwcaps() -> None:
    """i386: sse2 masked by HWCAP_IMPORTANT, platform i686; aarch64: atomics, platform aarch64."""
    host = Cpu(isa=1, platform="x86_64", hwcap=2)
    i386 = PROFILES["debian-i386"]
    assert capstr(i386, cpu_for_profile(i386, host), HwcapsChoice()) == [
        "tls/i686/sse2/", "tls/i686/", "tls/sse2/", "tls/", "i686/sse2/", "i686/", "sse2/", ""]
    a64 = PROFILES["debian-aarch64"]
    assert capstr(a64, cpu_for_profile(a64, host), HwcapsChoice())[:2] == ["tls/aarch64/atomics/", "tls/aarch64/"]


def test_musl_rules() -> None:
    assert is_musl_interp("/lib/ld-musl-x86_64.so.1") and not is_musl_interp("/lib/ld-linux.so.2")
    assert path_file("/lib/ld-musl-x86_64.so.1", "x86_64") == "/etc/ld-musl-x86_64.path"
    assert path_file("/usr/local/musl/lib/ld.so", "x86_64") == "/usr/local/musl/etc/ld-musl-x86_64.path"
    assert arch_of("/lib/ld-musl-aarch64.so.1") == "aarch64"
    assert split_path(":/a\n\n/b::/c:") == ["/a", "/b", "/c"]
    assert reserved_index("libc.so") == 0 and reserved_index("libm.so.6") is not None
    assert reserved_index("libcrypt.so") is None and reserved_index("libz.so") is None
