"""ldsim ldconfig against the real /sbin/ldconfig: synthetic roots, cache bytes, -p and -v, links.

Every expectation comes from running the real tool at test time on an identical copy of the root.
Needs gcc with -m32/-mx32 (Debian package gcc-multilib); without it those libraries are left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.conformance

LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"
GCC = shutil.which("gcc")
if not (os.path.exists(LDCONFIG) and GCC and os.geteuid() == 0):
    pytest.skip("needs the real ldconfig, gcc and root (ldconfig -r chroots)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
SRC = "int f(void) { return 1; }\n"


def _gcc(out: Path, soname: str | None, *flags: str) -> bool:
    src = out.parent / (out.name + ".c")
    src.write_text(SRC)
    cmd = [GCC, "-shared", "-fPIC", "-o", str(out), str(src), *flags]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    ok = subprocess.run(cmd, capture_output=True).returncode == 0
    src.unlink()
    return ok


@pytest.fixture(scope="module")
def libs(tmp_path_factory) -> dict[str, Path | None]:
    """The compiled building blocks, once per module (None when the toolchain lacks the target)."""
    d = tmp_path_factory.mktemp("libs")
    specs = {
        "a64": ("liba.so.1", ()), "a64b": ("liba.so.1", ("-Wl,--build-id=sha1",)),
        "b64": ("libb.so.2", ()), "nos": (None, ()), "v3": ("liba.so.1", ("-Wl,-z,x86-64-v3",)),
        "v2": ("libv.so.1", ("-Wl,-z,x86-64-v2",)), "d64": ("libd.so.4", ()),
        "i386": ("lib32.so.1", ("-m32",)), "i386n": ("lib32n.so.1", ("-m32", "-nostdlib")),
        "x32": ("libx32t.so.1", ("-mx32",)), "ldso": ("ld-linux-x86-64.so.2", ("-nostdlib",)),
    }
    out: dict[str, Path | None] = {}
    for key, (soname, flags) in specs.items():
        p = d / f"{key}.so"
        out[key] = p if _gcc(p, soname, *flags) else None
    return out


def _put(root: Path, rel: str, src: Path | None = None, text: str | None = None, link: str | None = None):
    p = root / rel.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    if link is not None:
        p.symlink_to(link)
    elif src is not None:
        shutil.copyfile(src, p)
    else:
        p.write_text(text or "")


def _patch(path: Path, off: int, data: bytes) -> None:
    b = bytearray(path.read_bytes())
    b[off:off + len(data)] = data
    path.write_bytes(bytes(b))


def make_root(root: Path, libs: dict[str, Path | None], legacy: bool) -> None:
    """A root exercising conf syntax, scanning rules, glibc-hwcaps and (optionally) legacy hwcap dirs."""
    _put(root, "/etc/ld.so.conf", text=(
        "include ld.so.conf.d/*.conf\n/opt/a/  # trailing slash and comment\n"
        "HWCAP 0 x\n/opt/missing\n/opt/b=libc6\n\n/opt/a\n/opt/e=weird\n"))
    _put(root, "/etc/ld.so.conf.d/10-c.conf", text="/opt/c\ninclude /etc/more/*.conf\n")
    _put(root, "/etc/ld.so.conf.d/20-d.conf", text="  /opt/d\t\n")
    _put(root, "/etc/more/m.conf", text="/opt/dup\n")
    _put(root, "/opt/a/liba.so.1.2", libs["a64"])
    _put(root, "/opt/a/liba.so.1.10", libs["a64b"])
    _put(root, "/opt/a/liba.so", link="liba.so.1")  # the dev link: a link entry
    _put(root, "/opt/a/libb.so.2.0", libs["b64"])
    _put(root, "/opt/a/libb.so.2", link="libb.so.2.0")  # already right
    _put(root, "/opt/a/libother.so.1", link="libb.so.2.0")  # a link treated like a file
    _put(root, "/opt/a/libnos.so", libs["nos"])  # no DT_SONAME: the file name
    _put(root, "/opt/a/libjunk.so.1", text="not an ELF file at all, long enough to be read as one." * 3)
    _put(root, "/opt/a/libtiny.so.1", text="\x7fELF and too short")
    _put(root, "/opt/a/libtiny2.so.1", text="\x7fEL")
    _put(root, "/opt/a/libshort.so.1", text="short text")
    _put(root, "/opt/a/libwrap-gdb.py.so", text="import gdb  # a gdb helper, long enough to be mapped....")
    _put(root, "/opt/a/libdir.so.5/x", text="")  # a directory with a library name
    _put(root, "/opt/a/libdirlink.so.5", link="libdir.so.5")
    _put(root, "/opt/a/x86_64.so.1.#prelink#", libs["b64"])
    _put(root, "/opt/a/libpre.so.1.#prelink#.AbCdEf", libs["b64"])
    os.mkfifo(root / "opt/a/libfifo.so.1")
    exe = root / "opt/a/libexe.so.1"
    _put(root, "/opt/a/libexe.so.1", libs["a64"])
    _patch(exe, 16, b"\x02\x00")  # ET_EXEC: skipped silently
    _put(root, "/opt/a/libarm.so.1", libs["a64"])
    _patch(root / "opt/a/libarm.so.1", 18, b"\xb7\x00")  # EM_AARCH64: unknown machine
    _put(root, "/opt/a/glibc-hwcaps/x86-64-v4", link="x86-64-v3")  # a symlinked hwcaps dir
    _put(root, "/opt/a/glibc-hwcaps/.hidden/libh.so.1", libs["d64"])
    _put(root, "/opt/a/glibc-hwcaps/with:colon/libh.so.1", libs["d64"])
    _put(root, "/opt/a/libscript.so", text="/* GNU ld script */\nGROUP ( /lib/libc.so.6 )\n" + " " * 40)
    _put(root, "/opt/a/libempty.so.0", text="")
    _put(root, "/opt/a/libgone.so.1", link="libnowhere.so.1.0")
    _put(root, "/opt/a/README", text="not a library name\n")
    _put(root, "/opt/a/glibc-hwcaps/x86-64-v3/liba.so.1.3", libs["v3"])
    _put(root, "/opt/a/glibc-hwcaps/x86-64-v2/libv.so.1", libs["v2"])
    (root / "opt/a/glibc-hwcaps/unused").mkdir(parents=True)
    _put(root, "/opt/a/glibc-hwcaps/file", text="a regular file is skipped")
    _put(root, "/opt/b/placeholder", text="")
    for key, rel in (("i386", "/opt/b/lib32.so.1.0"), ("i386n", "/opt/b/lib32n.so.1.0"),
                     ("i386n", "/opt/c/lib32n.so.1.0"), ("x32", "/opt/c/libx32t.so.1.0")):
        if libs[key] is not None:
            _put(root, rel, libs[key])
    _put(root, "/opt/d/libd.so.4.1", libs["d64"])
    _put(root, "/opt/d/liba.so.1.0", libs["a64"])  # same soname in a later dir
    _put(root, "/opt/dup", link="d")  # same directory twice
    _put(root, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", libs["ldso"])
    _put(root, "/lib/x86_64-linux-gnu/libd.so.4.2", libs["d64"])
    (root / "usr/lib").mkdir(parents=True)
    if legacy:
        _put(root, "/opt/a/tls/liba.so.1.2", libs["a64"])
        _put(root, "/opt/a/x86_64/libb.so.2.0", libs["b64"])
        _put(root, "/opt/a/haswell/libd.so.4.1", libs["d64"])
    (root / "var/cache/ldconfig").mkdir(parents=True)


def _twin_roots(tmp_path: Path, libs, legacy: bool) -> tuple[Path, Path]:
    """Two identical roots built the same way (copytree cannot copy the FIFO)."""
    real_root, sim_root = tmp_path / "real", tmp_path / "sim"
    make_root(real_root, libs, legacy)
    make_root(sim_root, libs, legacy)
    return real_root, sim_root


def run_real(root: Path | str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ldconfig", "-r", str(root), *args], executable=LDCONFIG, capture_output=True, text=True,
                          errors="surrogateescape", env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def run_ldsim(root: Path | str, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ldsim.cli_ldconfig", "-r", str(root), *args],
                          capture_output=True, text=True, errors="surrogateescape", env=env, cwd=REPO)


def _links(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): os.readlink(p) for p in sorted(root.rglob("*"))
            if p.is_symlink() and "var/cache" not in str(p)}


CACHE_ARGS = ("-X", "-C", "/cache.x", "-f", "/etc/ld.so.conf")


@pytest.mark.parametrize("fmt,legacy", [("new", True), ("new", False), ("compat", False), ("old", False)])
def test_cache_bytes_and_listing(tmp_path, libs, fmt, legacy):
    real_root, sim_root = _twin_roots(tmp_path, libs, legacy)
    real = run_real(real_root, *CACHE_ARGS, "-c", fmt)
    sim = run_ldsim(sim_root, *CACHE_ARGS, "-c", fmt)
    assert real.returncode == 0, real.stderr
    assert sim.returncode == 0, sim.stderr
    assert sim.stderr == real.stderr
    real_bytes = (real_root / "cache.x").read_bytes()
    sim_bytes = (sim_root / "cache.x").read_bytes()
    p_real = subprocess.run([LDCONFIG, "-p", "-C", str(real_root / "cache.x")], capture_output=True, text=True)
    p_sim = run_ldsim(Path("/"), "-p", "-C", str(sim_root / "cache.x"))
    assert p_sim.stdout.replace(str(sim_root), "R") == p_real.stdout.replace(str(real_root), "R")
    assert sim_bytes == real_bytes


def test_verbose_output(tmp_path, libs):
    real_root, sim_root = _twin_roots(tmp_path, libs, True)
    real = run_real(real_root, "-v", *CACHE_ARGS)
    sim = run_ldsim(sim_root, "-v", *CACHE_ARGS)
    assert sim.stdout.splitlines() == real.stdout.splitlines()
    assert sim.stderr.splitlines() == real.stderr.splitlines()


def test_links_created_like_ldconfig(tmp_path, libs):
    real_root, sim_root = _twin_roots(tmp_path, libs, True)
    real = run_real(real_root, "-v", "-C", "/cache.x")
    sim = run_ldsim(sim_root, "-v", "-C", "/cache.x")
    assert sim.stdout == real.stdout
    assert _links(sim_root) == _links(real_root)
    assert (sim_root / "cache.x").read_bytes() == (real_root / "cache.x").read_bytes()


def test_only_command_line_dirs(tmp_path, libs):
    real_root, sim_root = _twin_roots(tmp_path, libs, False)
    real = run_real(real_root, "-v", "-n", "/opt/a", "/opt/d")
    sim = run_ldsim(sim_root, "-v", "-n", "/opt/a", "/opt/d")
    assert (sim.stdout, sim.stderr) == (real.stdout, real.stderr)
    assert _links(sim_root) == _links(real_root)


def test_relative_cmdline_dir_is_fatal(tmp_path):
    (tmp_path / "r").mkdir()
    real = run_real(tmp_path / "r", "-X", "-C", "/c", "opt")
    sim = run_ldsim(tmp_path / "r", "-X", "-C", "/c", "opt")
    assert (sim.returncode, sim.stderr) == (real.returncode, real.stderr)


def test_host_conf_into_scratch_cache(tmp_path):
    """This machine's own /etc/ld.so.conf, cache written to a scratch file (nothing in /etc changes; the
    aux cache both rewrite, even with -C, is put back as it was)."""
    aux = Path("/var/cache/ldconfig/aux-cache")
    saved = aux.read_bytes() if aux.exists() else None
    real_c, sim_c = tmp_path / "real.cache", tmp_path / "sim.cache"
    try:
        real = subprocess.run([LDCONFIG, "-X", "-i", "-C", str(real_c)], capture_output=True, text=True)
        assert real.returncode == 0, real.stderr
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
        sim = subprocess.run([sys.executable, "-m", "ldsim.cli_ldconfig", "-X", "-C", str(sim_c)],
                             capture_output=True, text=True, env=env, cwd=REPO)
        assert sim.returncode == 0, sim.stderr
        assert sim_c.read_bytes() == real_c.read_bytes()
    finally:
        if saved is not None:
            aux.write_bytes(saved)


def test_host_verbose_scan_without_writing(tmp_path):
    """`ldconfig -v -N -X` on this machine writes nothing; ldsim must print the same lines."""
    real = subprocess.run(["ldconfig", "-v", "-N", "-X"], executable=LDCONFIG, capture_output=True,
                          text=True, errors="surrogateescape")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    sim = subprocess.run([sys.executable, "-m", "ldsim.cli_ldconfig", "-v", "-N", "-X"], capture_output=True,
                         text=True, errors="surrogateescape", env=env, cwd=REPO)
    assert (sim.returncode, sim.stdout, sim.stderr) == (real.returncode, real.stdout, real.stderr)


# ------------------------------------------------------------------ twin roots built from a few files


def _twin(tmp_path: Path, files: dict[str, bytes | str | Path]) -> tuple[Path, Path]:
    """Two identical roots: `files` maps an in-root path (str, may carry surrogate-escaped bytes) to its
    content (bytes), a symlink target ('-> TARGET') or a library to copy (Path)."""
    roots = tmp_path / "real", tmp_path / "sim"
    for root in roots:
        (root / "var/cache/ldconfig").mkdir(parents=True)
        for rel, content in files.items():
            p = root / rel.lstrip("/")
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, p)
            elif isinstance(content, str):
                assert content.startswith("-> ")
                p.symlink_to(content[3:])
            else:
                p.write_bytes(content)
    return roots


def _same_run(real_root: Path, sim_root: Path, *args: str) -> None:
    real = run_real(real_root, *args)
    sim = run_ldsim(sim_root, *args)
    assert (sim.returncode, sim.stdout, sim.stderr) == (real.returncode, real.stdout, real.stderr)
    assert _links(sim_root) == _links(real_root)


def test_undecodable_bytes_in_names_are_printed_unchanged(tmp_path, libs):
    """ldconfig writes file names as bytes: a Latin-1 name is not turned into `\\udce9` on stderr."""
    e = os.fsdecode(b"\xe9")
    real_root, sim_root = _twin(tmp_path, {
        "/etc/ld.so.conf": f"/opt/a\n/opt/b{e}\n".encode("utf-8", "surrogateescape"),
        f"/opt/a/libjunk{e}.so.1": b"not an ELF file, long enough to be mapped and checked" * 2,
        f"/opt/a/liba{e}.so.1.2": libs["a64"], "/usr/lib/placeholder": b""})
    _same_run(real_root, sim_root, "-v", "-X", "-C", "/c")


def test_stale_soname_link_is_replaced_once(tmp_path, libs):
    """A dangling `SONAME` link is unlinked while the directory is read (`.so.` in its name), so
    create_links finds nothing to remove and only makes the new link: no second unlink."""
    real_root, sim_root = _twin(tmp_path, {
        "/etc/ld.so.conf": b"/opt/a\n", "/opt/a/liba.so.1.2": libs["a64"],
        "/opt/a/liba.so.1": "-> liba.so.1.0", "/opt/a/libgone.so.3": "-> nowhere", "/usr/lib/placeholder": b""})
    _same_run(real_root, sim_root, "-v", "-C", "/c")


@pytest.mark.parametrize("conf_name,conf", [
    ("/etc/ld.so.conf", "include /etc//conf.d/*.conf\n"),  # the pattern's own text names the files
    ("/etc/ld.so.conf", "include /etc/co*//[[:alpha:]].conf\n"),  # a matched directory, then a class
    ("/etc/ld.so.conf", "include /etc/conf.d/[^x].conf /etc/conf.d/\\*.conf\n"),  # '^' negates; escaped '*'
    ("/etc/ld.so.conf", "include ./conf.d/.*\n"),  # '.*' also matches '.' and '..' (directories: empty)
    ("etc/ld.so.conf", "include conf.d/y.conf\n"),  # a relative -f: names stay relative
    ("ld.so.conf", "include etc/conf.d/*.conf\n"),  # no '/' in the file name: relative to the cwd
])
def test_include_patterns_and_file_names(tmp_path, libs, conf_name, conf):
    real_root, sim_root = _twin(tmp_path, {
        conf_name: conf.encode(), "/etc/conf.d/x.conf": b"/opt/a\n", "/etc/conf.d/y.conf": b"/opt/b\nhwcap 0 y\n",
        "/etc/conf.d/*.conf": b"/opt/c\n", "/etc/conf.d/.h.conf": b"hwcap 1 h\n",
        "/opt/a/liba.so.1.2": libs["a64"], "/opt/b/libb.so.2.0": libs["b64"], "/opt/c/libd.so.4": libs["d64"],
        "/usr/lib/placeholder": b""})
    _same_run(real_root, sim_root, "-v", "-X", "-C", "/c", "-f", conf_name)


def _corrupt(data: bytes, how: str) -> bytes | None:
    b = bytearray(data)
    if how == "truncated":
        return bytes(b[:10])
    if how == "big-endian":
        b[28] = 3
    elif how == "extension-outside":
        b[32:36] = (len(b) + 64).to_bytes(4, "little")
    elif how == "extension-bad-magic":
        off = int.from_bytes(b[32:36], "little")
        b[off:off + 4] = b"\0\0\0\0"
    elif how == "empty":
        return b""
    elif how == "garbage":
        return b"not a cache file at all" * 3
    elif how == "old-empty":  # 16 bytes: ld.so refuses it, ldconfig -p lists 0 libs
        return b"ld.so-1.7.0\0" + bytes(4)
    elif how == "new-header-only":  # the extension offset now points past the end
        return bytes(b[:48])
    elif how == "nlibs-huge":  # the entries run past the mapping: ldconfig -p dies of SIGSEGV
        b[20:24] = (1 << 20).to_bytes(4, "little")
    return bytes(b)


@pytest.mark.parametrize("how", ["truncated", "big-endian", "extension-outside", "extension-bad-magic", "empty",
                                 "garbage", "missing", "directory", "old-empty", "new-header-only", "nlibs-huge",
                                 "compat-exact"])
def test_print_cache_errors_are_ldconfigs(tmp_path, libs, how):
    """`ldconfig -p` on a damaged or absent cache: print_cache's own checks (not ld.so's), fatal messages
    and exit status."""
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/opt/a/liba.so.1.2": libs["a64"],
                                           "/opt/a/glibc-hwcaps/x86-64-v3/liba.so.1": libs["a64"]})
    assert run_real(real_root, "-X", "-C", "/good").returncode == 0
    good = (real_root / "good").read_bytes()
    if how == "compat-exact":  # ends with the embedded new header: too short for print_cache to use it
        assert run_real(real_root, "-X", "-c", "compat", "-C", "/good").returncode == 0
        good = (real_root / "good").read_bytes()
        nold = int.from_bytes(good[12:16], "little")
        good = good[:(16 + 12 * nold + 7) // 8 * 8 + 48]
    for root in (real_root, sim_root):
        if how == "directory":
            (root / "c").mkdir()
        elif how != "missing":
            (root / "c").write_bytes(_corrupt(good, how))
    _same_run(real_root, sim_root, "-p", "-C", "/c")


@pytest.mark.parametrize("cache,extra", [
    ("/nodir/c", {}),  # Can't create temporary cache file /nodir/c~: No such file or directory
    ("/c", {"/c~": "-> /etc/x"}),  # O_NOFOLLOW: Too many levels of symbolic links
    ("/c", {"/c~/x": b""}),  # the temporary name is a directory: Is a directory
    ("/c", {"/c/x": b""}),  # Renaming of /c~ to /c failed: Is a directory (the temporary file stays)
    ("/c", {"/c~": b"an old temporary file, truncated and reused"}),
])
def test_cache_write_failures_are_ldconfigs(tmp_path, libs, cache, extra):
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/opt/a/liba.so.1.2": libs["a64"],
                                           "/usr/lib/placeholder": b"", **extra})
    _same_run(real_root, sim_root, "-C", cache)
    for name in ("c", "c~"):
        real, sim = real_root / name, sim_root / name
        assert real.is_file() == sim.is_file()
        if real.is_file():
            assert (real.read_bytes(), real.stat().st_mode) == (sim.read_bytes(), sim.stat().st_mode)


def _phdrs(data: bytes) -> list[tuple[int, int, int]]:
    """(p_type, p_offset, header offset) of each program header of a little-endian ELF file."""
    is64 = data[4] == 2
    phoff = int.from_bytes(data[32:40] if is64 else data[28:32], "little")
    size = 56 if is64 else 32
    count = int.from_bytes(data[56:58] if is64 else data[44:46], "little")
    out = []
    for i in range(count):
        h = phoff + i * size
        off = int.from_bytes(data[h + 8:h + 16] if is64 else data[h + 4:h + 8], "little")
        out.append((int.from_bytes(data[h:h + 4], "little"), off, h))
    return out


def test_reads_past_the_end_see_the_mapped_page(tmp_path, libs):
    """check_ptr tests only where a read starts: a dynamic section cut by the end of the file reads on
    in the zero-filled rest of the mapped page (DT_NULL: no 'truncated'); a 32-bit Elf32_Off load offset
    wraps to put the string table far below the file ('truncated'), unless it is all ones, loadoff's
    own "no segment" mark (then 0)."""
    a64 = libs["a64"].read_bytes()
    dyn = next(off for t, off, _ in _phdrs(a64) if t == 2)
    files: dict[str, bytes | str | Path] = {"/etc/ld.so.conf": b"/opt/a\n", "/usr/lib/placeholder": b""}
    for n in (20, 36, 40):  # cut in the 2nd and 3rd entries
        files[f"/opt/a/libcut{n}.so.1"] = a64[:dyn + n]
    for key in ("i386", "a64"):
        for p_offset in (0x9A, 0x01):  # first PT_LOAD, at p_vaddr 0
            if libs[key] is not None:
                b = bytearray(libs[key].read_bytes())
                load = next(h for t, _, h in _phdrs(bytes(b)) if t == 1)
                b[load + (8 if b[4] == 2 else 4)] = p_offset
                files[f"/opt/a/libwrap{key}-{p_offset}.so.1"] = bytes(b)
    real_root, sim_root = _twin(tmp_path, files)
    _same_run(real_root, sim_root, "-v", "-X", "-C", "/c")
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()


def test_mutated_libraries(tmp_path, libs):
    """Seeded byte mutations and truncations of real libraries: the same verdict for each file."""
    import random
    rng = random.Random(1)
    sources = [libs[k].read_bytes() for k in ("a64", "i386") if libs[k] is not None]
    files: dict[str, bytes | str | Path] = {"/etc/ld.so.conf": b"/opt/a\n", "/usr/lib/placeholder": b""}
    for i in range(40):
        b = bytearray(rng.choice(sources))
        if i % 3 == 0:
            b = b[:rng.randint(64, len(b))]
        else:
            for _ in range(rng.randint(1, 3)):
                b[rng.choice([rng.randint(0, 64), rng.randint(64, 64 + 56 * 12), rng.randint(0, len(b) - 1)])] = \
                    rng.randint(0, 255)
        files[f"/opt/a/libm{i}.so.1"] = bytes(b)
    real_root, sim_root = _twin(tmp_path, files)
    _same_run(real_root, sim_root, "-v", "-X", "-C", "/c")
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()


@pytest.mark.parametrize("args", [
    ("--verbose", "-C", "/c"), ("--verb", "-C", "/c"), ("--format=compat", "-C", "/c"), ("--format", "old", "-C", "/c"),
    ("--ignore-aux-cache", "-C", "/c"), ("--print-cache", "-C", "/etc/c0"), ("--print", "-C", "/etc/c0"),
    ("--version",), ("-V",),
])
def test_long_options(tmp_path, libs, args):
    """argp's long names: --print-cache, --verbose, --format, --ignore-aux-cache (prefixes too), --version."""
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/opt/a/liba.so.1.2": libs["a64"],
                                           "/usr/lib/placeholder": b""})
    for root in (real_root, sim_root):
        assert run_real(root, "-X", "-C", "/etc/c0").returncode == 0
    _same_run(real_root, sim_root, *args)
    assert [p.read_bytes() for p in sorted(sim_root.glob("c*"))] == [p.read_bytes() for p in sorted(real_root.glob("c*"))]


def test_aux_cache_is_written_and_reused(tmp_path, libs):
    """ldconfig keeps /var/cache/ldconfig/aux-cache (soname, flags, ISA level by ino, ctime, size, dev):
    loaded unless -i or -C, written whenever it builds a cache.  Entries hold inode numbers, so real and
    ldsim run one after the other on the same root, each from the same starting aux cache."""
    root = tmp_path / "r"
    _put(root, "/etc/ld.so.conf", text="/opt/a\n/opt/b\n")
    for i, key in enumerate(("a64", "b64", "nos", "d64", "v3", "i386")):
        if libs[key] is not None:
            _put(root, f"/opt/a/lib{key}.so.{i}", libs[key])
    os.link(root / "opt/a/liba64.so.0", root / "opt/a/libhard.so.7")  # one file, two names: read once
    _put(root, "/opt/b/libb.so.1", libs["b64"])
    _put(root, "/opt/a/libjunk.so.1", text="not an ELF file" * 10)
    aux = root / "var/cache/ldconfig/aux-cache"
    (root / "var/cache").mkdir(parents=True)  # mkdir makes only the last component

    def unpadded(data: bytes | None) -> bytes | None:
        """save_aux_cache leaves each entry's 4 bytes of tail padding as malloc gave them: zero them."""
        if data is None:
            return None
        b = bytearray(data)
        for k in range(int.from_bytes(b[24:28], "little")):
            b[32 + 48 * k + 44:32 + 48 * k + 48] = bytes(4)
        return bytes(b)

    def both(*args: str) -> None:
        before = aux.read_bytes() if aux.exists() else None
        real = run_real(root, *args)
        real_aux = aux.read_bytes() if aux.exists() else None
        if before is None:
            shutil.rmtree(aux.parent)
        else:
            aux.write_bytes(before)
        sim = run_ldsim(root, *args)
        assert (sim.returncode, sim.stdout, sim.stderr) == (real.returncode, real.stdout, real.stderr)
        assert unpadded(aux.read_bytes() if aux.exists() else None) == unpadded(real_aux)
        assert oct(aux.stat().st_mode) == "0o100600" and oct(aux.parent.stat().st_mode) == "0o40700"

    both("-X", "-C", "/c1")  # no var/cache/ldconfig yet: made 0700; -C: nothing loaded
    (root / "opt/b/libb.so.1").unlink()  # its entry is not used again: dropped
    _put(root, "/opt/b/libnew.so.3", libs["d64"])
    both("-X")  # loaded (a table sized for its entries), the new file added
    both("-X", "-i")


@pytest.mark.parametrize("args", [
    ("-z",), ("-C",), ("--nolinks", "-C", "/c"), ("--verb=3",), ("--format",), ("--ver",), ("--pr",), ("-?",),
    ("--help",), ("--usage",), ("--u",), ("-vXC/c",), ("-p", "-z"), ("-V", "-z"), ("-z", "-V"), ("--", "-z"),
    ("-X", "-C", "/c", "-v", "/opt/a", "-n"),  # options after operands too
])
def test_command_line_as_argp_reads_it(tmp_path, libs, args):
    """getopt_long's messages and argp's exit status 64 for usage errors; --help, --usage, -V answered
    where they are met; operands and options mixed."""
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/opt/a/liba.so.1.2": libs["a64"],
                                           "/usr/lib/placeholder": b""})
    _same_run(real_root, sim_root, *args)


@pytest.mark.parametrize("fmt", ["old", "compat"])
def test_legacy_hwcap_entries_after_the_others_do_not_overflow(tmp_path, libs, fmt):
    """save_cache's old array overflows only when a legacy-hwcap entry sorts before a plain one (libx
    and liby sort before liba, names descending): here ldconfig ends normally, with this cache."""
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/opt/a/liby.so.1": libs["nos"],
                                           "/opt/a/libx.so.1": libs["nos"], "/opt/a/x86_64/liba.so.1": libs["nos"],
                                           "/opt/a/tls/libb.so.1": libs["nos"], "/usr/lib/placeholder": b""})
    _same_run(real_root, sim_root, "-X", "-C", "/c", "-c", fmt)
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()


def test_sonames_whose_numbers_wrap_sort_as_ldconfig_inserts_them(tmp_path, libs):
    """_dl_cache_libcmp compares digit runs as C ints: values and their difference wrap, so names with
    runs of 2**31 and more compare inconsistently, and the cache order is that of add_to_cache's list
    insertion (each entry before the first that compares greater), not of a sort."""
    names = ["1", "01", "10", "9", "1a", "1.0", "2147483647", "4294967294", "2147483648", "99999999999",
             "3000000000", "4294967297"]
    files: dict[str, bytes | str | Path] = {"/etc/ld.so.conf": b"/opt/a\n", "/usr/lib/placeholder": b""}
    for n in names:
        files[f"/opt/a/libx.so.{n}"] = libs["nos"]  # no DT_SONAME: the file name is the soname
    real_root, sim_root = _twin(tmp_path, files)
    _same_run(real_root, sim_root, "-v", "-X", "-C", "/c")
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()


def _limited(argv: list[str], nofile: int, executable: str | None = None) -> subprocess.CompletedProcess:
    """argv run with RLIMIT_NOFILE lowered to `nofile` (the descriptors an include cycle can use)."""
    import resource
    return subprocess.run(argv, executable=executable, capture_output=True, text=True, errors="surrogateescape",
                          cwd=REPO,
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))


@pytest.mark.parametrize("conf", [
    {"/etc/ld.so.conf": b"include /etc/ld.so.conf\n/opt/a\n"},  # fopen fails: EMFILE warning
    {"/etc/ld.so.conf": b"/opt/a\ninclude x.conf\n", "/etc/x.conf": b"include ld.so.conf\n/opt/b\n"},
    {"/etc/ld.so.conf": b"include /etc/*\n/opt/a\n", "/etc/sub/x": b""},  # opendir fails: no match, silent
    {"/etc/ld.so.conf": b"include ld.so.con[f]\n/opt/a\n"},  # relative, magic: opendir again
])
def test_include_cycles_run_out_of_descriptors(tmp_path, libs, conf):
    """ldconfig follows an include cycle while each level keeps its FILE open, until fopen (a warning)
    or glob's opendir (silently) finds no descriptor free; every level then goes on after its include
    line, so each directory is 'given more than once' as often as the limit allowed."""
    real_root, sim_root = _twin(tmp_path, {**conf, "/opt/a/liba.so.1.2": libs["a64"],
                                           "/opt/b/libb.so.2.0": libs["b64"], "/usr/lib/placeholder": b""})
    args = ["-v", "-X", "-C", "/c"]
    real = _limited(["ldconfig", "-r", str(real_root), *args], 40, LDCONFIG)
    sim = _limited([sys.executable, "-m", "ldsim.cli_ldconfig", "-r", str(sim_root), *args], 40)
    assert "given more than once" in real.stderr
    assert (sim.returncode, sim.stdout, sim.stderr) == (real.returncode, real.stdout, real.stderr)
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()


@pytest.mark.parametrize("kind", ["missing", "file"])
@pytest.mark.parametrize("args", [("-C", "/c"), ("-C", "c"), ("-C", "/./../etc/c"), ("-C", "/etc/./c"), (),
                                  ("-v", "-C", "/var/x/c"), ("-p",), ("-p", "-C", "c")])
def test_root_that_chroot_refuses(tmp_path, kind, args):
    """-r ROOT that is missing or not a directory: chroot fails and ldconfig translates names itself
    (chroot_canon): the cache's directory must resolve under ROOT except for its last component, else
    'Can't open cache file directory D' ends the run before anything else; the temporary file's
    name in the final message is the translated one ('ROOT//c~' for /c)."""
    root = tmp_path / "root"
    if kind == "file":
        root.write_text("not a directory\n")
    for r in (str(root), str(root) + "//"):  # ldconfig drops the trailing slashes itself
        real = run_real(r, *args)
        sim = run_ldsim(r, *args)
        assert (sim.returncode, sim.stdout, sim.stderr) == (real.returncode, real.stdout, real.stderr)


@pytest.mark.parametrize("soname", ["/opt/b/libx.so.1", "nodir/libx.so.1", "lib" + "x" * 300 + ".so.1"],
                         ids=["absolute", "missing-dir", "too-long"])
def test_soname_link_that_cannot_be_made(tmp_path, libs, soname):
    """create_links: symlink(2) fails for a soname naming a missing directory (an absolute one is
    appended: /opt/a//opt/b/...) or too long a name: 'Can't link X to LIB', and -v says (SKIPPED)."""
    if not shutil.which("patchelf"):
        pytest.skip("needs patchelf")
    lib = tmp_path / "lib.so"
    shutil.copyfile(libs["a64"], lib)
    subprocess.run(["patchelf", "--set-soname", soname, str(lib)], check=True)
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/opt/a/libx.so.1.0": lib,
                                           "/opt/b/placeholder": b"", "/usr/lib/placeholder": b""})
    _same_run(real_root, sim_root, "-v", "-C", "/c")
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()


@pytest.mark.parametrize("versions", [("1.9", "1.2147483648"), ("1.2147483647", "1.3000000000"),
                                      ("1.4294967295", "1.0")])
def test_newest_file_of_a_soname_by_wrapping_numbers(tmp_path, libs, versions):
    """search_dir keeps the file whose name _dl_cache_libcmp ranks higher for the soname link: numbers
    and their difference wrap as C ints (liba.so.1.3000000000 is below liba.so.1.2147483647)."""
    real_root, sim_root = _twin(tmp_path, {"/etc/ld.so.conf": b"/opt/a\n", "/usr/lib/placeholder": b"",
                                           f"/opt/a/liba.so.{versions[0]}": libs["a64"],
                                           f"/opt/a/liba.so.{versions[1]}": libs["a64b"]})
    _same_run(real_root, sim_root, "-v", "-C", "/c")
    assert (sim_root / "c").read_bytes() == (real_root / "c").read_bytes()
