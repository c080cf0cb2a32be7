"""Hypothesis strategies that generate loader worlds, usable by anyone testing a loader model.

A generated world is an `ldsim.scenario.Scenario` (without expectations): a program `bin/prog`, a few
libc-free libraries placed in zero, one or two directories (shadowing), DT_NEEDED graphs with cycles and
missing names, DT_RPATH/DT_RUNPATH lists mixing `$ORIGIN`-relative, absolute and symlinked directories,
sonames that differ from file names or are absent, the odd 32-bit copy, and LD_LIBRARY_PATH.  The same
value runs on a `VirtualWorld` (`scenario.virtual_world`) or is built with gcc (`build_batch`, many worlds
per compiler batch).  Only hypothesis is imported at module level; gcc is needed only to build.

    from hypothesis import given
    from ldsim.testing import worlds
    @given(worlds())
    def test_something(sc): ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import strategies as st

from ldsim.scenario import Obj, Scenario

DIRS = ("lib", "lib2", "opt/l", "deep/x")
LINKED = ("ln",)  # ln -> lib: a directory reached through a symlink
ELEMENTS = tuple(f"$ORIGIN/../{d}" for d in (*DIRS, *DIRS[:2], *LINKED, "none")) + ("$ORIGIN",) + tuple(
    f"{{root}}/{d}" for d in (*DIRS, *LINKED))


@st.composite
def path_list(draw, allow_none: bool = True) -> str | None:
    """A DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH value: 1-3 elements, or None (the tag is absent)."""
    if allow_none and draw(st.booleans()):
        return None
    return ":".join(draw(st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=3)))


@st.composite
def worlds(draw, max_libs: int = 5, wrong_class: bool = True) -> Scenario:
    """One loader world (see the module docstring)."""
    n = draw(st.integers(1, max_libs))
    names = [f"libw{i}.so" for i in range(n)]
    pool = names * 4 + ["libabsent.so"]  # a missing name now and then
    objects: list[Obj] = []
    for i, name in enumerate(names):
        homes = draw(st.lists(st.sampled_from(DIRS[:2] * 3 + DIRS[2:]), min_size=0 if i % 3 == 2 else 1,
                              max_size=2, unique=True))
        needed = tuple(x for x in draw(st.lists(st.sampled_from(pool), max_size=3, unique=True)) if x != name)
        soname = draw(st.sampled_from([name, name, None]))
        rpath, runpath = draw(path_list()), draw(path_list())
        bad_first = wrong_class and len(homes) == 2 and draw(st.integers(0, 4)) == 0
        for k, home in enumerate(homes):
            cls = 32 if bad_first and k == 0 else 64
            objects.append(Obj(f"{home}/{name}", "lib", soname, needed, rpath, runpath, ei_class=cls,
                               machine="i386" if cls == 32 else "x86_64"))
    prog_needed = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)))
    prog_rpath = draw(path_list())
    prog_runpath = draw(path_list(allow_none=prog_rpath is not None))
    objects.insert(0, Obj("bin/prog", "program", None, prog_needed, prog_rpath, prog_runpath))
    env = {}
    llp = draw(path_list())
    if llp is not None:
        env["LD_LIBRARY_PATH"] = llp
    return Scenario(file="generated.toml", claim="generated", program="{root}/bin/prog", mode="ldd", env=env,
                    cwd="{root}", objects=objects, symlinks=[("ln", "lib")], dirs=list(DIRS))


def with_unrelated_dir(sc: Scenario, where: str = "end") -> Scenario:
    """The same world with an extra existing, empty directory in LD_LIBRARY_PATH."""
    import copy
    out = copy.deepcopy(sc)
    out.dirs.append("unrelated")
    llp = out.env.get("LD_LIBRARY_PATH")
    extra = "{root}/unrelated"
    out.env["LD_LIBRARY_PATH"] = extra if not llp else (f"{llp}:{extra}" if where == "end" else f"{extra}:{llp}")
    return out


def build_batch(scs: list[Scenario], base: str) -> list[str]:
    """Build many worlds with one compiler batch; world i lives in BASE/wI.  Returns the roots."""
    from dataclasses import replace

    from ldsim.materialize import WorldSpec, build_world
    from ldsim.scenario import world_spec
    roots, objs, links, files = [], [], [], []
    for i, sc in enumerate(scs):
        root = os.path.join(base, f"w{i}")
        roots.append(root)
        spec = world_spec(sc, root)
        objs += [replace(o, path=f"w{i}/{o.path}") for o in spec.objects]
        links += [replace(s, path=f"w{i}/{s.path}") for s in spec.symlinks]
        files += [replace(f, path=f"w{i}/{f.path}") for f in spec.files]
    build_world(WorldSpec(tuple(objs), tuple(links), tuple(files)), base)
    return roots


# ------------------------------------------------------------------------------------------ symbols

SYMBOLS = ("s0", "s1", "s2", "s3", "s4", "s5")
VERSIONS = ("V1", "V2", "V3")


def _one_in(draw, n: int) -> bool:
    """True about once in n draws (a middle value: hypothesis favours the bounds, and shrinks to False)."""
    return draw(st.integers(1, n)) == n // 2 + 1


@dataclass(frozen=True)
class BindingWorld:
    """A world about symbols: `spec` (a `materialize.WorldSpec`) holds `bin/prog` and libraries in `lib/`
    (found through the program's DT_RPATH `$ORIGIN/../lib`); libraries in `link/` are the link-time copies
    the program and libraries were linked against (a newer release), never found at run time."""

    spec: object
    libc: bool

    def describe(self) -> str:
        return "\n".join(f"  {o.path}: needed={o.needed} defines={o.defines} uses={o.uses} versions={o.versions}"
                         f" cflags={o.cflags}" for o in self.spec.objects)


@st.composite
def _definitions(draw, kinds: dict[str, str], allow_protected: bool) -> tuple[str, ...]:
    """Definitions of some of the world's symbols: global or weak, unversioned, `@@V`, hidden `@V`, both."""
    out: list[str] = []
    for name in draw(st.lists(st.sampled_from(SYMBOLS), max_size=4, unique=True)):
        attrs = [kinds[name]] if kinds[name] != "func" else []
        if kinds[name] == "data" and _one_in(draw, 6):
            attrs.append("wide")
        if _one_in(draw, 4):
            attrs.append("weak")
        shape = draw(st.sampled_from(["plain"] * 5 + ["default"] * 4 + ["hidden+default"] * 2 + ["hidden"]))
        if shape == "plain" and allow_protected and _one_in(draw, 8):
            attrs.append("protected")
        pre = ",".join(attrs) + ":" if attrs else ""
        v1, v2 = draw(st.lists(st.sampled_from(VERSIONS), min_size=2, max_size=2, unique=True))
        if shape == "plain":
            out.append(f"{pre}{name}")
        elif shape == "default":
            out.append(f"{pre}{name}@@{v1}")
        elif shape == "hidden":
            out.append(f"{pre}{name}@{v1}")
        else:
            out += [f"{pre}{name}@{v1}", f"{pre}{name}@@{v2}"]
    return tuple(out)


@st.composite
def _parents(draw) -> tuple[tuple[str, str | None], ...]:
    return tuple(draw(st.lists(st.sampled_from([("V2", "V1"), ("V3", "V2"), ("V3", "V1")]), max_size=1)))


def _older(draw, defines: tuple[str, ...], gone: str | None = None) -> tuple[str, ...]:
    """The run-time release of a library linked as `defines`: some definitions gone or at an older version;
    no definition at version `gone` (the version node is gone too)."""
    from ldsim.materialize import parse_symbol
    out = []
    for entry in defines:
        change = draw(st.sampled_from(["keep"] * 3 + ["drop", "older"]))
        name, ver, _ = parse_symbol(entry)
        if ver is not None and ver == gone:
            change = draw(st.sampled_from(["drop", "older"])) if gone != "V1" else "drop"
        if change == "drop":
            continue
        if entry.startswith("data") and _one_in(draw, 4):  # the object grew or shrank
            attrs, _, rest = entry.partition(":")
            entry = ",".join(sorted(set(attrs.split(",")) ^ {"wide"})) + ":" + rest
        if change == "older" and ver is not None and ver != "V1":
            entry = entry.replace(f"@{ver}", "@V1") if f"@@{ver}" not in entry else entry.replace(f"@@{ver}", "@@V1")
        out.append(entry)
    default_seen: set[str] = set()
    kept = []
    for entry in dict.fromkeys(out):  # an older release may collapse two versions into one
        name, ver, default = parse_symbol(entry)
        if (name, ver) in {parse_symbol(e)[:2] for e in kept} or (default and name in default_seen):
            continue
        default_seen |= {name} if default else set()
        kept.append(entry)
    return tuple(kept)


@st.composite
def _uses(draw, kinds: dict[str, str], own: tuple[str, ...], linked: list[tuple[str, ...]],
          own_versions: tuple = (), most: int = 4) -> tuple[str, ...]:
    """References: some of the world's symbols (and `absent`, defined nowhere), weak now and then, and now
    and then bound to a version the link-time library that ld binds the name to defines: the first of
    `linked` (in DT_NEEDED order) defining the name, whatever its versions (a version only a later one has
    leaves the reference unresolved, which ld refuses for data: "unresolvable R_X86_64_REX_GOTPCRELX
    relocation").  Never one of the object's own version nodes: GNU ld then writes a corrupt dynamic
    symbol and an R_X86_64_NONE entry."""
    from ldsim.materialize import parse_symbol
    mine = {parse_symbol(e)[0] for e in own}
    mine_v = {parse_symbol(e)[1] for e in own} | {v for pair in own_versions for v in pair}
    first: dict[str, tuple[str, ...]] = {}  # name -> the definitions of the library ld binds it to
    for defs in linked:
        for e in defs:
            first.setdefault(parse_symbol(e)[0], defs)
    pinnable = sorted({(n, v) for n, defs in first.items() for e in defs for m, v, _ in [parse_symbol(e)]
                       if m == n and v is not None and n not in mine and v not in mine_v})
    out: list[str] = []
    for name in draw(st.lists(st.sampled_from(SYMBOLS + ("absent",)), max_size=most, unique=True)):
        attrs = [kinds[name]] if kinds[name] != "func" else []
        if _one_in(draw, 7):
            attrs.append("weak")
        pre = ",".join(attrs) + ":" if attrs else ""
        vers = [v for n, v in pinnable if n == name]
        if vers and _one_in(draw, 3):
            out.append(f"{pre}{name}@{draw(st.sampled_from(vers))}")
        else:
            out.append(f"{pre}{name}")
    return tuple(out)


def _resolvable(uses: tuple[str, ...], providers: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The program's references that the link resolves: ld binds a reference to the first of `providers`
    (the program's own definitions, then its DT_NEEDED stubs in order) that defines the name, whatever the
    version, so the reference stays unresolved when that one lacks the version asked for.  gcc links the
    program with `--unresolved-symbols=ignore-all`, which turns an unresolved reference into an
    R_X86_64_NONE entry (a PLT one makes the real loader fail lazily with "unexpected PLT reloc type 0x00":
    see tests/property/test_binding_worlds.py); missing symbols reach the program through `link/` instead.
    ld also refuses a copy relocation against protected data."""
    from ldsim.materialize import parse_symbol, symbol_attrs
    out = []
    for use in uses:
        name, ver, _ = parse_symbol(use)
        for defs in providers:
            mine = [(parse_symbol(e), symbol_attrs(e)) for e in defs if parse_symbol(e)[0] == name]
            if not mine:
                continue
            ok = any(v == ver or (ver is None and (v is None or d)) for (_, v, d), _ in mine)
            if ok and not any({"protected", "data"} <= attrs for _, attrs in mine):
                out.append(use)
            break
    return tuple(out)


@st.composite
def binding_worlds(draw, max_libs: int = 4) -> BindingWorld:
    """One world about symbol binding: libraries and a program that define functions, `int` objects (now and
    then 32-byte arrays) and thread-local `int`s (global and weak, unversioned, default `@@V` and hidden `@V` versions with parents, the odd protected
    one), reference each other's (interposition: the first definition in the global scope wins; weak
    before strong; copy relocations of the program's data references), reference `absent` (defined
    nowhere) and, through a library linked against a newer release (`link/`) than the one found at run time,
    versions and symbols that no longer exist.  Libraries are linked with `-Bsymbolic` or `-z now` now and
    then, the program with `--export-dynamic` (so it interposes).  libc-linked or libc-free, per world."""
    from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, parse_symbol
    libc = draw(st.booleans())
    kinds = {name: draw(st.sampled_from(["func", "func", "data", "tls"])) for name in SYMBOLS}
    kinds["absent"] = draw(st.sampled_from(["func", "data", "tls"]))
    n = draw(st.integers(1, max_libs))
    names = [f"libb{i}.so" for i in range(n)]
    runtime: dict[str, tuple[str, ...]] = {}
    linked: dict[str, tuple[str, ...]] = {}
    parents: dict[str, tuple] = {}
    link_parents: dict[str, tuple] = {}
    for name in names:
        linked[name] = draw(_definitions(kinds, allow_protected=True))
        parents[name] = link_parents[name] = draw(_parents())
        if _one_in(draw, 3):
            present = sorted({parse_symbol(e)[1] for e in linked[name]} - {None})
            gone = draw(st.sampled_from([None] + present * 2))
            runtime[name] = _older(draw, linked[name], gone)
            parents[name] = tuple(p for p in parents[name] if gone not in p)
        else:
            runtime[name] = linked[name]
    objects: list = []
    for name in names:
        if (runtime[name], parents[name]) != (linked[name], link_parents[name]):
            objects.append(LibSpec(f"link/{name}", soname=name, defines=linked[name],
                                   versions=link_parents[name], libc=libc))
    for i, name in enumerate(names):
        needed = tuple(draw(st.lists(st.sampled_from([x for x in names if x != name] or ["libb0.so"]),
                                     max_size=2, unique=True)))
        needed = tuple(x for x in needed if x != name) + (("libabsent.so",) if _one_in(draw, 40) else ())
        cflags = draw(st.sampled_from([(), (), (), (), ("-Wl,-Bsymbolic",), ("-Wl,-z,now",)]))
        uses = draw(_uses(kinds, runtime[name], [linked[x] for x in needed if x in linked], parents[name]))
        objects.append(LibSpec(f"lib/{name}", soname=name, needed=needed, defines=runtime[name], uses=uses,
                               versions=parents[name], libc=libc, cflags=cflags))
    prog_needed = tuple(draw(st.permutations(names)))[:draw(st.integers(1, n))]
    prog_defines = tuple(e for e in draw(_definitions(kinds, allow_protected=False)) if "@" not in e)
    prog_uses = _resolvable(draw(_uses(kinds, prog_defines, [linked[x] for x in prog_needed], most=7)),
                            [prog_defines] + [linked[x] for x in prog_needed])
    export = draw(st.booleans()) and bool(prog_defines)
    objects.insert(0, ProgSpec("bin/prog", needed=prog_needed, rpath="$ORIGIN/../lib", defines=prog_defines,
                               uses=prog_uses, libc=libc, cflags=("-rdynamic",) if export else ()))
    return BindingWorld(WorldSpec(tuple(objects)), libc)


def build_binding_batch(bws: list[BindingWorld], base: str) -> list[str]:
    """Build many binding worlds, several at a time; world i lives in BASE/wI.  Returns the roots.  (Each
    world has its own stubs: the same soname defines different symbols in different worlds.)"""
    from concurrent.futures import ThreadPoolExecutor

    from ldsim.materialize import BuildError, build_world
    roots = [os.path.join(base, f"w{i}") for i in range(len(bws))]

    def build(i: int) -> None:
        try:
            build_world(bws[i].spec, roots[i], jobs=2)
        except BuildError as e:
            raise BuildError(f"{e}\nworld:\n{bws[i].describe()}") from None

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(build, range(len(bws))))
    return roots


# ------------------------------------------------------------------------------------ search worlds

SEARCH_DIRS = ("lib", "lib2", "opt/l", "lib/x86_64-linux-gnu", "lib/glibc-hwcaps/x86-64-v2",
               "lib/glibc-hwcaps/x86-64-v3", "lib/glibc-hwcaps/x86-64-v4", "lib/tls", "lib/x86_64",
               "lib/glibc-hwcaps/extra", "lib/tls/x86_64")
SEARCH_ELEMENTS = ("$ORIGIN/../lib", "${ORIGIN}/../lib2", "$ORIGIN/../$LIB", "${ORIGIN}/../lib/$PLATFORM",
                   "$ORIGIN", "$ORIGIN/../ln", "{root}/lib", "{root}/opt/l", "{root}/lib/x86_64",
                   "lib", "../lib2", "opt/l", "", "$ORIGIN/../none", "$ORIGIN/$PLATFORM/..", "{root}/${LIB}",
                   "{root}/lib/", "{root}//lib2", "./lib", ".", "$ORIGIN/.", "$ORIGINX/../lib", "${ORIGIN",
                   "$ORIGIN/../${PLATFORM}", "{root}/ln/", "$", "{root}/lib/$LIBX",
                   "{root}/bin/prog", "$ORIGIN/../loop")  # ENOTDIR, ELOOP: open_path goes on past both
CWDS = ("", "bin", "lib", "opt")
SYSTEM_NAMES = ("libz.so.1", "libc.so.6", "ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/libz.so.1")


@dataclass(frozen=True)
class SearchRun:
    """One command against a search world: `mode` is `trace` (`ld.so ARGS PROG` with
    LD_TRACE_LOADED_OBJECTS=1), `ldd` or `exec` (PROG executed through `via`, a symlink in another
    directory, with LD_TRACE_LOADED_OBJECTS=1).  Strings may hold `{root}`; `cwd` is relative to it."""

    mode: str
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    cwd: str = ""
    via: str = "{root}/bin/prog"
    traced: bool = True  # exec mode only: False runs the (libc-free, exiting) program for real


@dataclass(frozen=True)
class SearchWorld:
    """A world about finding libraries: `objects` (materialize specs whose strings may hold `{root}`),
    `symlinks` (path, target) and the `runs` to compare."""

    objects: tuple
    symlinks: tuple[tuple[str, str], ...]
    runs: tuple[SearchRun, ...]
    decoys: tuple[tuple[str, str], ...] = ()  # (path, kind): text, empty, dir, or short (an ELF header cut)

    def spec(self, root: str):
        """The world as a `materialize.WorldSpec` under `root`."""
        from dataclasses import replace

        from ldsim.materialize import Dir, File, Symlink, WorldSpec
        sub = lambda s: None if s is None else s.replace("{root}", root)  # noqa: E731
        objs = tuple(replace(o, needed=tuple(sub(n) for n in o.needed), rpath=sub(o.rpath),
                             runpath=sub(o.runpath), cflags=tuple(sub(c) for c in o.cflags))
                     for o in self.objects)
        files = tuple(Dir(p) if kind == "dir" else File(p, _DECOY_BYTES[kind]) for p, kind in self.decoys)
        return WorldSpec(objs, tuple(Symlink(p, t) for p, t in self.symlinks),
                         tuple(Dir(d) for d in (*SEARCH_DIRS, "alt", "opt")) + files)

    def describe(self) -> str:
        lines = [f"  {type(o).__name__} {o.path}: soname={getattr(o, 'soname', None)} needed={o.needed} "
                 f"rpath={o.rpath} runpath={o.runpath} defines={o.defines} uses={o.uses} "
                 f"nodeflib={o.nodeflib} cflags={o.cflags}" for o in self.objects]
        lines += [f"  symlink {p} -> {t}" for p, t in self.symlinks]
        lines += [f"  decoy {p}: {kind}" for p, kind in self.decoys]
        lines += [f"  run {r}" for r in self.runs]
        return "\n".join(lines)


_DECOY_BYTES = {"text": b"INPUT(-lfoo)\n", "empty": b"", "short": b"\x7fELF\x02\x01\x01" + bytes(20),
                "elf32": b"\x7fELF\x01\x01\x01" + bytes(9) + b"\x03\x00\x03\x00" + bytes(40)}


@st.composite
def _search_list(draw, allow_none: bool = True, separators: tuple[str, ...] = (":",)) -> str | None:
    """A DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH value: DST spellings, relative and empty elements."""
    if allow_none and draw(st.booleans()):
        return None
    items = draw(st.lists(st.sampled_from(SEARCH_ELEMENTS), min_size=1, max_size=3))
    out = items[0]
    for item in items[1:]:
        out += draw(st.sampled_from(separators)) + item
    return out


@st.composite
def _preload_list(draw, names: list[str]) -> str:
    """An LD_PRELOAD/--preload value: names, absolute and relative paths, missing entries, ' ' and ':'."""
    pool = names + [f"{{root}}/lib/{names[0]}", f"lib/{names[-1]}", "libnopre.so", "{root}/lib/libnopre.so", "",
                    f"$ORIGIN/../lib/{names[0]}", f"./{names[0]}", f"{{root}}/$LIB/{names[-1]}",
                    "libc.so.6", "ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", "{root}/bin/prog"]
    items = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    out = items[0]
    for item in items[1:]:
        out += draw(st.sampled_from([":", " ", "  ", ": "])) + item
    return out


@st.composite
def _search_run(draw, names: list[str]) -> SearchRun:
    mode = draw(st.sampled_from(["trace", "trace", "ldd", "exec"]))
    env: dict[str, str] = {}
    llp = draw(_search_list(separators=(":", ":", ";")))  # _dl_init_paths splits LD_LIBRARY_PATH at both
    if llp is not None:
        env["LD_LIBRARY_PATH"] = llp
    if _one_in(draw, 3):
        env["LD_PRELOAD"] = draw(_preload_list(names))
    if mode != "ldd" and _one_in(draw, 3):
        env["LD_DEBUG"] = draw(st.sampled_from(["libs", "files", "versions", "libs,files,versions", "all"]))
    if mode != "ldd" and _one_in(draw, 4):
        env["LD_WARN"] = "1"
    if mode != "ldd" and _one_in(draw, 6):
        env["GLIBC_TUNABLES"] = draw(st.sampled_from(["glibc.cpu.hwcaps=-AVX2", "glibc.cpu.hwcaps=-SSE4_2",
                                                      "glibc.cpu.hwcap_mask=0"]))
    args: list[str] = []
    if mode == "trace":
        for opt in draw(st.lists(st.sampled_from(["--preload", "--library-path", "--inhibit-rpath",
                                                  "--inhibit-cache", "--glibc-hwcaps-prepend",
                                                  "--glibc-hwcaps-mask"]), max_size=3, unique=True)):
            if opt == "--inhibit-cache":
                args.append(opt)
            elif opt.startswith("--glibc-hwcaps"):
                args += [opt, draw(st.sampled_from(["x86-64-v2", "x86-64-v3:x86-64-v2", "*-v2", "x86-64-v4",
                                                    "extra", "extra:x86-64-v3", ""]))]
            elif opt == "--preload":
                args += [opt, draw(_preload_list(names))]
            elif opt == "--library-path":
                args += [opt, draw(_search_list(allow_none=False))]
            else:
                args += [opt, ":".join(draw(st.lists(st.sampled_from(names + ["prog", "{root}/bin/prog", ""]),
                                                     min_size=1, max_size=2)))]
    cwd = draw(st.sampled_from(CWDS))
    up = "" if cwd == "" else "../"
    if mode == "exec":
        via = draw(st.sampled_from(["{root}/bin/prog", "{root}/alt/prog", "{root}/opt/p", f"{up}alt/prog"]))
    else:
        via = draw(st.sampled_from(["{root}/bin/prog", "{root}/bin/prog", f"{up}bin/prog", f"./{up}alt/prog",
                                    f"{{root}}/lib/{names[0]}"]))  # a library as the main object, now and then
    traced = mode != "exec" or not _one_in(draw, 3)
    if via.endswith(".so"):
        # Not simulated: relocating (LD_WARN) a filtee of the main map, which the real loader moved in
        # front of it (see loader.loaded_chain), crashes the real loader when the filtee needs libc.
        env.pop("LD_WARN", None)
    return SearchRun(mode, tuple(env.items()), tuple(args), cwd, via, traced)


@st.composite
def search_worlds(draw, max_libs: int = 4) -> SearchWorld:
    """One world about the search (glibc-loader.md §3): DT_NEEDED names with '/' (absolute and relative to
    the cwd), sonames that differ from file names (and symlinks naming the same file), diamonds and cycles,
    DF_1_NODEFLIB, DT_FILTER/DT_AUXILIARY, `$LIB`/`$PLATFORM`/`${ORIGIN}`, relative and empty path
    elements, glibc-hwcaps and legacy subdirectories, versions a library lacks at run time (a `link/` copy
    was linked against), LD_PRELOAD/`--preload`/`--library-path`/`--inhibit-rpath`/`--inhibit-cache`,
    and exec through a symlink elsewhere.  libc-free objects (linked with libc in a quarter of the worlds);
    `libz.so.1` stands for a system library."""
    from ldsim.materialize import LibSpec, ProgSpec
    n = draw(st.integers(1, max_libs))
    names = [f"libg{i}.so" for i in range(n)]
    # linked with libc in a quarter of the worlds: init and fini calls when run.  Never with a stub
    # `libc.so.6` in DT_NEEDED then: ld would take the stub for libc and leave __libc_start_main null.
    libc = _one_in(draw, 4)
    sonames = {x: draw(st.sampled_from([x, x, f"{x}.1", None, "libz.so.1"])) for x in names}
    pool = names * 3 + [f"{x}.1" for x in names] + [f"{{root}}/lib/{names[0]}", f"lib/{names[-1]}",
                                                   "libabsent.so", "libz.so.1", f"$ORIGIN/../lib/{names[0]}",
                                                   f"${{ORIGIN}}/{names[-1]}", f"./{names[0]}",
                                                   f"../lib2/{names[-1]}", f"$LIB/{names[0]}",
                                                   *(x for x in SYSTEM_NAMES if not libc or x != "libc.so.6")]
    ver = {x: draw(st.sampled_from([None, None, "V1", "V2"])) for x in names}  # run-time version
    newer = {x: ver[x] is not None and _one_in(draw, 3) for x in names}  # linked against V3
    objects: list = []
    symlinks: list[tuple[str, str]] = [("ln", "lib"), ("alt/prog", "../bin/prog"), ("opt/p", "../bin/prog"),
                                       ("loop", "loop")]
    for x in names:
        if newer[x]:
            objects.append(LibSpec(f"link/{x}", soname=sonames[x], defines=(f"f_{x[:-3]}@@V3",),
                                   versions=(("V3", "V1"),), libc=libc))
    libs: list = []
    for i, x in enumerate(names):
        homes = draw(st.lists(st.sampled_from(SEARCH_DIRS[:3] * 3 + SEARCH_DIRS[3:]), min_size=0 if i == n - 1
                              else 1, max_size=2, unique=True))
        needed = tuple(dict.fromkeys(e for e in draw(st.lists(st.sampled_from(pool), max_size=3))
                                     if os.path.basename(e) not in (x, f"{x}.1")))
        uses = tuple(f"f_{y[:-3]}" for y in names if ver[y] and any(os.path.basename(e) in (y, f"{y}.1")
                                                                   for e in needed))
        defines = (f"f_{x[:-3]}@@{ver[x]}",) if ver[x] else ()
        cflags: tuple[str, ...] = ()
        filtee = draw(st.sampled_from(pool)) if _one_in(draw, 6) else None
        # Not simulated: the main map (`ld.so LIB`) whose filtee is its own file, reached by a path or a
        # search (the main map has no file id, so the file comes back as a second object), where the real
        # loader may fail allocating its search list or the initial TLS; a filter of itself by soname is.
        if filtee is not None and not (os.path.basename(filtee) == x and filtee != sonames[x]):
            cflags = (draw(st.sampled_from(["-Wl,-F,", "-Wl,-f,"])) + filtee,)
        rpath, runpath = draw(_search_list()), draw(_search_list())
        runpath = None if rpath is not None and runpath == "" else runpath  # ld writes one of the two
        nodeflib = _one_in(draw, 6)
        for home in homes:
            libs.append(LibSpec(f"{home}/{x}", soname=sonames[x], needed=needed, rpath=rpath, runpath=runpath,
                                defines=defines, uses=uses, versions=(("V2", "V1"),) if ver[x] == "V2" else (),
                                nodeflib=nodeflib, libc=libc, cflags=cflags))
            if sonames[x] == f"{x}.1" and draw(st.booleans()):
                symlinks.append((f"{home}/{x}.1", x))
    prog_needed = tuple(dict.fromkeys(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))))
    prog_rpath = draw(_search_list())
    prog_runpath = draw(_search_list(allow_none=prog_rpath is not None))
    prog_runpath = None if prog_rpath is not None and prog_runpath == "" else prog_runpath
    objects.append(ProgSpec("bin/prog", needed=prog_needed, rpath=prog_rpath, runpath=prog_runpath,
                            nodeflib=_one_in(draw, 5), libc=libc))
    objects += libs
    runs = tuple(draw(st.lists(_search_run(names), min_size=1, max_size=3)))
    decoys: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 2))):
        path = f"{draw(st.sampled_from(SEARCH_DIRS))}/{draw(st.sampled_from(names))}"
        kind = draw(st.sampled_from(["text", "empty", "dir", "short", "elf32", "dangling", "loop", "m32"]))
        if any(o.path == path for o in objects) or any(p == path for p, _ in symlinks + decoys):
            continue
        if kind == "m32":
            objects.append(LibSpec(path, soname=os.path.basename(path), m32=True, libc=False))
        elif kind in ("dangling", "loop"):
            symlinks.append((path, "nowhere.so" if kind == "dangling" else os.path.basename(path)))
        else:
            decoys.append((path, kind))
    return SearchWorld(tuple(objects), tuple(symlinks), runs, tuple(decoys))
