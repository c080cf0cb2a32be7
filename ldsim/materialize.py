"""Turn a declarative world into real ELF files with gcc (and patchelf where the linker cannot).

Used by the conformance tests, `ldsim scenario build` and the hypothesis strategies; never by the resolver.

Design:
* One gcc call per object, from a tiny generated C file (`defines` become empty functions, `uses` become
  calls from a function nobody runs, so a program built here does nothing when executed).
* DT_NEEDED strings are exact and in the order given: the object is linked, with `--no-as-needed`, against
  *stub* shared objects whose DT_SONAME is the needed string (any string works, `/` and `$` included).
  A stub defines what the world's object of that name defines (same versions), so references get the
  right version needs.  Stubs live in a scratch dir and never reach `dest_dir`.
* DT_RPATH / DT_RUNPATH are written literally (`$ORIGIN` stays).  When an object has both (ld can emit only
  one) the RUNPATH string enters as an extra DT_NEEDED marker whose tag is then rewritten to DT_RUNPATH.
* DF_1_NODEFLIB: `patchelf --no-default-lib` (GNU ld 2.40 ignores `-z nodeflib`).
* Byte patches and truncation afterwards give foreign-machine, wrong-class and broken candidates.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

DT_NULL, DT_NEEDED, DT_RPATH, DT_RUNPATH = 0, 1, 15, 29
DT_STRTAB = 5
PT_DYNAMIC = 2
E_MACHINE_OFFSET = 18
EI_CLASS_OFFSET = 4

_SYM = re.compile(r"^(?:([a-z,]+):)?([A-Za-z_][A-Za-z0-9_]*)(?:(@@?)([A-Za-z_][A-Za-z0-9_.]*))?$")
ATTRS = frozenset({"data", "tls", "wide", "weak", "protected"})


class BuildError(RuntimeError):
    """A compiler or patchelf call failed; the message carries the command and its output."""


@dataclass(frozen=True)
class _ObjectSpec:
    """Fields common to libraries and programs.

    `defines`/`uses` entries: `name` (unversioned), `name@@V` (default version V), `name@V` (non-default
    version V; in `uses` a reference bound to exactly V), each optionally prefixed by comma-separated
    attributes and a colon: `data:` (an `int` object instead of a function; with `wide`, a 32-byte array),
    `tls:` (a `__thread int`), `weak:` (a weak definition or reference), `protected:` (protected
    visibility), e.g. `weak,data:var@@V1`.
    `versions` gives parents: `("V2", "V1")` means node V2 inherits V1; nodes only named in `defines` are
    created without a parent.
    `patches` = (offset, bytes) written after the build; `truncate` cuts the file to that many bytes.
    """

    path: str
    needed: tuple[str, ...] = ()
    rpath: str | None = None
    runpath: str | None = None
    defines: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    versions: tuple[tuple[str, str | None], ...] = ()
    nodeflib: bool = False
    m32: bool = False
    libc: bool = True
    cflags: tuple[str, ...] = ()
    patches: tuple[tuple[int, bytes], ...] = ()
    truncate: int | None = None


@dataclass(frozen=True)
class LibSpec(_ObjectSpec):
    """A shared object.  `soname=None` means no DT_SONAME."""

    soname: str | None = None


@dataclass(frozen=True)
class ProgSpec(_ObjectSpec):
    """An executable; `main` returns 0 (or `_start` exits 0 when `libc=False`).  `interp=None`: gcc's default."""

    pie: bool = True
    interp: str | None = None


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class File:
    """A plain file (text, garbage, a truncated header ...)."""

    path: str
    data: bytes = b""
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    path: str


@dataclass(frozen=True)
class WorldSpec:
    objects: tuple[LibSpec | ProgSpec, ...] = ()
    symlinks: tuple[Symlink, ...] = ()
    files: tuple[File | Dir, ...] = ()


# ----------------------------------------------------------------------------------------- pure parts


def _match_symbol(entry: str) -> re.Match:
    m = _SYM.match(entry)
    if not m or (m.group(1) and not set(m.group(1).split(",")) <= ATTRS):
        raise ValueError(f"bad symbol spec {entry!r}")
    return m


def parse_symbol(entry: str) -> tuple[str, str | None, bool]:
    """`foo` -> (foo, None, False); `foo@@V` -> (foo, V, True); `foo@V` -> (foo, V, False)."""
    m = _match_symbol(entry)
    return m.group(2), m.group(4), m.group(3) == "@@"


def symbol_attrs(entry: str) -> frozenset[str]:
    """The attribute prefix of an entry: `weak,data:foo@V1` -> {weak, data}."""
    m = _match_symbol(entry)
    return frozenset(m.group(1).split(",")) if m.group(1) else frozenset()


def _c_decl(attrs: frozenset[str], name: str, define: bool) -> str:
    pre = ("__attribute__((weak)) " if "weak" in attrs else "") + (
        '__attribute__((visibility("protected"))) ' if "protected" in attrs else "")
    if "data" in attrs or "tls" in attrs:
        typ = ("__thread " if "tls" in attrs else "") + ("long" if "wide" in attrs else "int")
        dim, init = ("[4]", "{1}") if "wide" in attrs else ("", "1")
        return f"{pre}{typ} {name}{dim} = {init};" if define else f"{pre}extern {typ} {name}{dim};"
    return f"{pre}void {name}(void) {{}}" if define else f"{pre}extern void {name}(void);"


def _impl_name(name: str, version: str) -> str:
    return f"__ldsim_{name}_{re.sub(r'[^A-Za-z0-9_]', '_', version)}"


def c_source(defines: Sequence[str], uses: Sequence[str], kind: str, m32: bool = False) -> str:
    """The C file of one object.  kind: 'lib', 'prog' (with libc) or 'start' (program without libc)."""
    out: list[str] = []
    for entry in defines:
        name, ver, default = parse_symbol(entry)
        attrs = symbol_attrs(entry)
        if ver is None:
            out.append(_c_decl(attrs, name, True))
        else:
            impl = _impl_name(name, ver)
            out.append(f'__asm__(".symver {impl}, {name}{"@@" if default else "@"}{ver}");')
            out.append(_c_decl(attrs, impl, True))
    calls = []
    here = {parse_symbol(e)[0]: symbol_attrs(e) for e in defines if parse_symbol(e)[1] is None}
    for entry in uses:
        name, ver, _ = parse_symbol(entry)
        attrs = symbol_attrs(entry)
        if ver is None and name in here:  # defined above: its own type, no second declaration
            attrs = here[name]
        else:
            out.append(_c_decl(attrs, name, False))
        if ver is not None:
            out.append(f'__asm__(".symver {name}, {name}@{ver}");')
        index = "[0]" if "wide" in attrs else ""
        calls.append(f"__ldsim_sink += {name}{index};" if attrs & {"data", "tls"} else f"{name}();")
    if calls:
        out.append("static volatile long __ldsim_sink;")
        out.append("void __ldsim_uses(void) { " + " ".join(calls) + " }")
    if kind == "prog":
        out.append("int main(void) { return 0; }")
    elif kind == "start":
        exit_asm = ("movl $1, %eax; xorl %ebx, %ebx; int $0x80" if m32
                    else "movl $60, %eax; xorl %edi, %edi; syscall")
        out.append(f'void _start(void) {{ __asm__ volatile("{exit_asm}"); for (;;) ; }}')
    return "\n".join(out) + "\n"


def version_script(defines: Sequence[str], parents: Iterable[tuple[str, str | None]]) -> str | None:
    """Version nodes for the versions named in `defines` (and `parents`); impl helpers are made local."""
    parent = dict(parents)
    order: list[str] = []
    for entry in defines:
        ver = parse_symbol(entry)[1]
        if ver is not None and ver not in order:
            order.append(ver)
    for v, p in parent.items():
        for x in (p, v):
            if x is not None and x not in order:
                order.append(x)
    if not order:
        return None
    # Parents must be declared before children.
    done: list[str] = []

    def visit(v: str) -> None:
        if v in done:
            return
        if parent.get(v):
            visit(parent[v])  # type: ignore[arg-type]
        done.append(v)

    for v in order:
        visit(v)
    lines = []
    for i, v in enumerate(done):
        local = " local: __ldsim_*;" if i == 0 else ""
        tail = f" {parent[v]}" if parent.get(v) else ""
        lines.append(f"{v} {{{local} }}{tail};")
    return "\n".join(lines) + "\n"


def needed_name_of(obj: LibSpec | ProgSpec) -> set[str]:
    """Names under which `obj` may be requested by a DT_NEEDED of the same world (for stub symbols)."""
    names = {obj.path, os.path.basename(obj.path)}
    if isinstance(obj, LibSpec) and obj.soname:
        names.add(obj.soname)
    return names


# ----------------------------------------------------------------------------------------- effects


def _run(argv: list[str], cwd: str | None = None) -> None:
    p = subprocess.run(argv, capture_output=True, cwd=cwd)
    if p.returncode != 0:
        raise BuildError(f"{' '.join(argv)}\n{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")


@dataclass
class _Stubs:
    """Stub shared objects keyed by (soname, defines, versions, m32), built once each."""

    scratch: str
    paths: dict[tuple, str] = field(default_factory=dict)

    def key(self, soname: str, provider: LibSpec | ProgSpec | None, m32: bool) -> tuple:
        if provider is None:
            return (soname, (), (), m32)
        return (soname, provider.defines, provider.versions, m32)

    def path_for(self, key: tuple) -> str:
        return self.paths.setdefault(key, os.path.join(self.scratch, f"stub{len(self.paths)}.so"))

    def build(self, key: tuple) -> None:
        soname, defines, versions, m32 = key
        out = self.paths[key]
        src = out[:-3] + ".c"
        with open(src, "w") as f:
            f.write(c_source(defines, (), "lib"))
        argv = ["gcc", "-shared", "-fPIC", "-nostdlib", *(["-m32"] if m32 else []), "-o", out, src,
                f"-Wl,-soname,{soname}"]
        script = version_script(defines, versions)
        if script:
            with open(out[:-3] + ".map", "w") as f:
                f.write(script)
            argv.append(f"-Wl,--version-script,{out[:-3]}.map")
        _run(argv)


def _provider(world: WorldSpec, name: str) -> LibSpec | ProgSpec | None:
    """The library a DT_NEEDED string most likely names: exact name first, then by base name."""
    libs = [o for o in world.objects if isinstance(o, LibSpec)]
    for candidates in (name, os.path.basename(name)):
        for obj in libs:
            if candidates in needed_name_of(obj):
                return obj
    return None


def _link_argv(obj: LibSpec | ProgSpec, out: str, src: str, stubs: list[str]) -> list[str]:
    is_lib = isinstance(obj, LibSpec)
    argv = ["gcc", *(["-m32"] if obj.m32 else []), *obj.cflags, "-o", out, src]
    if is_lib:
        argv[1:1] = ["-shared", "-fPIC"]
        if obj.soname is not None:
            argv.append(f"-Wl,-soname,{obj.soname}")
    else:
        argv.insert(1, "-pie" if obj.pie else "-no-pie")
        argv.append("-Wl,--unresolved-symbols=ignore-all")
        if obj.interp is not None:
            argv.append(f"-Wl,--dynamic-linker,{obj.interp}")
    if not obj.libc:
        argv.insert(1, "-nostdlib")
        if not is_lib:
            argv.insert(1, "-nostartfiles")
    argv.append("-Wl,--no-as-needed")
    argv += stubs
    if obj.rpath is not None:
        argv += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{obj.rpath}"]
    elif obj.runpath is not None:
        argv += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{obj.runpath}"]
    script = version_script(obj.defines, obj.versions)
    if script:
        mapfile = src[:-2] + ".map"
        with open(mapfile, "w") as f:
            f.write(script)
        argv.append(f"-Wl,--version-script,{mapfile}")
    return argv


def _dynamic_entries(data: bytes) -> tuple[bool, int, list[tuple[int, int, int]]]:
    """(is64, file offset of strtab, [(offset, tag, val)]) of the PT_DYNAMIC array, read via program headers."""
    is64 = data[EI_CLASS_OFFSET] == 2
    if is64:
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    else:
        phoff, = struct.unpack_from("<I", data, 0x1C)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
    loads, dyn = [], None
    for i in range(phnum):
        o = phoff + i * phentsize
        if is64:
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, o)
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIIII", data, o)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dyn = (p_offset, p_filesz)
    if dyn is None:
        raise BuildError("no PT_DYNAMIC")
    fmt, size = ("<qQ", 16) if is64 else ("<iI", 8)
    entries, strtab = [], 0
    for o in range(dyn[0], dyn[0] + dyn[1], size):
        tag, val = struct.unpack_from(fmt, data, o)
        if tag == DT_NULL:
            break
        entries.append((o, tag, val))
        if tag == DT_STRTAB:
            strtab = next(off + val - va for va, off, sz in loads if va <= val < va + sz)
    return is64, strtab, entries


def retag_needed(path: str, marker: str, new_tag: int) -> None:
    """Rewrite the tag of the DT_NEEDED entry whose string is `marker` (the RUNPATH-next-to-RPATH trick)."""
    with open(path, "r+b") as f:
        data = f.read()
        is64, strtab, entries = _dynamic_entries(data)
        for off, tag, val in entries:
            if tag == DT_NEEDED and data[strtab + val:].split(b"\0", 1)[0] == marker.encode():
                f.seek(off)
                f.write(struct.pack("<q" if is64 else "<i", new_tag))
                return
    raise BuildError(f"{path}: marker DT_NEEDED {marker!r} not found")


def retag(path: str, tag: int, new_tag: int | None = None, value: int | None = None) -> None:
    """Rewrite the first dynamic entry with `tag`: as `new_tag` (DT_DEBUG, 21, hides an entry from a
    shared object's loader: it is ignored there) and/or with `value`."""
    with open(path, "r+b") as f:
        data = f.read()
        is64, _, entries = _dynamic_entries(data)
        for off, t, v in entries:
            if t == tag:
                f.seek(off)
                f.write(struct.pack("<qQ" if is64 else "<iI", tag if new_tag is None else new_tag,
                                    v if value is None else value))
                return
    raise BuildError(f"{path}: no dynamic entry with tag 0x{tag:x}")


def _finish(obj: LibSpec | ProgSpec, out: str, marker: str | None) -> None:
    if marker is not None:
        retag_needed(out, marker, DT_RUNPATH)
    if obj.nodeflib:
        _run(["patchelf", "--no-default-lib", out])
    if obj.patches or obj.truncate is not None:
        with open(out, "r+b") as f:
            for off, data in obj.patches:
                f.seek(off)
                f.write(data)
            if obj.truncate is not None:
                f.truncate(obj.truncate)


def _build_object(obj: LibSpec | ProgSpec, dest: str, scratch: str,
                  stubs: _Stubs, keys: list[tuple], marker: str | None) -> None:
    out = os.path.join(dest, obj.path)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    kind = "lib" if isinstance(obj, LibSpec) else ("prog" if obj.libc else "start")
    fd, src = tempfile.mkstemp(suffix=".c", dir=scratch)
    with os.fdopen(fd, "w") as f:
        f.write(c_source(obj.defines, obj.uses, kind, obj.m32))
    _run(_link_argv(obj, out, src, [stubs.paths[k] for k in keys]))
    _finish(obj, out, marker)


def _needs_marker(obj: LibSpec | ProgSpec) -> bool:
    """ld emits one of DT_RPATH/DT_RUNPATH; the RUNPATH of an object with both enters as a marker."""
    if obj.runpath is None or obj.rpath is None:
        return False
    if obj.runpath == "":
        raise BuildError(f"{obj.path}: an empty RUNPATH next to an RPATH is not supported")
    return True


def build_world(spec: WorldSpec, dest_dir: str, jobs: int | None = None) -> None:
    """Create every object, symlink, file and directory of `spec` under `dest_dir` (paths are relative)."""
    os.makedirs(dest_dir, exist_ok=True)
    for item in spec.files:
        full = os.path.join(dest_dir, item.path)
        if isinstance(item, Dir):
            os.makedirs(full, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(full) or ".", exist_ok=True)
        with open(full, "wb") as f:
            f.write(item.data)
        os.chmod(full, item.mode)
    scratch = tempfile.mkdtemp(prefix="ldsim-build-")
    try:
        stubs = _Stubs(scratch)
        plan = []
        for obj in spec.objects:
            keys = [stubs.key(n, _provider(spec, n), obj.m32) for n in obj.needed]
            marker = obj.runpath if _needs_marker(obj) else None
            if marker is not None:
                if marker in obj.needed:
                    raise BuildError(f"{obj.path}: RUNPATH string equals a DT_NEEDED name")
                keys.append(stubs.key(marker, None, obj.m32))
            for k in keys:
                stubs.path_for(k)
            plan.append((obj, keys, marker))
        with ThreadPoolExecutor(max_workers=jobs or min(8, (os.cpu_count() or 2) * 2)) as pool:
            list(pool.map(stubs.build, list(stubs.paths)))
            list(pool.map(lambda p: _build_object(p[0], dest_dir, scratch, stubs, p[1], p[2]), plan))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for link in spec.symlinks:
        full = os.path.join(dest_dir, link.path)
        os.makedirs(os.path.dirname(full) or ".", exist_ok=True)
        if os.path.lexists(full):
            os.unlink(full)
        os.symlink(link.target, full)
