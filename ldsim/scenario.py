"""Declarative loader worlds (`scenarios/*.toml`): load, run on a VirtualWorld, build with gcc, verify.

A scenario is one claim about the search rules with the smallest world that shows it:

    claim = "DT_RUNPATH is not inherited"
    rule = "glibc-loader.md §3.1"
    virtual_only = false        # true when the claim needs a cache or files the host cannot provide
    [run]      program = "{root}/bin/m"; mode = "exec"|"ldd"; env = {...}; cwd = "{root}"; cpu = "x86-64-v3"
    [[object]] path = "bin/m"; kind = "program"|"lib"; soname; needed; rpath; runpath; flags = ["nodeflib"];
               symbols; class = 32; machine = "aarch64"
    [[symlink]] path; target        [[file]] path; text; mode        [[dir]] path
    [[cache]]  soname; path         (ld.so.cache entries: virtual worlds only)
    [expect]   status; loaded = [{name, path, step}]; missing = [names]; stderr = "substring"

Paths of objects are relative to the world's root.  `{root}` in strings is VROOT ("/world") in a virtual
world and the build directory in a materialised one (so that no object lands in a system directory).  Steps are `linkmap.Found.step` values: RPATH, RUNPATH,
LD_LIBRARY_PATH, --library-path, cache, system search path, direct.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from dataclasses import dataclass, field

from ldsim.elf import EIClass, EMachine
from ldsim.elfwrite import ElfSpec, write_elf
from ldsim.virtual import VirtualWorld

MACHINES = {"x86_64": EMachine.X86_64, "i386": 3, "aarch64": 183, "arm": 40, "riscv": 243}
FLAGS_1 = {"nodeflib": 0x800, "now": 0x1, "nodelete": 0x8, "origin": 0x80, "noopen": 0x40}
RTLD = "/lib64/ld-linux-x86-64.so.2"
VROOT = "/world"


class ScenarioError(Exception):
    """A scenario file that cannot be read or understood (one line)."""


@dataclass(frozen=True)
class Obj:
    path: str
    kind: str = "lib"
    soname: str | None = None
    needed: tuple[str, ...] = ()
    rpath: str | None = None
    runpath: str | None = None
    flags: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    ei_class: int = 64
    machine: str = "x86_64"
    host: bool = False  # stands for a file the host has at this absolute path: virtual only, never built


@dataclass(frozen=True)
class Loaded:
    name: str
    path: str
    step: str | None = None


@dataclass
class Scenario:
    file: str
    claim: str
    rule: str = ""
    virtual_only: bool = False
    program: str = ""
    mode: str = "exec"
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "{root}/"
    cpu: str | None = "x86-64-v3"
    objects: list[Obj] = field(default_factory=list)
    symlinks: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, bytes, int]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    cache: list[tuple[str, str]] = field(default_factory=list)
    status: int = 0
    loaded: list[Loaded] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # paths that must not be loaded
    stderr: str | None = None

    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(self.file))[0]


def _tuple(v) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


def load(path: str) -> Scenario:
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except OSError as e:
        raise ScenarioError(e.strerror or str(e)) from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"not valid TOML: {e}") from None
    try:
        run, exp = d.get("run", {}), d.get("expect", {})
        sc = Scenario(file=path, claim=d["claim"], rule=d.get("rule", ""), virtual_only=d.get("virtual_only", False),
                      program=run["program"], mode=run.get("mode", "exec"), env=dict(run.get("env", {})),
                      cwd=run.get("cwd", "{root}/"), cpu=run.get("cpu", "x86-64-v3"))
        for o in d.get("object", []):
            unknown = set(o) - {"path", "kind", "soname", "needed", "rpath", "runpath", "flags", "symbols", "class",
                                "machine", "host"}
            if unknown:
                raise ScenarioError(f"object {o.get('path')}: unknown keys {sorted(unknown)}")
            sc.objects.append(Obj(o["path"], o.get("kind", "lib"), o.get("soname"), _tuple(o.get("needed")),
                                  o.get("rpath"), o.get("runpath"), _tuple(o.get("flags")),
                                  _tuple(o.get("symbols")), int(o.get("class", 64)), o.get("machine", "x86_64"),
                                  bool(o.get("host", False))))
        sc.symlinks = [(s["path"], s["target"]) for s in d.get("symlink", [])]
        sc.files = [(f["path"], f.get("text", "").encode(), int(f.get("mode", 0o644))) for f in d.get("file", [])]
        sc.dirs = [x["path"] for x in d.get("dir", [])]
        sc.cache = [(c["soname"], c["path"]) for c in d.get("cache", [])]
        sc.status = int(exp.get("status", 0))
        sc.loaded = [Loaded(x["name"], x["path"], x.get("step")) for x in exp.get("loaded", [])]
        sc.missing = list(exp.get("missing", []))
        sc.absent = list(exp.get("absent", []))
        sc.stderr = exp.get("stderr")
    except KeyError as e:
        raise ScenarioError(f"missing key {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"bad value: {e}") from None
    for o in sc.objects:
        if o.machine not in MACHINES:
            raise ScenarioError(f"object {o.path}: unknown machine {o.machine!r}")
        if any(f not in FLAGS_1 for f in o.flags):
            raise ScenarioError(f"object {o.path}: unknown flag in {list(o.flags)}")
    return sc


def fmt(s: str, root: str) -> str:
    return s.replace("{root}", root)


# ------------------------------------------------------------------------------------------ virtual


def virtual_world(sc: Scenario) -> VirtualWorld:
    w = VirtualWorld(cwd=fmt(sc.cwd, VROOT))
    for d in sc.dirs:
        w.mkdir(VROOT + "/" + d)
    for o in sc.objects:
        flags = 0
        for f in o.flags:
            flags |= FLAGS_1[f]
        spec = ElfSpec(needed=tuple(fmt(n, VROOT) for n in o.needed), soname=o.soname,
                       rpath=None if o.rpath is None else fmt(o.rpath, VROOT),
                       runpath=None if o.runpath is None else fmt(o.runpath, VROOT), flags_1=flags,
                       symbols=o.symbols, program=o.kind == "program",
                       ei_class=EIClass.ELF32 if o.ei_class == 32 else EIClass.ELF64,
                       machine=MACHINES[o.machine] if o.machine != "x86_64" or o.ei_class == 64 else None)
        w.add_file(o.path if o.host else VROOT + "/" + o.path, write_elf(spec), 0o755)
    for path, data, mode in sc.files:
        w.add_file(VROOT + "/" + path, data, mode)
    for path, target in sc.symlinks:
        w.add_symlink(VROOT + "/" + path, target)
    if sc.cache:
        from ldsim.ldcache import NewEntry, build_cache
        entries = [NewEntry(os.path.dirname(fmt(p, VROOT)), os.path.basename(p), so, 0x0303)
                   for so, p in sc.cache]
        w.add_file("/etc/ld.so.cache", build_cache(entries), 0o644)
    else:
        w.add_file("/etc/ld.so.cache", b"", 0o644)  # an empty (rejected) cache: lookups fail quietly
    return w


@dataclass
class Outcome:
    status: int
    loaded: list[Loaded]
    missing: list[str]
    stderr: str


def run_virtual(sc: Scenario, pid: int = 1000) -> Outcome:
    from ldsim.config import Invocation
    from ldsim.glibc import DEBIAN_X86_64
    from ldsim.hwcaps import cpu_for_level
    from ldsim.linkmap import FileCache, Kind
    from ldsim.why import simulate
    w = virtual_world(sc)
    inv = Invocation(env=tuple((k, fmt(v, VROOT)) for k, v in sc.env.items()), cwd=w.cwd, pid=pid,
                     cpu=cpu_for_level(sc.cpu or "x86-64-v3"), profile=DEBIAN_X86_64)
    proc = simulate(w, inv, FileCache(), fmt(sc.program, VROOT), direct=sc.mode == "ldd")
    loaded = [Loaded(m.names[0], m.name, m.found.step if m.found else None) for m in proc.objects
              if m.kind is Kind.LIB and not m.faked]
    missing = [m.names[0] for m in proc.objects if m.faked]
    err = "".join(getattr(e, "text", "") for e in proc.result.events if getattr(e, "stream", 0) == 2)
    return Outcome(proc.result.status or 0, loaded, missing, err)


def check(sc: Scenario, got: Outcome, root: str = VROOT) -> list[str]:
    """The expectations `got` does not meet, one line each (empty: the claim holds)."""
    bad: list[str] = []
    if got.status != sc.status:
        bad.append(f"status {got.status}, expected {sc.status}")
    for want in sc.loaded:
        path = fmt(want.path, root)
        hits = [g for g in got.loaded if g.name == fmt(want.name, root)]
        if not hits:
            bad.append(f"{want.name}: not loaded, expected {path}")
        elif not any(g.path == path for g in hits):
            bad.append(f"{want.name}: loaded from {hits[0].path}, expected {path}")
        elif want.step and not any(g.path == path and g.step == want.step for g in hits):
            bad.append(f"{want.name}: found by {hits[0].step}, expected {want.step}")
    if sorted(got.missing) != sorted(fmt(m, root) for m in sc.missing):
        bad.append(f"missing {sorted(got.missing)}, expected {sorted(sc.missing)}")
    for path in sc.absent:
        if any(g.path == fmt(path, root) for g in got.loaded):
            bad.append(f"{fmt(path, root)} is loaded, expected not")
    if sc.stderr is not None and fmt(sc.stderr, root) not in got.stderr:
        bad.append(f"stderr lacks {sc.stderr!r}: {got.stderr.strip()!r}")
    return bad


# ------------------------------------------------------------------------------------------ real


def world_spec(sc: Scenario, root: str):
    """The scenario as a `materialize.WorldSpec` under `root` (libc-free objects, gcc-built)."""
    from ldsim.materialize import Dir, File, LibSpec, ProgSpec, Symlink, WorldSpec
    objs = []
    for o in sc.objects:
        if o.host:
            continue
        if o.flags and set(o.flags) - {"nodeflib"}:
            raise ScenarioError(f"object {o.path}: only the nodeflib flag can be built")
        patches = ()
        if o.machine != "x86_64":
            patches = ((18, int(MACHINES[o.machine]).to_bytes(2, "little")),)
        kw = dict(needed=tuple(fmt(n, root) for n in o.needed), rpath=None if o.rpath is None else fmt(o.rpath, root),
                  runpath=None if o.runpath is None else fmt(o.runpath, root), defines=o.symbols,
                  nodeflib="nodeflib" in o.flags, m32=o.ei_class == 32, libc=False, patches=patches)
        objs.append(ProgSpec(o.path, **kw) if o.kind == "program" else LibSpec(o.path, soname=o.soname, **kw))
    files = tuple(File(p, d, m) for p, d, m in sc.files) + tuple(Dir(d) for d in sc.dirs)
    return WorldSpec(tuple(objs), tuple(Symlink(p, t) for p, t in sc.symlinks), files)


_LIST = re.compile(r"^\t(\S.*?) => (.*?)(?: \(0x[0-9a-f]+\))?$|^\t(\S.*?) \(0x[0-9a-f]+\)$")


def parse_real(stdout: str, stderr: str) -> tuple[list[Loaded], list[str]]:
    """The listing (stdout) and, from LD_DEBUG=libs (stderr), the list each object was found in."""
    steps: dict[str, str] = {}
    label, last_try = None, None
    for line in stderr.splitlines():
        body = line.split(":\t", 1)[1] if ":\t" in line else None
        if body is None:
            continue
        if body.startswith("find library="):
            label, last_try = None, None
        elif body.startswith(" search path="):
            m = re.search(r"\t\t\((RPATH|RUNPATH|LD_LIBRARY_PATH|--library-path|system search path)", body)
            label = m.group(1) if m else None
        elif body.startswith(" search cache="):
            label = "cache"
        elif body.startswith("  trying file="):
            last_try = body[len("  trying file="):]
            steps[last_try] = label or "?"
    loaded, missing = [], []
    for line in stdout.splitlines():
        m = _LIST.match(line)
        if not m:
            continue
        name, path = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(3))
        if name.startswith("linux-vdso") or "ld-linux" in name:
            continue
        if path == "not found":
            missing.append(name)
        else:
            loaded.append(Loaded(name, path, steps.get(path, "direct" if "/" in name else "?")))
    return loaded, missing


def run_real(sc: Scenario, root: str) -> Outcome:
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs", **{k: fmt(v, root) for k, v in sc.env.items()}}
    prog = fmt(sc.program, root)
    argv = [RTLD, prog] if sc.mode == "ldd" else [prog]
    p = subprocess.run(argv, env=env, cwd=fmt(sc.cwd, root) or "/", capture_output=True, timeout=60)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    loaded, missing = parse_real(out, err)
    return Outcome(p.returncode, loaded, missing, err)


def build(sc: Scenario, root: str) -> None:
    from ldsim.materialize import build_world
    build_world(world_spec(sc, root), root)
