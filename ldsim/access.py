"""The simulated process's file permissions: a World seen by a process with other ids than ldsim's.

ldsim usually runs as root and reads everything; the loader of a program run by nobody cannot.  The
kernel's discretionary checks (fs/namei.c `generic_permission`, without ACLs) decide what the loader's
open(2) and stat(2) get: search (x) permission on every directory of a path, read (r) permission on a
file it opens or a directory it lists, EACCES otherwise.  The loader treats EACCES like a missing file
(open_path goes on to the next directory) but reports it when nothing else was found.

The directories checked are those the kernel's path walk goes through, symlinks followed into their
targets.  Approximations: no ACLs, no capabilities but root's and the DAC ones file capabilities give; the
process's groups are its effective gid only (`setpriv --clear-groups`).
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod

from ldsim.config import Credentials
from ldsim.credentials import at_secure
from ldsim.record import Frozen
from ldsim.world import MAXSYMLINKS, Head, Opened, World

R, W, X = 4, 2, 1


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1 << 1, 1 << 2  # include/uapi/linux/capability.h


class Identity(Frozen):
    """The ids the kernel checks file access with (fsuid = euid, fsgid = egid) and the effective
    capabilities that bypass those checks."""

    __slots__ = _fields = ("uid", "gids", "caps")

    def __init__(self, uid: int, gids: frozenset[int], caps: int = 0) -> None:
        object.__setattr__(self, "uid", uid)
        object.__setattr__(self, "gids", gids)
        object.__setattr__(self, "caps", caps)


def may(st: os.stat_result, who: Identity, want: int) -> bool:
    """generic_permission: the owner's, the group's or the others' bits.  Root, or CAP_DAC_OVERRIDE,
    may read and write anything, search any directory, and execute a file with any x bit;
    CAP_DAC_READ_SEARCH may read any file and read and search any directory."""
    is_dir = stat_mod.S_ISDIR(st.st_mode)
    if who.uid == 0 or who.caps & CAP_DAC_OVERRIDE:
        return not want & X or is_dir or bool(st.st_mode & 0o111)
    if who.caps & CAP_DAC_READ_SEARCH and not want & W and (is_dir or not want & X):
        return True
    shift = 6 if st.st_uid == who.uid else 3 if st.st_gid in who.gids else 0
    return (st.st_mode >> shift) & want == want


def _join(cur: str, name: str) -> str:
    """`cur`/`name`, where cur "" is the working directory."""
    return name if not cur else f"/{name}" if cur == "/" else f"{cur}/{name}"


def _parent(cur: str) -> str:
    """The directory ".." names from `cur`, a path whose components are no symlinks ("" = the working
    directory, whose parent stays relative)."""
    if cur == "/":
        return "/"
    if not cur or cur == ".." or cur.endswith("/.."):
        return _join(cur, "..")
    head = cur.rsplit("/", 1)[0] if "/" in cur else ""
    return head or ("/" if cur.startswith("/") else "")


def _denied(path: str) -> OSError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)


class CallerWorld:
    """`inner` as the process `who` sees it: every path's directories must be searchable, files opened
    or read must be readable.  Everything else is `inner`'s."""

    def __init__(self, inner: World, who: Identity) -> None:
        self.inner = inner
        self.who = who
        self._stats: dict[str, os.stat_result | None] = {}
        self._lstats: dict[str, os.stat_result | None] = {}

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _stat(self, path: str) -> os.stat_result | None:
        if path not in self._stats:
            try:
                self._stats[path] = self.inner.stat(path)
            except OSError:
                self._stats[path] = None
        return self._stats[path]

    def _lstat(self, path: str) -> os.stat_result | None:
        if path not in self._lstats:
            try:
                self._lstats[path] = self.inner.lstat(path)
            except OSError:
                self._lstats[path] = None
        return self._lstats[path]

    def _walk(self, path: str, follow_last: bool = True) -> None:
        """EACCES unless every directory the kernel's path walk goes through may be searched
        (fs/namei.c link_path_walk: may_lookup before each component).  Symlinks are followed into
        their targets, whose directories are searched too (an absolute target starts again at "/"); the
        last component's only with `follow_last` (stat and open, not lstat and readlink).  A missing
        component, one that is not a directory, or too many links end the check: the inner call reports
        them.  A relative path starts at the working directory, which must be searchable too (its own
        ancestors are not walked again)."""
        todo = [p for p in path.split("/") if p]
        cur = "/" if path.startswith("/") else getattr(self.inner, "cwd", None) or ""
        links = 0
        while todo:
            name = todo.pop(0)
            if cur:
                st = self._stat(cur)
                if st is None or not stat_mod.S_ISDIR(st.st_mode):
                    return
                if not may(st, self.who, X):
                    raise _denied(path)
            if name == ".":
                continue
            if name == "..":
                cur = _parent(cur)
                continue
            nxt = _join(cur, name)
            if not todo and not follow_last:
                return
            lst = self._lstat(nxt)
            if lst is None:
                return
            if not stat_mod.S_ISLNK(lst.st_mode):
                cur = nxt
                continue
            links += 1
            try:
                target = self.inner.readlink(nxt)
            except OSError:
                return
            if links > MAXSYMLINKS:
                return
            todo[:0] = [p for p in target.split("/") if p]
            if target.startswith("/"):
                cur = "/"

    def _readable(self, path: str) -> None:
        self._walk(path)
        st = self._stat(path)
        if st is not None and not may(st, self.who, R):
            raise _denied(path)

    def may_write(self, path: str, want: int = W) -> bool:
        """open(path, O_CREAT | O_WRONLY (want W) or O_RDWR (want R | W)): the file's bits, or when it is
        absent its directory's w and x bits."""
        try:
            self._walk(path)
        except OSError:
            return False
        st = self._stat(path)
        if st is not None:
            return may(st, self.who, want)
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        dst = self._stat(parent or "/")
        return dst is None or may(dst, self.who, W | X)

    def may_execute(self, path: str) -> bool:
        """execve's check: searchable directories and the file's x bit."""
        try:
            self._walk(path)
        except OSError:
            return False
        st = self._stat(path)
        return st is None or may(st, self.who, X)

    def stat(self, path: str) -> os.stat_result:
        self._walk(path)
        return self.inner.stat(path)

    def lstat(self, path: str) -> os.stat_result:
        self._walk(path, follow_last=False)
        return self.inner.lstat(path)

    def readlink(self, path: str) -> str:
        self._walk(path, follow_last=False)
        return self.inner.readlink(path)

    def read(self, path: str, limit: int | None = None) -> bytes:
        self._readable(path)
        return self.inner.read(path, limit)

    def listdir(self, path: str) -> list[str]:
        self._readable(path)
        return self.inner.listdir(path)

    def realpath(self, path: str) -> str:
        return self.inner.realpath(path)

    def readable(self, path: str) -> bool:
        try:
            self._readable(path)
        except OSError:
            return False
        return self.inner.readable(path)

    def host_path(self, path: str) -> str:
        return self.inner.host_path(path)

    def open(self, path: str) -> Opened:
        self._readable(path)
        return self.inner.open(path)

    def getxattr(self, path: str, name: str) -> bytes:
        self._walk(path)
        return self.inner.getxattr(path, name)

    def scandir(self, path: str) -> list[tuple[str, int]]:
        self._readable(path)
        return self.inner.scandir(path)

    def heads(self, directory: str, names: list[str], size: int, magic: bytes) -> list[Head]:
        prefix = directory.rstrip("/") + "/"
        allowed, out = [], {}
        for name in names:
            try:
                self._readable(prefix + name)
                allowed.append(name)
            except OSError as e:
                out[name] = (name, e, None)
        for head in self.inner.heads(directory, allowed, size, magic) if allowed else ():
            out[head[0]] = head
        return [out[n] for n in names]


def caller_view(world: World, creds: Credentials | None) -> World:
    """The world as a process with `creds` sees it: `world` itself when its effective uid is ldsim's own
    (the host's kernel checks ldsim's access already) or when no ids are modelled."""
    if creds is None or creds.euid == os.geteuid():
        return world
    who = Identity(creds.euid, frozenset({creds.egid}), creds.cap_effective)
    if isinstance(world, CallerWorld) and world.who == who:  # already this process's view (ldd's loaders)
        return world
    return CallerWorld(world, who)


def exec_view(world: World, program: str, creds: Credentials | None) -> World:
    """caller_view for the process execve(program) makes: a set-user/group-ID file's owner or group."""
    if creds is not None:
        try:
            creds = at_secure(world, program, creds).after
        except OSError:
            pass  # the exec fails: the loader path reports it
    return caller_view(world, creds)


def real_access(world: World, creds: Credentials | None, path: str, want: int = 0) -> bool:
    """access(2) by the process whose view is `world` (caller_view/exec_view) and whose ids are `creds`:
    F_OK (want 0) or R.  faccessat without AT_EACCESS checks with the *real* uid and gid (fs/open.c
    do_faccessat), where open(2) uses the effective ones: after a set-user-ID exec the two differ.  ld.so
    asks this of /etc/ld.so.preload (R_OK, dl_main) and /etc/suid-debug (F_OK, process_envvars)."""
    base = world.inner if isinstance(world, CallerWorld) else world
    real = None if creds is None else Credentials(creds.uid, creds.uid, creds.gid, creds.gid)
    view = caller_view(base, real)
    try:
        view.stat(path)
    except OSError:
        return False
    return not want & R or view.readable(path)


def may_write(world: World, path: str, want: int = W) -> bool:
    """Whether the process may create or open `path` for writing (want W: LD_DEBUG_OUTPUT's O_WRONLY) or
    for reading and writing (want R | W: LD_PROFILE's O_RDWR).  A world without the check (virtual) allows
    it."""
    check = getattr(world, "may_write", None)
    return True if check is None else check(path, want)
