"""AT_SECURE decisions (glibc-loader.md §1.2): the table verified on the real kernel, as pure cases."""

from __future__ import annotations

import struct

import pytest

from ldsim.config import Credentials
from ldsim.credentials import (VFS_CAP_FLAGS_EFFECTIVE, VFS_CAP_REVISION_2, VFS_CAP_REVISION_3, FileCaps,
                               decide_at_secure, parse_vfs_caps)

NOBODY = Credentials(65534, 65534, 65534, 65534)
ROOT = Credentials(0, 0, 0, 0)
CAP_NET_RAW = 1 << 13


def caps_v2(permitted: int, inheritable: int = 0, effective: bool = False) -> bytes:
    magic = VFS_CAP_REVISION_2 | (VFS_CAP_FLAGS_EFFECTIVE if effective else 0)
    return struct.pack("<5I", magic, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       permitted >> 32, inheritable >> 32)


@pytest.mark.parametrize("mode,owner,group,caps,creds,secure", [
    (0o755, 0, 0, None, NOBODY, False),  # plain binary run by nobody
    (0o4755, 0, 0, None, NOBODY, True),  # setuid-root run by nobody
    (0o4755, 0, 0, None, ROOT, False),  # ... by root
    (0o4755, 65534, 0, None, NOBODY, False),  # setuid to oneself
    (0o2755, 0, 0, None, NOBODY, True),  # setgid-root run by nobody
    (0o2755, 0, 0, None, ROOT, False),  # ... by root (gid 0)
    (0o2745, 0, 0, None, NOBODY, False),  # set-group-ID without group execute: mandatory locking, no setgid
    (0o755, 0, 0, FileCaps(CAP_NET_RAW, 0, True), NOBODY, True),  # setcap cap_net_raw+ep
    (0o755, 0, 0, FileCaps(CAP_NET_RAW, 0, False), NOBODY, True),  # +p only
    (0o755, 0, 0, FileCaps(0, CAP_NET_RAW, False), NOBODY, False),  # +i only: nothing gained
    (0o755, 0, 0, FileCaps(CAP_NET_RAW, 0, True), ROOT, False),  # caps run by root
    (0o755, 0, 0, None, Credentials(65534, 0, 65534, 65534), True),  # setpriv --ruid=65534 (euid 0)
    (0o755, 0, 0, None, Credentials(0, 65534, 0, 0), True),  # setpriv --euid=65534
    (0o755, 0, 0, None, Credentials(0, 0, 0, 65534), True),  # egid differs from gid
])
def test_decide_at_secure(mode, owner, group, caps, creds, secure) -> None:
    assert decide_at_secure(mode, owner, group, caps, creds).secure is secure


def test_exec_credentials_after_setuid() -> None:
    d = decide_at_secure(0o6755, 0, 42, None, NOBODY)
    assert d.after == Credentials(65534, 0, 65534, 42)


def test_parse_vfs_caps() -> None:
    assert parse_vfs_caps(caps_v2(CAP_NET_RAW, effective=True)) == FileCaps(CAP_NET_RAW, 0, True)
    assert parse_vfs_caps(caps_v2(1 << 40)) == FileCaps(1 << 40, 0, False)
    assert parse_vfs_caps(b"\x00\x00\x00\x02") is None  # wrong size for its revision
    v3 = struct.pack("<6I", VFS_CAP_REVISION_3, CAP_NET_RAW, 0, 0, 0, 0)
    assert parse_vfs_caps(v3) == FileCaps(CAP_NET_RAW, 0, False)
    v3_userns = struct.pack("<6I", VFS_CAP_REVISION_3, CAP_NET_RAW, 0, 0, 0, 100000)
    assert parse_vfs_caps(v3_userns) is None  # owned by another namespace's root: does not apply here


@pytest.mark.parametrize("caps,creds,effective", [
    (FileCaps(CAP_NET_RAW | 1 << 1, 0, True), NOBODY, CAP_NET_RAW | 1 << 1),  # +ep: fP
    (FileCaps(CAP_NET_RAW, 0, False), NOBODY, 0),  # +p: permitted, not effective
    (FileCaps(0, CAP_NET_RAW, True), NOBODY, 0),  # +ei: fI & pI is empty for the caller
    (None, NOBODY, 0),
])
def test_effective_capabilities_after_exec(caps, creds, effective) -> None:
    """pE' (cap_bprm_creds_from_file): the new permitted set when the file's effective bit is set."""
    assert decide_at_secure(0o755, 0, 0, caps, creds).after.cap_effective == effective


NNP = Credentials(65534, 65534, 65534, 65534, no_new_privs=True)


@pytest.mark.parametrize("mode,caps,secure,euid", [
    (0o4755, None, False, 65534),  # set-user-ID ignored
    (0o2755, None, False, 65534),  # set-group-ID ignored
    (0o755, FileCaps(1 << 1, 0, True), True, 65534),  # +ep: no capability, but the effective bit counts
    (0o755, FileCaps(1 << 1, 0, False), False, 65534),  # +p: nothing gained
])
def test_no_new_privs(mode, caps, secure, euid) -> None:
    d = decide_at_secure(mode, 0, 0, caps, NNP)
    assert (d.secure, d.after.euid, d.after.cap_effective) == (secure, euid, 0)
