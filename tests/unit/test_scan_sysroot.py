"""The sysroot boundary of `ldsim scan --root`: no file outside the root is ever opened, stat'ed, listed or
read, however the root tries to lead out — symlinks to `/` and to `../../../etc`, absolute links in RPATH
directories, RPATHs climbing with `..`, an ld.so.cache whose entries name host paths, an ld.so.conf
including `/etc/../../x` and relative patterns, an ld.so.preload naming host files — and hostile files
(FIFOs and devices where libraries are searched, symlink loops) cost one finding each, never a hang.

Proof by recording: every path given to the os functions a World can use (stat, lstat, open, listdir,
scandir, readlink, access, getxattr, builtins.open) during the scan, checked against the root.
"""

from __future__ import annotations

import builtins
import os
import shutil

import pytest

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import cpu_for_level
from ldsim.ldcache import NewEntry, build_cache
from ldsim.linkmap import FileCache
from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from ldsim.scan import ProblemKind, ScanOptions, scan
from ldsim.world import RootedWorld

LIBDIR = "usr/lib/x86_64-linux-gnu"
_PATH_FUNCS = ("stat", "lstat", "open", "listdir", "scandir", "readlink", "access", "getxattr")


class Recorder:
    """Patches the os-level entry points and keeps every path they are given."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.opened: list[str] = []
        self._saved: list[tuple[object, str, object]] = []

    def _wrap(self, owner: object, name: str) -> None:
        orig = getattr(owner, name)

        def recorded(path, *a, **kw):
            if isinstance(path, (str, bytes, os.PathLike)):
                p = os.fsdecode(path)
                self.paths.append(p if p.startswith("/") else os.path.join(os.getcwd(), p))
                if name == "open":
                    self.opened.append(self.paths[-1])
            return orig(path, *a, **kw)
        self._saved.append((owner, name, orig))
        setattr(owner, name, recorded)

    def __enter__(self) -> Recorder:
        for name in _PATH_FUNCS:
            if hasattr(os, name):
                self._wrap(os, name)
        self._wrap(builtins, "open")
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, orig in reversed(self._saved):
            setattr(owner, name, orig)

    def outside(self, root: str) -> list[str]:
        root = root.rstrip("/")
        return sorted({p for p in self.paths if not (p == root or p.startswith(root + "/"))})


def _lib(path: str, **kw) -> LibSpec:
    return LibSpec(path, soname=os.path.basename(path), libc=False, **kw)


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("hostile"))
    spec = WorldSpec((
        _lib(f"{LIBDIR}/libok.so"),
        ProgSpec("usr/bin/escape", needed=("libok.so", "libnowhere.so", "libpasswd.so", "libfifo.so",
                                            "libdev.so"), libc=False,
                 rpath="/evil:/usr/lib/up:/opt/abs:$ORIGIN/../../../../../../..:/../../etc:/loopdir"),
        _lib("usr/priv/libsecret.so"),
        ProgSpec("usr/bin/suid", needed=("libok.so", "libnowhere2.so", "libsecret.so"), libc=False,
                 runpath="$ORIGIN/../../../../../../../tmp:$ORIGIN/../priv:/opt/abs"),
        ProgSpec("usr/bin/slash", needed=("/etc/passwd", "../../../../etc/hostname", "/evil/bin/true"),
                 libc=False),
    ))
    build_world(spec, root)
    os.chmod(f"{root}/usr/bin/suid", 0o4755)
    os.makedirs(f"{root}/lib64")
    shutil.copy(os.path.realpath(DEBIAN_X86_64.rtld), f"{root}{DEBIAN_X86_64.rtld}")
    for link, target in (("evil", "/"), ("usr/lib/up", "../../../etc"), ("opt/abs", "/usr/lib/x86_64-linux-gnu"),
                         ("loopdir", "loopdir"), (f"{LIBDIR}/libloop.so", "libloop.so"),
                         (f"{LIBDIR}/libpasswd.so", "/etc/passwd"), ("usr/bin/hostsh", "/bin/sh"),
                         ("usr/local/lib", "../../../../../../usr/lib")):
        os.makedirs(os.path.dirname(f"{root}/{link}"), exist_ok=True)
        os.symlink(target, f"{root}/{link}")
    os.mkfifo(f"{root}/{LIBDIR}/libfifo.so")
    os.mknod(f"{root}/{LIBDIR}/libdev.so", 0o644 | 0o020000, os.makedev(1, 3))
    os.makedirs(f"{root}/etc/ld.so.conf.d")
    with open(f"{root}/etc/ld.so.conf", "w") as f:
        f.write("include /etc/../../x\ninclude ../../../../etc/ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf\n"
                "/../../../usr/lib\n/evil/usr/lib\n\x00\xff garbage\ninclude /*/*/*/*\n")
    with open(f"{root}/etc/ld.so.conf.d/self.conf", "w") as f:
        f.write("include /etc/ld.so.conf\n")
    with open(f"{root}/etc/ld.so.preload", "w") as f:
        f.write("/lib/x86_64-linux-gnu/libc.so.6 ../../../../etc/passwd\n")
    host_entries = [NewEntry("/lib/x86_64-linux-gnu", "libc.so.6", "libc.so.6", 0x0303),
                    NewEntry("/../../../../lib/x86_64-linux-gnu", "libnowhere.so", "libnowhere.so", 0x0303),
                    NewEntry("/evil/lib/x86_64-linux-gnu", "libnowhere2.so", "libnowhere2.so", 0x0303)]
    with open(f"{root}/etc/ld.so.cache", "wb") as f:
        f.write(build_cache(host_entries))
    return root


def _scan(root: str, paths: list[str], env: tuple = ()):
    inv = Invocation(env=env, cwd="/", pid=1, cpu=cpu_for_level("x86-64-v2"), profile=DEBIAN_X86_64)
    from ldsim.ldconf import _get_parser
    _get_parser()  # ldsim's own grammar file: read before the recording starts
    world = RootedWorld(root, "/")
    with Recorder() as rec:
        res = scan(world, inv, ScanOptions(paths=paths, rooted=True), FileCache())
    return res, rec


@pytest.mark.parametrize("paths", [[], ["/"]], ids=["default-dirs", "whole-root"])
def test_nothing_outside_the_root_is_touched(hostile_root: str, paths: list[str]) -> None:
    res, rec = _scan(hostile_root, paths, (("LD_LIBRARY_PATH", "/evil/lib:/usr/lib/up/../.."),))
    assert len(rec.paths) > 50  # the recorder saw the scan at work
    assert rec.outside(hostile_root) == []
    assert res.stats.programs >= 3


def test_hostile_root_findings(hostile_root: str) -> None:
    res, _ = _scan(hostile_root, [])
    by = {(f.kind, f.file, f.subject) for f in res.findings}
    kinds = {(f.kind, f.file) for f in res.findings}
    assert (ProblemKind.RPATH_OUTSIDE_ROOT, "/usr/bin/escape") in kinds
    # libpasswd.so (-> /etc/passwd, not ELF) is fatal before the trace's listing: libnowhere.so, faked
    # earlier, is never printed (the real loader: one error line, 127)
    assert (ProblemKind.LOAD_ERROR, "/usr/bin/escape") in kinds
    assert (ProblemKind.MISSING_LIBRARY, "/usr/bin/escape", "libnowhere.so") not in by
    assert (ProblemKind.MISSING_LIBRARY, "/usr/bin/suid", "libnowhere2.so") in by
    assert (ProblemKind.SECURE_MODE_DIFFERS, "/usr/bin/suid") in kinds
    bad = {f.file: f.detail for f in res.findings if f.kind is ProblemKind.BAD_FILE}
    assert "character device" in bad[f"/{LIBDIR}/libdev.so"]
    assert "FIFO" in bad[f"/{LIBDIR}/libfifo.so"]
    assert "loop" in bad[f"/{LIBDIR}/libloop.so"]
    for f in res.findings:  # one line each
        assert "\n" not in f.detail


def test_fifo_and_device_found_by_a_search_are_never_read(hostile_root: str) -> None:
    """The search reaches libfifo.so and libdev.so; the scan ends (nothing blocks) with a verdict."""
    res, rec = _scan(hostile_root, ["/usr/bin/escape"])
    assert any(p.endswith("libfifo.so") for p in rec.paths)  # stat'ed ...
    specials = {f"{hostile_root}/{LIBDIR}/libfifo.so", f"{hostile_root}/{LIBDIR}/libdev.so"}
    assert not specials & set(rec.opened)  # ... never opened
    assert any(f.file == "/usr/bin/escape" and f.kind.group == "resolution" for f in res.findings)


def test_huge_include_glob_is_bounded(tmp_path) -> None:
    """`include /*/*/*` over thousands of directories: the expansion stops at CONF_BUDGET operations, with
    one line saying so, and the scan goes on."""
    from ldsim import scan as scan_mod
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_bytes(b"include /*/*/*\n\xff\xfe\x00binary garbage\n")
    for i in range(60):
        for j in range(scan_mod.CONF_BUDGET // 50):
            (root / f"a{i}" / f"b{j}").mkdir(parents=True)
    res, rec = _scan(str(root), [])
    assert rec.outside(str(root)) == []
    assert any(f.kind is ProblemKind.BAD_FILE and "file operations" in f.detail for f in res.findings)
    assert len(rec.paths) < 4 * scan_mod.CONF_BUDGET
