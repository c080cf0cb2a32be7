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
