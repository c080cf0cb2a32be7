"""The one filesystem seam: every stat, read, readlink and listdir of ldsim goes through a World.

Paths given to a World are the paths the simulated loader sees (absolute inside its root, or relative to
the simulated cwd).  Three kinds exist: the host root (`HostWorld`), a sysroot that nothing escapes
(`RootedWorld`), and an in-memory world for scenarios (`VirtualWorld`, in `ldsim.virtual`).
Errors are `OSError` with the errno the kernel would give, because the loader's messages depend on it.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat as stat_mod
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol, Sequence
else:
    Protocol = object

from ldsim.record import Frozen

MAXSYMLINKS = 40  # Linux's limit before ELOOP
PROC_SELF_EXE = "/proc/self/exe"  # _dl_get_origin's source of the executable's $ORIGIN
_MMAP_MIN = 1 << 16  # smaller files are read; larger ones mapped, since the loader needs only a few pages


class Opened(Frozen):
    """A file the loader opened: its stat, and its contents or the errno of the failed read.
    (A plain record, not a dataclass: importing dataclasses costs ~13 ms of every `ldsim ldd`.)"""

    __slots__ = _fields = ("path", "st", "data", "read_errno")

    def __init__(self, path: str, st: os.stat_result, data: Sequence[int] | None, read_errno: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "path", path)
        _set(self, "st", st)
        _set(self, "data", data)
        _set(self, "read_errno", read_errno)


class World(Protocol):
    """What the resolver may ask of a filesystem."""

    root: str

    def stat(self, path: str) -> os.stat_result: ...
    def lstat(self, path: str) -> os.stat_result: ...
    def readlink(self, path: str) -> str: ...
    def read(self, path: str, limit: int | None = None) -> bytes: ...
    def listdir(self, path: str) -> list[str]: ...
    def realpath(self, path: str) -> str: ...
    def exe_link(self, path: str) -> str: ...
    def readable(self, path: str) -> bool: ...
    def host_path(self, path: str) -> str: ...
    def open(self, path: str) -> Opened: ...
    def getxattr(self, path: str, name: str) -> bytes: ...
    def scandir(self, path: str) -> list[tuple[str, int]]: ...
    def heads(self, directory: str, names: list[str], size: int, magic: bytes) -> list[Head]: ...


_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _special(host: str) -> os.stat_result | None:
    """The stat of a FIFO, device or socket, which are never opened at all (opening a device can have
    effects: a tape rewinds, a watchdog arms, a terminal becomes the controlling one); None otherwise."""
    try:
        st = os.stat(host)
    except OSError:
        return None  # open() reports the error
    return None if stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISDIR(st.st_mode) else st


def _read_regular(host: str, limit: int | None) -> bytes:
    """Read a file without ever blocking on a FIFO or device: never opened, refused as not regular."""
    if _special(host) is not None:
        raise OSError(errno.ENODEV, "not a regular file", host)
    fd = os.open(host, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if stat_mod.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), host)
        if not stat_mod.S_ISREG(st.st_mode):
            # ld.so would read() a FIFO; we never do.  ENODEV keeps the search going like a bad open.
            raise OSError(errno.ENODEV, "not a regular file", host)
        chunks = []
        remaining = st.st_size if limit is None else min(limit, st.st_size)
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _scandir_host(host: str) -> list[tuple[str, int]]:
    """(name, S_IFMT of the entry itself) from the directory's d_type, without a stat per entry (a whole-root
    scan lists 140k entries); 0 for FIFOs, devices and sockets, whose kind the caller asks lstat for."""
    out = []
    with os.scandir(host) as it:
        for e in it:
            if e.is_symlink():
                out.append((e.name, stat_mod.S_IFLNK))
            elif e.is_dir(follow_symlinks=False):
                out.append((e.name, stat_mod.S_IFDIR))
            elif e.is_file(follow_symlinks=False):
                out.append((e.name, stat_mod.S_IFREG))
            else:
                out.append((e.name, 0))
    return out


Head = tuple  # (name, first bytes or the OSError of the open/read, fstat when the bytes start with magic)


def _heads_host(host_dir: str, names: list[str], size: int, magic: bytes, flags: int) -> list[Head]:
    """The first `size` bytes of files a directory listed as regular (no stat before the open: a scan of
    /usr opens 120k files), with an fstat only for those starting with `magic` (the files a scan keeps)."""
    prefix = host_dir.rstrip("/") + "/"
    out: list[Head] = []
    for name in names:
        try:
            fd = os.open(prefix + name, flags)
        except OSError as e:
            out.append((name, e, None))
            continue
        try:
            data = os.read(fd, size)
            out.append((name, data, os.fstat(fd) if data.startswith(magic) else None))
        except OSError as e:
            out.append((name, e, None))
        finally:
            os.close(fd)
    return out


class FifoWouldBlock(NotImplementedError):
    """ld.so opens a FIFO no one writes to: open(2) blocks for ever.  `path`: the FIFO."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: ld.so would wait for ever opening this FIFO (until a writer opens it): "
                         "not simulated")
        self.path = path


MEM_MAJOR, MEM_NULL, MEM_ZERO, MEM_FULL, MEM_RANDOM, MEM_URANDOM = 1, 3, 5, 7, 8, 9  # Linux's mem devices


def _open_special(st: os.stat_result, path: str) -> Opened:
    """What open(2) and read(2) of a FIFO, socket or device give ld.so, worked out from its type alone:
    a socket cannot be opened (ENXIO); /dev/zero and /dev/full read as zeros and /dev/(u)random as bytes
    that are not an ELF header; other devices read as an empty file.  A FIFO without a writer blocks the
    loader in open(2) for ever: that is not simulated (one line, exit 3)."""
    if stat_mod.S_ISSOCK(st.st_mode):
        raise OSError(errno.ENXIO, os.strerror(errno.ENXIO), path)
    if stat_mod.S_ISFIFO(st.st_mode):
        raise FifoWouldBlock(path)
    if stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == MEM_MAJOR \
            and os.minor(st.st_rdev) in (MEM_ZERO, MEM_FULL, MEM_RANDOM, MEM_URANDOM):
        return Opened(path, st, bytes(832))  # open_verify's first read: the magic is not there
    return Opened(path, st, b"")


def _open_host(host: str, path: str) -> Opened:
    """open(2) + read as ld.so does, except that FIFOs, sockets and devices are never opened (no blocking,
    no side effects): `_open_special` says what the loader would see."""
    st = _special(host)
    if st is not None:
        return _open_special(st, path)
    fd = os.open(host, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if stat_mod.S_ISDIR(st.st_mode):
            return Opened(path, st, None, errno.EISDIR)
        if not stat_mod.S_ISREG(st.st_mode):
            return Opened(path, st, b"")  # reads as an empty file: "file too short"
        if st.st_size >= _MMAP_MIN:
            try:
                return Opened(path, st, mmap.mmap(fd, 0, prot=mmap.PROT_READ))
            except (OSError, ValueError):
                pass
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return Opened(path, st, b"".join(chunks))
    except OSError as e:
        return Opened(path, os.fstat(fd), None, e.errno or errno.EIO)
    finally:
        os.close(fd)


def _host_may_write(host: str, want: int) -> bool:
    """open(host, O_CREAT | ...) by ldsim itself, answered by the host kernel: the file's `want` bits
    (os.R_OK | os.W_OK), or when it is absent its directory's write and search bits."""
    if os.path.lexists(host):
        return os.access(host, want)
    return os.access(os.path.dirname(host) or ".", os.W_OK | os.X_OK)


class HostWorld:
    """The machine's own root: the kernel resolves paths."""

    root = "/"

    def __init__(self, cwd: str | None = None) -> None:
        self.cwd = cwd or os.getcwd()

    def host_path(self, path: str) -> str:
        if not path:  # the kernel resolves no file for "" (ENOENT), not the cwd
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return path if path.startswith("/") else os.path.join(self.cwd, path)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(self.host_path(path))

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(self.host_path(path))

    def readlink(self, path: str) -> str:
        return os.readlink(self.host_path(path))

    def read(self, path: str, limit: int | None = None) -> bytes:
        return _read_regular(self.host_path(path), limit)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(self.host_path(path))

    def realpath(self, path: str) -> str:
        return os.path.realpath(self.host_path(path))

    def exe_link(self, path: str) -> str:
        """readlink("/proc/self/exe") in a process executing `path`: the host's procfs names the file."""
        return os.path.realpath(self.host_path(path))

    def readable(self, path: str) -> bool:
        return os.access(self.host_path(path), os.R_OK)

    def may_write(self, path: str, want: int = os.W_OK) -> bool:
        return _host_may_write(self.host_path(path), want)

    def nosuid(self, path: str) -> bool:
        """statvfs's ST_NOSUID: the file's filesystem is mounted nosuid."""
        return bool(os.statvfs(self.host_path(path)).f_flag & os.ST_NOSUID)

    def open(self, path: str) -> Opened:
        return _open_host(self.host_path(path), path)

    def getxattr(self, path: str, name: str) -> bytes:
        """getxattr(2), following symlinks (as execve sees the file); ENODATA when absent."""
        return os.getxattr(self.host_path(path), name)

    def scandir(self, path: str) -> list[tuple[str, int]]:
        return _scandir_host(self.host_path(path))

    def heads(self, directory: str, names: list[str], size: int, magic: bytes) -> list[Head]:
        return _heads_host(self.host_path(directory), names, size, magic, _OPEN_FLAGS)


class RootedWorld:
    """A sysroot: every path, symlink target and `..` is resolved inside `root`, never outside it.

    Symlinks are followed by hand, component by component, the way the kernel would inside a chroot:
    an absolute target restarts at the root, `..` at the root stays at the root.
    """

    def __init__(self, root: str, cwd: str = "/") -> None:
        self.root = os.path.abspath(root)
        self.cwd = cwd

    def _resolve(self, path: str, follow_last: bool) -> str:
        """Return the in-root canonical path (starting with '/') of `path`."""
        if not path:  # the kernel resolves no file for "" (ENOENT), not the cwd
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if not path.startswith("/"):
            path = self.cwd.rstrip("/") + "/" + path
        pending = [c for c in path.split("/") if c]
        if path.endswith("/") and pending:
            pending.append(".")  # a trailing slash: the last name must be (or lead to) a directory
        pending.reverse()
        parts: list[str] = []
        hops = 0
        while pending:
            comp = pending.pop()
            if comp == ".":
                continue
            if comp == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/" + "/".join(parts + [comp])
            if not pending and not follow_last:
                parts.append(comp)
                break
            host = self.root + candidate
            try:
                st = os.lstat(host)
            except OSError as e:
                if pending:  # a missing directory component
                    raise OSError(e.errno, os.strerror(e.errno), candidate) from None
                parts.append(comp)
                break
            if stat_mod.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAXSYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(host)
                if target.startswith("/"):
                    parts = []
                comps = [c for c in target.split("/") if c]
                if target.endswith("/") and comps:
                    comps.append(".")  # "libfoo.so.1/" in a target wants a directory too
                for c in reversed(comps):
                    pending.append(c)
                continue
            if pending and not stat_mod.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), candidate)
            parts.append(comp)
        return "/" + "/".join(parts)

    def host_path(self, path: str) -> str:
        """The host path of the fully resolved in-root path (symlinks already followed)."""
        return self.root + self._resolve(path, True)

    def _host_nofollow(self, path: str) -> str:
        return self.root + self._resolve(path, False)

    def stat(self, path: str) -> os.stat_result:
        return os.lstat(self.host_path(path))

    def lstat(self, path: str) -> os.stat_result:
        return os.lstat(self._host_nofollow(path))

    def readlink(self, path: str) -> str:
        return os.readlink(self._host_nofollow(path))

    def read(self, path: str, limit: int | None = None) -> bytes:
        host = self.host_path(path)
        if os.path.islink(host):  # cannot happen after resolution, but never follow one out of the root
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        return _read_regular(host, limit)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(self.host_path(path))

    def realpath(self, path: str) -> str:
        return self._resolve(path, True)

    def exe_link(self, path: str) -> str:
        """readlink("/proc/self/exe") in a process executing `path` chrooted here: procfs names the file
        only when something is mounted on the root's /proc; otherwise the root's own /proc/self/exe is
        read, usually absent (ENOENT)."""
        if os.path.ismount(self.root + "/proc"):
            return self._resolve(path, True)
        return self.readlink(PROC_SELF_EXE)

    def readable(self, path: str) -> bool:
        try:
            return os.access(self.host_path(path), os.R_OK)
        except OSError:
            return False

    def may_write(self, path: str, want: int = os.W_OK) -> bool:
        try:
            return _host_may_write(self.host_path(path), want)
        except OSError:
            return False

    def nosuid(self, path: str) -> bool:
        """statvfs's ST_NOSUID: the file's filesystem is mounted nosuid."""
        return bool(os.statvfs(self.host_path(path)).f_flag & os.ST_NOSUID)

    def open(self, path: str) -> Opened:
        return _open_host(self.host_path(path), path)

    def getxattr(self, path: str, name: str) -> bytes:
        return os.getxattr(self.host_path(path), name, follow_symlinks=False)

    def scandir(self, path: str) -> list[tuple[str, int]]:
        return _scandir_host(self.host_path(path))

    def heads(self, directory: str, names: list[str], size: int, magic: bytes) -> list[Head]:
        # the directory resolved inside the root once, its files opened without following a symlink;
        # a symlink's head is read where it leads inside the root
        out = _heads_host(self.host_path(directory), names, size, magic, _OPEN_FLAGS | os.O_NOFOLLOW)
        for i, (name, data, _) in enumerate(out):
            if isinstance(data, OSError) and data.errno == errno.ELOOP:
                try:
                    host = self.host_path(directory.rstrip("/") + "/" + name)
                except OSError as e:
                    out[i] = (name, e, None)
                    continue
                d, _, base = host.rpartition("/")
                out[i] = (name,) + _heads_host(d, [base], size, magic, _OPEN_FLAGS | os.O_NOFOLLOW)[0][1:]
        return out


def make_world(root: str | None, cwd: str | None = None) -> World:
    """The host root for None or '/', a confined sysroot otherwise."""
    if root is None or os.path.abspath(root) == "/":
        return HostWorld(cwd)
    return RootedWorld(root, cwd or "/")
