"""An in-memory World for scenarios and hypothesis: files, directories and symlinks, nothing on disk.

Paths are resolved component by component the way the kernel does (absolute symlink targets restart at
the root, `..` at the root stays there, ELOOP after 40 hops), so `$ORIGIN`-through-a-symlink and
(dev, ino) identity behave as on a real filesystem.  ELF files are usually made by `ldsim.elfwrite`.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_mod
from dataclasses import dataclass

from ldsim.world import MAXSYMLINKS, Opened

DEV = 0x5EED


def _err(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


@dataclass
class _File:
    data: bytes
    mode: int
    ino: int


def _components(path: str) -> list[str]:
    """The names of a path; a trailing slash becomes a final "." (what precedes it must be a directory)."""
    comps = [c for c in path.split("/") if c]
    if path.endswith("/") and comps:
        comps.append(".")
    return comps


class VirtualWorld:
    """Implements `ldsim.world.World` over dictionaries."""

    root = "/"

    def __init__(self, cwd: str = "/") -> None:
        self.cwd = cwd
        self.files: dict[str, _File] = {}
        self.links: dict[str, str] = {}
        self.dirs: dict[str, int] = {"/": 1}
        self._ino = 1

    # -- building ----------------------------------------------------------------------------------

    def _next(self) -> int:
        self._ino += 1
        return self._ino

    def mkdir(self, path: str) -> None:
        path = posixpath.normpath("/" + path.lstrip("/"))
        parts = [p for p in path.split("/") if p]
        cur = ""
        for p in parts:
            cur += "/" + p
            if cur not in self.dirs:
                self.dirs[cur] = self._next()

    def add_file(self, path: str, data: bytes, mode: int = 0o755) -> None:
        path = posixpath.normpath("/" + path.lstrip("/"))
        self.mkdir(posixpath.dirname(path))
        self.files[path] = _File(bytes(data), mode, self._next())

    def add_symlink(self, path: str, target: str) -> None:
        path = posixpath.normpath("/" + path.lstrip("/"))
        self.mkdir(posixpath.dirname(path))
        self.links[path] = target

    # -- resolution --------------------------------------------------------------------------------

    def _resolve(self, path: str, follow_last: bool) -> str:
        if not path.startswith("/"):
            path = self.cwd.rstrip("/") + "/" + path
        pending = _components(path)
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
            cand = "/" + "/".join(parts + [comp])
            if not pending and not follow_last:
                parts.append(comp)
                break
            if cand in self.links:
                hops += 1
                if hops > MAXSYMLINKS:
                    raise _err(errno.ELOOP, path)
                target = self.links[cand]
                if target.startswith("/"):
                    parts = []
                pending.extend(reversed(_components(target)))
                continue
            if pending and cand not in self.dirs:
                raise _err(errno.ENOTDIR if cand in self.files else errno.ENOENT, cand)
            parts.append(comp)
        return "/" + "/".join(parts)

    def _stat_of(self, p: str, original: str) -> os.stat_result:
        if p in self.files:
            f = self.files[p]
            return os.stat_result((stat_mod.S_IFREG | f.mode, f.ino, DEV, 1, 0, 0, len(f.data), 0, 0, 0),
                                  {"st_mtime_ns": 0})
        if p in self.dirs:
            return os.stat_result((stat_mod.S_IFDIR | 0o755, self.dirs[p], DEV, 2, 0, 0, 4096, 0, 0, 0),
                                  {"st_mtime_ns": 0})
        if p in self.links:
            t = self.links[p]
            return os.stat_result((stat_mod.S_IFLNK | 0o777, hash(p) & 0xFFFFFFF, DEV, 1, 0, 0, len(t), 0, 0, 0),
                                  {"st_mtime_ns": 0})
        raise _err(errno.ENOENT, original)

    # -- the World protocol --------------------------------------------------------------------------

    def host_path(self, path: str) -> str:
        return self._resolve(path, True)

    def stat(self, path: str) -> os.stat_result:
        if path == "":
            raise _err(errno.ENOENT, path)
        return self._stat_of(self._resolve(path, True), path)

    def lstat(self, path: str) -> os.stat_result:
        return self._stat_of(self._resolve(path, False), path)

    def readlink(self, path: str) -> str:
        p = self._resolve(path, False)
        if p not in self.links:
            raise _err(errno.EINVAL, path)
        return self.links[p]

    def read(self, path: str, limit: int | None = None) -> bytes:
        p = self._resolve(path, True)
        if p in self.dirs:
            raise _err(errno.EISDIR, path)
        if p not in self.files:
            raise _err(errno.ENOENT, path)
        data = self.files[p].data
        return data if limit is None else data[:limit]

    def listdir(self, path: str) -> list[str]:
        p = self._resolve(path, True)
        if p not in self.dirs:
            raise _err(errno.ENOTDIR if p in self.files else errno.ENOENT, path)
        prefix = p.rstrip("/") + "/"
        names = set()
        for q in (*self.files, *self.links, *self.dirs):
            if q.startswith(prefix) and q != p:
                rest = q[len(prefix):]
                if rest and "/" not in rest:
                    names.add(rest)
        return sorted(names)

    def realpath(self, path: str) -> str:
        return self._resolve(path, True)

    def exe_link(self, path: str) -> str:
        """readlink("/proc/self/exe"): a virtual world has procfs."""
        return self._resolve(path, True)

    def readable(self, path: str) -> bool:
        try:
            p = self._resolve(path, True)
        except OSError:
            return False
        return p in self.dirs or (p in self.files and bool(self.files[p].mode & 0o444))

    def open(self, path: str) -> Opened:
        if path == "":
            raise _err(errno.ENOENT, path)
        p = self._resolve(path, True)
        st = self._stat_of(p, path)
        if p in self.dirs:
            return Opened(path, st, None, errno.EISDIR)
        f = self.files[p]
        if not f.mode & 0o444:
            raise _err(errno.EACCES, path)
        return Opened(path, st, f.data)

    def getxattr(self, path: str, name: str) -> bytes:
        raise _err(errno.ENODATA, path)

    def scandir(self, path: str) -> list[tuple[str, int]]:
        prefix = self._resolve(path, True).rstrip("/") + "/"
        return [(n, stat_mod.S_IFMT(self.lstat(prefix + n).st_mode)) for n in self.listdir(path)]

    def heads(self, directory: str, names: list[str], size: int, magic: bytes) -> list[tuple]:
        out: list[tuple] = []
        for name in names:
            path = directory.rstrip("/") + "/" + name
            try:
                data = self.read(path, size)
                out.append((name, data, self.stat(path) if data.startswith(magic) else None))
            except OSError as e:
                out.append((name, e, None))
        return out
