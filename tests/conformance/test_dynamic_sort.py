"""GLIBC_TUNABLES=glibc.rtld.dynamic_sort: the init/fini sorting algorithm (elf/dl-sort-maps.c), 1 the
original one, 2 (the 2.36 default) the DFS one, against the real loader: the program executed with
LD_DEBUG=libs ("calling init/fini" lines) vs `ldsim run`, and traced with LD_BIND_NOW and bindings (the
relocation order is l_initfini's, reversed) vs `ldsim ld.so`.  The graphs have cycles, where the two
algorithms disagree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same
from tests.conformance.test_binding import CTOR, Obj, build

pytestmark = pytest.mark.conformance

# name -> (the program's DT_NEEDED, each library's DT_NEEDED), in link order
GRAPHS = {
    "diamond": ("ab", {"a": "c", "b": "c", "c": ""}),
    "cycle3": ("cab", {"c": "a", "a": "cb", "b": "ac"}),
    "all-to-all": ("bca", {"b": "ac", "c": "ab", "a": "bc"}),
    "cycle-bc": ("abc", {"a": "c", "b": "ca", "c": "b"}),
    "long": ("dec", {"d": "bc", "e": "a", "c": "ab", "b": "ce", "a": "e"}),
    "self-cycle-tail": ("db", {"d": "", "b": "c", "c": "eb", "e": ""}),
}
SORTS = {"default": None, "original": "glibc.rtld.dynamic_sort=1", "dfs": "glibc.rtld.dynamic_sort=2",
         "out-of-range": "glibc.rtld.dynamic_sort=3"}
MODES = {"run": {"LD_DEBUG": "libs"},
         "trace-now": {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes",
                       "LD_DEBUG": "bindings"}}


def _lib(name: str, deps: str) -> Obj:
    """libnNAME.so (never libc.so), calling each of its dependencies, with a constructor and destructor."""
    calls = " + ".join(f"f{d}()" for d in deps) or "0"
    decls = "".join(f"int f{d}(void);\n" for d in deps)
    return Obj(f"lib/libn{name}.so", f"{decls}int f{name}(void) {{ return {calls}; }}\n" + CTOR,
               libs=tuple(f"n{d}" for d in deps))


def _build(root: str, graph: tuple[str, dict[str, str]]) -> None:
    needed, libs = graph
    build(root, [_lib(n, "") for n in libs])  # first without dependencies: a cycle links in two passes
    build(root, [_lib(n, d) for n, d in libs.items()])
    calls = " + ".join(f"f{d}()" for d in needed)
    decls = "".join(f"int f{d}(void);\n" for d in needed)
    build(root, [Obj("m", f"{decls}int refs(void) {{ return {calls}; }}\nint main(void) {{ return 0; }}\n",
                     libs=tuple(f"n{d}" for d in needed), shared=False)])


KEYS = [(g, s, m) for g in GRAPHS for s in SORTS for m in MODES]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, str, str], tuple[oracle.Outcome, oracle.Outcome]]:
    base = tmp_path_factory.mktemp("dynsort")
    roots = {g: str(base / g) for g in GRAPHS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda g: _build(roots[g], GRAPHS[g]), GRAPHS))

    def one(key):
        g, s, m = key
        env = dict(MODES[m])
        if SORTS[s] is not None:
            env["GLIBC_TUNABLES"] = SORTS[s]
        prog, cwd = f"{roots[g]}/m", roots[g]
        if m == "run":
            return key, (oracle.run([prog], env, cwd), oracle.ldsim_run(prog, env, cwd))
        return key, (oracle.real_ldso([prog], env, cwd), oracle.ldsim_ldso([prog], env, cwd))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, KEYS))


@pytest.mark.parametrize(("graph", "sort", "mode"), KEYS)
def test_dynamic_sort(results, graph: str, sort: str, mode: str) -> None:
    assert_same(*results[(graph, sort, mode)])


def test_the_algorithms_differ_here(results) -> None:
    """The worlds are worth running: somewhere the two algorithms give another init order."""
    differ = [g for g in GRAPHS if results[(g, "original", "run")][0].stderr != results[(g, "dfs", "run")][0].stderr]
    assert differ
