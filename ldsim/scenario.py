"""Declarative loader worlds (`scenarios/*.toml`): load, run on a VirtualWorld, build with gcc, verify.

A scenario is one claim about the search rules with the smallest world that shows it:

    claim = "DT_RUNPATH is not inherited"
    rule = "glibc-loader.md §3.1"
    virtual_only = false        # true when the claim needs a cache or files the host cannot provide
    [run]      program = "{root}/bin/m"; mode = "exec"|"ldd"; env = {...}; cwd = "{root}"; cpu = "x86-64-v3"
    [run]      sysroot = true (the world is a whole root, `{root}` is "": the real loader runs under
               chroot(2) (done in the child, so no host program sees the environment), with the host's
               ld.so copied in; /etc/ld.so.preload and the system dirs are the
               world's own);
               uid = 65534 (the caller's ids, real = effective, gid the same: setpriv for the real loader);
               execute = true (run the program, not a trace: status, stderr, bindings and init order
               come from LD_DEBUG=libs,bindings of the run; the only view into secure mode, where the
               loader refuses to trace and ignores LD_DEBUG); ldso_args = ["--preload", "x.so"] (mode "ldd" only)
    [[object]] path = "bin/m"; kind = "program"|"lib"; soname; needed; rpath; runpath; flags = ["nodeflib"];
               symbols; class = 32; machine = "aarch64"; mode = 0o4755 (file mode)
               defines / uses = ["foo", "foo@@V2", "foo@V1", "weak:foo", "data:var", "weak,data:var"]
               (materialize's symbol specs); versions = [["V2", "V1"]] (V2 inherits V1); unique = ["uvar"]
               (defined data made STB_GNU_UNIQUE); libc = true (link libc: crt init sections, so
               "calling init" lines); cflags = ["-Wl,-Bsymbolic"]; pie = false
               The first object of a name provides the link-time stub of that DT_NEEDED name, so a decoy
               object (in a directory nothing searches) listed first makes a reference the real one lacks.
    [[symlink]] path; target        [[file]] path; text; mode        [[dir]] path
    [[cache]]  soname; path         (ld.so.cache entries: virtual worlds only)
    [expect]   status; loaded = [{name, path, step}]; missing = [names]; stderr = "substring" ("": empty);
               bindings = [{symbol, from, to, version}] (each must be among the run's bindings; `from`/`to`
               end a path: "bin/m", "lib/liba.so"); unbound = [{symbol, from}] (no such binding line: resolved
               at link time, or never); init_order = ["lib/libb.so", ...] (the exact order of
               "calling init" lines of the world's own objects)

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
    mode: int = 0o755
    defines: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    versions: tuple[tuple[str, str | None], ...] = ()
    unique: tuple[str, ...] = ()
    libc: bool = False
    cflags: tuple[str, ...] = ()
    pie: bool = True

    @property
    def needs_gcc(self) -> bool:
        """Symbols, versions, relocations and init sections: only a gcc-built world has them."""
        return bool(self.defines or self.uses or self.versions or self.unique or self.libc or self.cflags
                    or not self.pie)


@dataclass(frozen=True)
class Loaded:
    name: str
    path: str
    step: str | None = None


@dataclass(frozen=True)
class Bind:
    symbol: str
    ref: str  # `from`: the end of the referencing object's path
    definer: str  # `to`
    version: str | None = None


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
    uid: int | None = None
    sysroot: bool = False  # the world is a whole root: the real loader runs chrooted into it
    execute: bool = False
    ldso_args: tuple[str, ...] = ()
    bindings: list[Bind] = field(default_factory=list)
    unbound: list[tuple[str, str]] = field(default_factory=list)  # (symbol, from): no such binding
    init_order: list[str] | None = None

    @property
    def real_only(self) -> bool:
        """Needs gcc-built symbols: `scenario run` skips it, `verify` checks ldsim on the built files."""
        return any(o.needs_gcc for o in self.objects)

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
                      cwd=run.get("cwd", "{root}/"), cpu=run.get("cpu", "x86-64-v3"), uid=run.get("uid"),
                      sysroot=bool(run.get("sysroot", False)),
                      execute=bool(run.get("execute", False)), ldso_args=_tuple(run.get("ldso_args")))
        for o in d.get("object", []):
            unknown = set(o) - {"path", "kind", "soname", "needed", "rpath", "runpath", "flags", "symbols", "class",
                                "machine", "host", "mode", "defines", "uses", "versions", "unique", "libc",
                                "cflags", "pie"}
            if unknown:
                raise ScenarioError(f"object {o.get('path')}: unknown keys {sorted(unknown)}")
            sc.objects.append(Obj(o["path"], o.get("kind", "lib"), o.get("soname"), _tuple(o.get("needed")),
                                  o.get("rpath"), o.get("runpath"), _tuple(o.get("flags")),
                                  _tuple(o.get("symbols")), int(o.get("class", 64)), o.get("machine", "x86_64"),
                                  bool(o.get("host", False)), int(o.get("mode", 0o755)), _tuple(o.get("defines")),
                                  _tuple(o.get("uses")), tuple((v[0], v[1] if len(v) > 1 else None)
                                                               for v in o.get("versions", [])),
                                  _tuple(o.get("unique")), bool(o.get("libc", False)), _tuple(o.get("cflags")),
                                  bool(o.get("pie", True))))
        sc.symlinks = [(s["path"], s["target"]) for s in d.get("symlink", [])]
        sc.files = [(f["path"], f.get("text", "").encode(), int(f.get("mode", 0o644))) for f in d.get("file", [])]
        sc.dirs = [x["path"] for x in d.get("dir", [])]
        sc.cache = [(c["soname"], c["path"]) for c in d.get("cache", [])]
        sc.status = int(exp.get("status", 0))
        sc.loaded = [Loaded(x["name"], x["path"], x.get("step")) for x in exp.get("loaded", [])]
        sc.missing = list(exp.get("missing", []))
        sc.absent = list(exp.get("absent", []))
        sc.stderr = exp.get("stderr")
        sc.bindings = [Bind(b["symbol"], b["from"], b["to"], b.get("version")) for b in exp.get("bindings", [])]
        sc.init_order = list(exp["init_order"]) if "init_order" in exp else None
        sc.unbound = [(b["symbol"], b["from"]) for b in exp.get("unbound", [])]
    except KeyError as e:
        raise ScenarioError(f"missing key {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"bad value: {e}") from None
    for o in sc.objects:
        if o.machine not in MACHINES:
            raise ScenarioError(f"object {o.path}: unknown machine {o.machine!r}")
        if any(f not in FLAGS_1 for f in o.flags):
            raise ScenarioError(f"object {o.path}: unknown flag in {list(o.flags)}")
    if (sc.bindings or sc.unbound or sc.init_order is not None) and not sc.execute:
        raise ScenarioError("bindings and init_order need [run] execute = true")
    if sc.execute and (sc.loaded or sc.missing or sc.absent):
        raise ScenarioError("an executed scenario shows status and stderr, not loaded/missing/absent")
    if sc.ldso_args and sc.mode != "ldd":
        raise ScenarioError("ldso_args need [run] mode = \"ldd\"")
    return sc


def fmt(s: str, root: str) -> str:
    return s.replace("{root}", root)


# ------------------------------------------------------------------------------------------ virtual


def text_root(sc: Scenario, root: str) -> str:
    """What `{root}` stands for: the world's directory, or "" for a sysroot world (seen from inside)."""
    return "" if sc.sysroot else root


def virtual_world(sc: Scenario) -> VirtualWorld:
    base = text_root(sc, VROOT)  # a sysroot world sits at "/"
    w = VirtualWorld(cwd=fmt(sc.cwd, base) or "/")
    for d in sc.dirs:
        w.mkdir(base + "/" + d)
    for o in sc.objects:
        flags = 0
        for f in o.flags:
            flags |= FLAGS_1[f]
        spec = ElfSpec(needed=tuple(fmt(n, base) for n in o.needed), soname=o.soname,
                       rpath=None if o.rpath is None else fmt(o.rpath, base),
                       runpath=None if o.runpath is None else fmt(o.runpath, base), flags_1=flags,
                       symbols=o.symbols, program=o.kind == "program",
                       ei_class=EIClass.ELF32 if o.ei_class == 32 else EIClass.ELF64,
                       machine=MACHINES[o.machine] if o.machine != "x86_64" or o.ei_class == 64 else None)
        w.add_file(o.path if o.host else base + "/" + o.path, write_elf(spec), o.mode)
    for path, data, mode in sc.files:
        w.add_file(base + "/" + path, data, mode)
    for path, target in sc.symlinks:
        w.add_symlink(base + "/" + path, target)
    if sc.cache:
        from ldsim.ldcache import NewEntry, build_cache
        entries = [NewEntry(os.path.dirname(fmt(p, base)), os.path.basename(p), so, 0x0303)
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
    bindings: list[Bind] = field(default_factory=list)  # from an executed run (full paths)
    inits: list[str] = field(default_factory=list)  # "calling init" objects, in order


def _ldso_options(args: tuple[str, ...]) -> dict:
    """The few ld.so options a scenario may give, as `why.simulate` keywords."""
    kw, it = {}, iter(args)
    for a in it:
        if a == "--preload":
            kw["preload"] = next(it)
        elif a == "--library-path":
            kw["library_path"] = next(it)
        elif a == "--inhibit-cache":
            kw["inhibit_cache"] = True
        else:
            raise ScenarioError(f"ldso_args: {a} is not supported")
    return kw


def _credentials(sc: Scenario):
    from ldsim.config import Credentials
    return None if sc.uid is None else Credentials(sc.uid, sc.uid, sc.uid, sc.uid)


def run_sim(sc: Scenario, world, root: str, cpu, pid: int = 1000) -> Outcome:
    """ldsim in-process on `world` (virtual, or the host's with the world built under `root`)."""
    root = text_root(sc, root)
    from ldsim.config import Invocation
    from ldsim.glibc import DEBIAN_X86_64
    from ldsim.linkmap import FileCache, Kind
    from ldsim.why import simulate
    env = tuple((k, fmt(v, root)) for k, v in sc.env.items())
    inv = Invocation(env=env, cwd=world.cwd, pid=pid, cpu=cpu, profile=DEBIAN_X86_64, credentials=_credentials(sc))
    args = tuple(fmt(a, root) for a in sc.ldso_args)
    prog = fmt(sc.program, root)
    if sc.execute:
        from ldsim import events as ev
        from ldsim.ldso import run_exec, run_ldso
        inv = inv.replace(env=(("LD_DEBUG", "libs,bindings"),) + env)
        run = (run_ldso(world, inv, [*args, prog], FileCache(), RTLD) if sc.mode == "ldd"
               else run_exec(world, inv, [prog], FileCache()))
        events = run.process.result.events if run.process is not None else []
        return Outcome(run.status, [], [], run.text(2),
                       [Bind(e.name, e.ref, e.definer, e.version) for e in events if isinstance(e, ev.Binding)],
                       [e.name for e in events if isinstance(e, ev.CallingInit)])
    proc = simulate(world, inv, FileCache(), prog, direct=sc.mode == "ldd", **_ldso_options(args))
    loaded = [Loaded(m.names[0], m.name, m.found.step if m.found else None) for m in proc.objects
              if m.kind is Kind.LIB and not m.faked]
    missing = [m.names[0] for m in proc.objects if m.faked]
    err = "".join(getattr(e, "text", "") for e in proc.result.events if getattr(e, "stream", 0) == 2)
    return Outcome(proc.result.status or 0, loaded, missing, err)


def run_virtual(sc: Scenario, pid: int = 1000) -> Outcome:
    from ldsim.hwcaps import cpu_for_level
    return run_sim(sc, virtual_world(sc), VROOT, cpu_for_level(sc.cpu or "x86-64-v3"), pid)


def run_ldsim_on(sc: Scenario, root: str) -> Outcome:
    """ldsim on the files `build` made under `root` (the host's filesystem and CPU, like the real run)."""
    from ldsim.hwcaps import detect_host_cpu
    from ldsim.world import make_world
    if sc.sysroot:
        return run_sim(sc, make_world(root, "/"), root, detect_host_cpu())
    return run_sim(sc, make_world(None, fmt(sc.cwd, root) or "/"), root, detect_host_cpu())


def _ends(path: str, tail: str) -> bool:
    return path == tail or path.endswith("/" + tail.lstrip("/"))


def _check_bindings(sc: Scenario, got: Outcome, root: str) -> list[str]:
    bad = []
    for want in sc.bindings:
        ref, definer = fmt(want.ref, root), fmt(want.definer, root)
        mine = [b for b in got.bindings if b.symbol == want.symbol and _ends(b.ref, ref)]
        if not any(_ends(b.definer, definer) and (want.version is None or b.version == want.version) for b in mine):
            seen = ", ".join(b.definer + (f" [{b.version}]" if b.version else "") for b in mine) or "nothing"
            bad.append(f"{want.symbol} from {want.ref}: bound to {seen}, expected {want.definer}"
                       + (f" [{want.version}]" if want.version else ""))
    for symbol, ref in sc.unbound:
        for b in got.bindings:
            if b.symbol == symbol and _ends(b.ref, fmt(ref, root)):
                bad.append(f"{symbol} from {ref}: bound to {b.definer}, expected no binding at run time")
    return bad


def _check_inits(sc: Scenario, got: Outcome, root: str) -> list[str]:
    if sc.init_order is None:
        return []
    ours = [p for p in got.inits if p.startswith(root.rstrip("/") + "/")]
    want = [fmt(x, root) for x in sc.init_order]
    if len(ours) != len(want) or not all(_ends(p, w) for p, w in zip(ours, want)):
        rel = [p[len(root.rstrip("/")) + 1:] for p in ours]
        return [f"init order {rel}, expected {sc.init_order}"]
    return []


def check(sc: Scenario, got: Outcome, root: str = VROOT) -> list[str]:
    """The expectations `got` does not meet, one line each (empty: the claim holds)."""
    root = text_root(sc, root)
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
    if sc.stderr == "" and got.stderr != "":  # "" asks for silence, not for an empty substring
        bad.append(f"stderr is not empty: {got.stderr.strip()!r}")
    elif sc.stderr is not None and fmt(sc.stderr, root) not in got.stderr:
        bad.append(f"stderr lacks {sc.stderr!r}: {got.stderr.strip()!r}")
    return bad + _check_bindings(sc, got, root) + _check_inits(sc, got, root)


# ------------------------------------------------------------------------------------------ real


def world_spec(sc: Scenario, root: str):
    """The scenario as a `materialize.WorldSpec` under `root` (libc-free objects, gcc-built)."""
    from ldsim.materialize import Dir, File, LibSpec, ProgSpec, Symlink, WorldSpec
    root = text_root(sc, root)
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
                  runpath=None if o.runpath is None else fmt(o.runpath, root), defines=o.symbols + o.defines,
                  uses=o.uses, versions=o.versions, cflags=o.cflags,
                  nodeflib="nodeflib" in o.flags, m32=o.ei_class == 32, libc=o.libc, patches=patches)
        objs.append(ProgSpec(o.path, pie=o.pie, **kw) if o.kind == "program"
                    else LibSpec(o.path, soname=o.soname, **kw))
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


_BIND = re.compile(r"binding file (.*) \[\d+\] to (.*) \[\d+\]: (?:normal|protected) symbol `([^']*)'(?: \[(.*)\])?$")


def parse_run(stderr: str) -> tuple[list[Bind], list[str]]:
    """Bindings and "calling init" objects from the LD_DEBUG=libs,bindings lines of an executed run."""
    binds, inits = [], []
    for line in stderr.splitlines():
        body = line.split(":\t", 1)[1] if ":\t" in line else ""
        m = _BIND.match(body)
        if m:
            binds.append(Bind(m.group(3), m.group(1), m.group(2), m.group(4)))
        elif body.startswith("calling init: "):
            inits.append(body[len("calling init: "):])
    return binds, inits


def _real_argv(sc: Scenario, root: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """(argv, environment): as the caller (`setpriv` to the scenario's uid, which keeps the file's
    set-user-ID effect: the kernel decides AT_SECURE)."""
    text = text_root(sc, root)
    prog = fmt(sc.program, text)
    argv = [RTLD, *(fmt(a, text) for a in sc.ldso_args), prog] if sc.mode == "ldd" else [prog]
    if sc.sysroot:  # chrooted by `_enter` (no host program between: env and preloads reach PROG only)
        return argv, env
    if sc.uid is None:
        return argv, env
    return (["setpriv", f"--reuid={sc.uid}", f"--regid={sc.uid}", "--clear-groups", "env", "-i",
             *(f"{k}={v}" for k, v in env.items()), *argv], {"PATH": "/usr/bin:/bin"})


def _enter(sc: Scenario, root: str):
    """For a sysroot world, the child's last steps before exec: chroot, then the caller's ids."""
    if not sc.sysroot:
        return None

    def enter() -> None:
        os.chroot(root)
        os.chdir("/")
        if sc.uid is not None:
            os.setgroups([])
            os.setgid(sc.uid)
            os.setuid(sc.uid)
    return enter


def run_real(sc: Scenario, root: str) -> Outcome:
    """Traced (LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs: what was loaded, by which step), or with
    `execute` run for real under LD_DEBUG=libs,bindings (status, stderr, bindings, init order; in secure
    mode the loader ignores LD_DEBUG and refuses to trace, so status and stderr are what is seen)."""
    env = {k: fmt(v, text_root(sc, root)) for k, v in sc.env.items()}
    cwd = "/" if sc.sysroot else fmt(sc.cwd, root) or "/"
    debug = {"LD_DEBUG": "libs,bindings"} if sc.execute else {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs"}
    argv, penv = _real_argv(sc, root, {**debug, **env})
    p = subprocess.run(argv, env=penv, cwd=cwd, capture_output=True, timeout=60, preexec_fn=_enter(sc, root))
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if sc.execute:
        return Outcome(p.returncode, [], [], err, *parse_run(err))
    return Outcome(p.returncode, *parse_real(out, err), err)


def _make_unique(path: str, names: tuple[str, ...]) -> None:
    """Rebind defined dynamic symbols to STB_GNU_UNIQUE (what g++ emits for inline statics; C cannot)."""
    from elftools.elf.elffile import ELFFile
    with open(path, "r+b") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        todo = []
        for i, sym in enumerate(dynsym.iter_symbols()):
            if sym.name in names and sym["st_shndx"] != "SHN_UNDEF":
                todo.append((dynsym["sh_offset"] + i * dynsym["sh_entsize"] + 4, sym["st_info"]["type"]))
        for off, typ in todo:
            f.seek(off)
            f.write(bytes([(10 << 4) | (1 if typ == "STT_OBJECT" else 2)]))  # STB_GNU_UNIQUE
        if len(todo) != len(names):
            raise ScenarioError(f"{path}: unique symbols {list(names)} not all defined")


def build(sc: Scenario, root: str) -> None:
    from ldsim.materialize import build_world
    build_world(world_spec(sc, root), root)
    os.chmod(root, 0o755)  # a caller other than root (`uid`) must reach the world
    if sc.sysroot:  # the loader itself, at the programs' PT_INTERP (libc-free worlds need nothing else)
        import shutil
        os.makedirs(os.path.join(root, "lib64"), exist_ok=True)
        shutil.copy2(os.path.realpath(RTLD), os.path.join(root, RTLD.lstrip("/")))
    for o in sc.objects:
        if o.host:
            continue
        if o.unique:
            _make_unique(os.path.join(root, o.path), o.unique)
        if o.mode != 0o755:
            os.chmod(os.path.join(root, o.path), o.mode)
