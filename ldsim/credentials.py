"""AT_SECURE: what the kernel tells ld.so about privilege at execve.

ld.so computes nothing itself: it copies the auxv entry AT_SECURE into `__libc_enable_secure`
(sysdeps/unix/sysv/linux/dl-parse_auxv.h).  The kernel sets it in `cap_bprm_creds_from_file`
(security/commoncap.c): after `bprm_fill_uid` (fs/exec.c) gave the new process the file's owner as
effective uid (set-user-ID bit) and its group as effective gid (set-group-ID bit *with* group execute),
the exec is "secure" when

* the new effective uid differs from the old real uid, or the new effective gid from the old real gid
  (`__is_setuid` / `__is_setgid`), or
* the caller's real uid is not 0 and the file capabilities (xattr `security.capability`) set the
  effective bit or grant permitted capabilities (`__cap_grew`).

On a filesystem mounted nosuid neither the set-ID bits nor the file capabilities count (`mnt_may_suid`).

A caller with no_new_privs gets neither set-ID ids nor file capabilities, but a file's effective bit
still makes the exec secure.

This module decides it once, at the edge, from a World and the caller's credentials.  Not modelled:
ptrace downgrades, LSM transitions and user namespaces other than the initial one.
"""

from __future__ import annotations

import errno
import stat as stat_mod
import struct
from ldsim.config import Credentials
from ldsim.record import Frozen
from ldsim.world import World

XATTR_CAPS = "security.capability"
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
VFS_CAP_REVISION_1, VFS_CAP_REVISION_2, VFS_CAP_REVISION_3 = 0x01000000, 0x02000000, 0x03000000
_SIZES = {VFS_CAP_REVISION_1: 12, VFS_CAP_REVISION_2: 20, VFS_CAP_REVISION_3: 24}  # XATTR_CAPS_SZ_*


class FileCaps(Frozen):
    """`struct vfs_ns_cap_data` decoded (include/uapi/linux/capability.h)."""

    __slots__ = _fields = ("permitted", "inheritable", "effective", "rootid")

    def __init__(self, permitted: int, inheritable: int, effective: bool, rootid: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "permitted", permitted)
        _set(self, "inheritable", inheritable)
        _set(self, "effective", effective)
        _set(self, "rootid", rootid)  # revision 3 only: the uid that owns the capabilities


def parse_vfs_caps(data: bytes) -> FileCaps | None:
    """`get_vfs_caps_from_disk`: None for a value the kernel rejects (wrong size or revision), and for a
    revision-3 value whose rootid is not root in the initial namespace (it does not apply there)."""
    if len(data) < 4:
        return None
    magic = struct.unpack_from("<I", data)[0]
    rev = magic & VFS_CAP_REVISION_MASK
    if _SIZES.get(rev) != len(data):
        return None
    words = struct.unpack_from("<2I", data, 4)
    permitted, inheritable = words[0], words[1]
    if rev != VFS_CAP_REVISION_1:
        hi = struct.unpack_from("<2I", data, 12)
        permitted |= hi[0] << 32
        inheritable |= hi[1] << 32
    rootid = struct.unpack_from("<I", data, 20)[0] if rev == VFS_CAP_REVISION_3 else 0
    if rootid != 0:
        return None
    return FileCaps(permitted, inheritable, bool(magic & VFS_CAP_FLAGS_EFFECTIVE), rootid)


class SecureDecision(Frozen):
    """The kernel's verdict for one execve, with the reason (for explanations)."""

    __slots__ = _fields = ("secure", "reason", "after")

    def __init__(self, secure: bool, reason: str, after: Credentials) -> None:
        _set = object.__setattr__
        _set(self, "secure", secure)
        _set(self, "reason", reason)
        _set(self, "after", after)  # real and effective ids of the new process


ALL_CAPS = (1 << 64) - 1


def _effective_caps(caps: FileCaps | None, ruid: int) -> int:
    """pE' of `cap_bprm_creds_from_file`: with the file's effective bit, the new permitted set -- (fP &
    bset) | (fI & pI), that is fP for a caller with the full bounding set and an empty inheritable set,
    or every capability for a root caller (handle_privileged_root) -- else the empty ambient set.  (A
    new effective uid 0 is root's anyway.)"""
    if caps is None or not caps.effective:
        return 0
    return ALL_CAPS if ruid == 0 else caps.permitted


def decide_at_secure(mode: int, owner: int, group: int, caps: FileCaps | None,
                     creds: Credentials) -> SecureDecision:
    """Pure: `bprm_fill_uid` then `cap_bprm_creds_from_file`, for a caller with empty inheritable and
    ambient sets and the full bounding set (what a login shell has)."""
    nnp = creds.no_new_privs  # bprm_fill_uid applies no set-ID bit; the capabilities gained are dropped
    euid = owner if mode & stat_mod.S_ISUID and not nnp else creds.euid
    sgid = mode & (stat_mod.S_ISGID | stat_mod.S_IXGRP) == stat_mod.S_ISGID | stat_mod.S_IXGRP and not nnp
    egid = group if sgid else creds.egid
    after = Credentials(creds.uid, euid, creds.gid, egid, 0 if nnp else _effective_caps(caps, creds.uid), nnp)
    if euid != creds.uid:
        why = "set-user-ID" if mode & stat_mod.S_ISUID and not nnp else "effective uid"
        return SecureDecision(True, f"{why}: effective uid {euid} differs from real uid {creds.uid}", after)
    if egid != creds.gid:
        why = "set-group-ID" if sgid else "effective gid"
        return SecureDecision(True, f"{why}: effective gid {egid} differs from real gid {creds.gid}", after)
    if creds.uid == 0:
        # handle_privileged_root: root gets every capability anyway, so nothing is gained
        return SecureDecision(False, "real uid 0: file capabilities change nothing", after)
    if caps is not None and (caps.effective or caps.permitted and not nnp):
        # pP' = (fP & bset) | (fI & pI) with pI empty: any fP, or the effective bit, is a gain (__cap_grew).
        # Under no_new_privs pP' is cut down to the caller's (empty) pP, but the effective bit still counts
        return SecureDecision(True, "file capabilities grant privileges to a non-root caller", after)
    return SecureDecision(False, "no privilege change", after)


def file_caps(world: World, path: str) -> FileCaps | None:
    try:
        return parse_vfs_caps(world.getxattr(path, XATTR_CAPS))
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EPERM):
            return None
        raise


def nosuid(world: World, path: str) -> bool:
    """Whether the file lies on a filesystem mounted nosuid: `mnt_may_suid` is false, so execve ignores
    its set-ID bits (bprm_fill_uid) and its file capabilities (get_file_caps).  A world that cannot tell
    (virtual) says no."""
    check = getattr(world, "nosuid", None)
    try:
        return check is not None and check(path)
    except OSError:
        return False


def exec_mode_and_caps(world: World, path: str, st) -> tuple[int, FileCaps | None]:
    """The file's mode and capabilities as execve honours them: neither set-ID bits nor capabilities
    on a nosuid mount."""
    caps = file_caps(world, path)
    setid = stat_mod.S_ISUID | stat_mod.S_ISGID
    if (st.st_mode & setid or caps is not None) and nosuid(world, path):  # statvfs only when it matters
        return st.st_mode & ~setid, None
    return st.st_mode, caps


def at_secure(world: World, path: str, creds: Credentials) -> SecureDecision:
    """The verdict for `execve(path)` by a process with `creds` (stat and xattr through the World)."""
    st = world.stat(path)
    mode, caps = exec_mode_and_caps(world, path, st)
    return decide_at_secure(mode, st.st_uid, st.st_gid, caps, creds)


def secure_for_exec(world: World, path: str, creds: Credentials | None, forced: bool) -> bool:
    """Secure mode of a process started by `execve(path)`: forced (--secure), or the kernel's verdict.
    Without credentials (None) nothing but `forced` makes it secure; an unreadable file is not secure
    (the loader path then reports the error)."""
    if forced:
        return True
    if creds is None:
        return False
    try:
        return at_secure(world, path, creds).secure
    except OSError:
        return False
