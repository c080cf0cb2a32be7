"""Versioned references to a library that is missing, under ldd -r / ldd -d and LD_WARN traces
(glibc-loader.md §5): in trace mode _dl_check_map_versions skips the Verneed of a faked object when it
sizes l_versions, so references at that object's higher version indices read past the array into the
next objects' l_versions (elf/dl-version.c, elf/do-rel.h, elf/dl-minimal-malloc.c): the real loader
then reports `undefined symbol: foo` without a version, or with another object's version
(`LINUX_2.6` of the vDSO, `GLIBC_2.2.5` of libc), or with an empty one.  Which case a program meets
depends on the indices ld gave its versions, so the worlds vary the libc versions the referencing
object needs; each is compared with the real loader, whatever ld made of it.  An object whose only
Verneed is the missing library's (no libc) has no l_versions at all, and ld.so dies of SIGSEGV.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same
from tests.conformance.test_binding import Obj, build

pytestmark = pytest.mark.conformance

LIBV = "int foo(void) { return 1; }\nint bar(void) { return 2; }\nint baz(void) { return 3; }\n"
SCRIPT = "V1 { global: foo; };\nV2 { global: bar; } V1;\nV3 { global: baz; local: *; } V2;\n"
HEAD = ("#include <stdio.h>\n#include <string.h>\n#include <time.h>\n#include <sys/stat.h>\n"
        "int foo(void), bar(void), baz(void);\n"
        "int (*p1)(void) = foo; int (*p2)(void) = bar; int (*p3)(void) = baz;\n")
# the libc versions the referencing object needs besides the missing library's V1..V3
EXTRA = {
    "printf": ("", 'printf("x");'),
    "memcpy": ("void *q1 = (void *) memcpy;\n", 'printf("x");'),
    "clock": ("void *q1 = (void *) memcpy; void *q2 = (void *) clock_gettime;\n", 'printf("x");'),
    "fstat": ("void *q1 = (void *) memcpy; void *q2 = (void *) clock_gettime; void *q3 = (void *) fstat;\n",
              'printf("x");'),
    "puts": ("", 'puts("x");'),
    "puts_clock": ("void *q2 = (void *) clock_gettime;\n", 'puts("x");'),
    "none": ("", ""),
}
WORLDS = [(where, extra) for where in ("main", "lib") for extra in EXTRA] + [("nolibc_lib", "none")]


def _build(root: str, where: str, extra: str) -> None:
    os.makedirs(f"{root}/lib", exist_ok=True)
    with open(f"{root}/v.map", "w") as f:
        f.write(SCRIPT)
    build(root, [Obj("lib/libv.so", LIBV, (f"-Wl,--version-script,{root}/v.map",))])
    decl, body = EXTRA[extra]
    if where == "main":
        build(root, [Obj("m", HEAD + decl + f"int main(void) {{ {body} return 0; }}\n", libs=("v",), shared=False)])
    elif where == "nolibc_lib":  # liba's only Verneed is libv's: l_versions stays NULL, ld.so crashes (SIGSEGV)
        build(root, [Obj("lib/liba.so", "int foo(void), bar(void);\nint (*p1)(void) = foo; int (*p2)(void) = bar;\n"
                         "int fa(void) { return 0; }\n", ("-nostdlib",), ("v",)),
                     Obj("m", "int fa(void);\nint (*pa)(void) = fa;\nint main(void) { return 0; }\n", libs=("a",),
                         shared=False)])
    else:
        build(root, [Obj("lib/liba.so", HEAD + decl + f"int fa(void) {{ {body} return 0; }}\n", libs=("v",)),
                     Obj("m", "int fa(void);\nint (*pa)(void) = fa;\nint main(void) { return 0; }\n", libs=("a",),
                         shared=False)])
    os.unlink(f"{root}/lib/libv.so")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[tuple[str, str], str]:
    base = tmp_path_factory.mktemp("missing_versioned")
    roots = {w: str(base / f"{w[0]}-{w[1]}") for w in WORLDS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda w: _build(roots[w], *w), WORLDS))
    return roots


TRACE = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_DEBUG": "bindings,symbols"}


@pytest.mark.parametrize(("where", "extra"), WORLDS)
@pytest.mark.parametrize("mode", ["ldd -r", "ldd -d", "trace-now", "trace-lazy"])
def test_versioned_references_to_a_missing_library(worlds, where: str, extra: str, mode: str) -> None:
    root = worlds[(where, extra)]
    prog = f"{root}/m"
    if mode.startswith("ldd"):
        args = [mode.split()[1], prog]
        assert_same(oracle.real_ldd(args, {}, root), oracle.ldsim_ldd(args, {}, root))
        return
    env = {**TRACE, **({"LD_BIND_NOW": "yes"} if mode == "trace-now" else {})}
    assert_same(oracle.real_ldso([prog], env, root), oracle.ldsim_ldso([prog], env, root))
