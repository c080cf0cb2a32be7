"""Symbol binding by the i386 loader (glibc-loader.md §5, §6): test_binding.py's worlds built with
`gcc -m32` and run by the real /lib/ld-linux.so.2 (libc6-i386) against `ldsim ld.so --profile
debian-i386-biarch`, executed by the kernel against `ldsim run`, and listed by the real `ldd -r`/`-u`
against `ldsim ldd`.

What differs from x86-64 and is checked here: Elf32_Sym entries and 32-bit GNU bloom words, Elf32_Rel
relocations (DT_REL, DT_RELCOUNT, DT_PLTREL = DT_REL), the R_386_* type classes and the switch of
elf_machine_rel (sysdeps/i386/dl-machine.h), setup_vdso_pointers' list in linux-gate.so.1, rtld's malloc
lookups at GLIBC_2.0, crt1.o's call of __libc_start_main through the PLT, DT_RELCOUNT in the statistics.
"""

from __future__ import annotations

import os
import struct
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same
from tests.conformance.test_binding import MODES, WORLDS, Obj, _build_world, _uncycled, build
from tests.conformance.test_foreign import _need, _need_m32

pytestmark = pytest.mark.conformance
RTLD32 = "/lib/ld-linux.so.2"
PROFILE = "debian-i386-biarch"
CC32 = ("gcc", "-m32")
# test_binding's worlds whose programs are not x86-64 assembly
I386_WORLDS = ("preinit", "sysv", "tlsdesc", "interpose", "weak", "versions", "copyreloc", "protected", "unique_ifunc", "tls", "symbolic",
               "diamond", "cycle", "missing", "missing_version", "preload", "auxiliary", "ifunc_relink",
               "ifunc_in_executable", "unversioned_ref", "lost_versions", "protected_copy",
               "indirect_extern_access")
# worlds of the i386 loader only: a one-entry DT_PREINIT_ARRAY is 4 bytes there (_dl_init divides
# DT_PREINIT_ARRAYSZ by sizeof (ElfW(Addr)))
OWN_WORLDS = {
    "preinit": [Obj("lib/libq.so", "int q(void) { return 0; }\n"),
                Obj("m", "int q(void);\nint refs(void) { return q(); }\nstatic void pre(void) {}\n"
                    "__attribute__((section(\".preinit_array\"), used)) static void (*pp)(void) = pre;\n"
                    "int main(void) { return 0; }\n", libs=("q",), shared=False)],
    # DT_HASH only: the SysV chains of Elf32_Sym tables
    "sysv": [Obj(o.out, o.src, (*o.flags, "-Wl,--hash-style=sysv"), o.libs, o.shared) for o in WORLDS["interpose"]],
    # TLS descriptors: R_386_TLS_DESC, PLT class, bound at startup
    "tlsdesc": [Obj(o.out, o.src, (*o.flags, "-mtls-dialect=gnu2"), o.libs, o.shared) for o in WORLDS["tls"]],
}
MODES32 = {**MODES, "ldd-unused": {}, "stats-lazy": {"LD_DEBUG": "statistics,bindings"}}
CORE = ("exec", "exec-now", "trace-now", "trace-lazy", "unused", "run-now", "ldd-unused")
EXTRA = {"interpose": ("run", "scopes", "bind-not", "exec-unused", "stats-now", "stats-lazy", "preload"),
         "weak": ("dynamic-weak",), "preload": ("preload",), "tls": ("stats-now", "run"),
         "symbolic": ("scopes",), "diamond": ("run",), "missing": ("ldd-verbose",),
         "missing_version": ("ldd-verbose",), "versions": ("ldd-verbose", "run"), "ifunc_relink": ("run",),
         "ifunc_in_executable": ("run",), "copyreloc": ("run",), "preinit": ("run",)}
KEYS = [(w, m) for w in I386_WORLDS for m in (*CORE, *EXTRA.get(w, ()))]


def real_ldso32(argv: list[str], env: dict[str, str], cwd: str) -> oracle.Outcome:
    return oracle.run([RTLD32, *argv], dict(env), cwd)


def ldsim_ldso32(argv: list[str], env: dict[str, str], cwd: str) -> oracle.Outcome:
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    return oracle.run([sys.executable, "-m", "ldsim", "ld.so", "--profile", PROFILE, "-i", *eargs, *argv],
                      oracle._own_env(), cwd)


@pytest.fixture(scope="module")
def worlds32(tmp_path_factory) -> dict[str, str]:
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    base = tmp_path_factory.mktemp("binding32")
    roots = {n: str(base / n) for n in I386_WORLDS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: build(roots[n], OWN_WORLDS[n], CC32) if n in OWN_WORLDS
                      else _build_world(roots[n], n, CC32), I386_WORLDS))
    return roots


@pytest.fixture(scope="module")
def results32(worlds32) -> dict[tuple[str, str], tuple[oracle.Outcome, oracle.Outcome]]:
    def one(key):
        w, m = key
        root = worlds32[w]
        prog = f"{root}/m"
        env = {k: v.replace("{root}", root) for k, v in MODES32[m].items()}
        if m.startswith("run"):
            return key, (oracle.run([prog], dict(env), root), oracle.ldsim_run(prog, env, root))
        if m == "ldd-unused":
            return key, (oracle.real_ldd(["-r", "-u", prog], env, root), oracle.ldsim_ldd(["-r", "-u", prog], env, root))
        if m.startswith("ldd"):
            return key, (oracle.real_ldd(["-v", "-r", prog], env, root), oracle.ldsim_ldd(["-v", "-r", prog], env, root))
        return key, (real_ldso32([prog], env, root), ldsim_ldso32([prog], env, root))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, KEYS))


@pytest.mark.parametrize(("world", "mode"), KEYS)
def test_binding_i386(results32, world: str, mode: str) -> None:
    real, sim = results32[(world, mode)]
    assert_same(_uncycled(real), _uncycled(sim))


def _rewrite_rel(path: str, tag: int, size_tag: int, old: int, new: int) -> bool:
    """Change the first Elf32_Rel entry of type `old` in the table at DT `tag` to type `new`."""
    from ldsim.elf import parse_elf
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(tag))
    for i in range((elf.dyn(size_tag) or 0) // 8):
        at = off + 8 * i + 4
        info, = struct.unpack_from("<I", data, at)
        if info & 0xFF == old:
            struct.pack_into("<I", data, at, (info & ~0xFF) | new)
            with open(path, "wb") as f:
                f.write(data)
            return True
    return False


@pytest.mark.parametrize("mode", ["trace-now", "trace-lazy", "exec-now", "exec"])
@pytest.mark.parametrize("where", ["rel", "jmprel"])
def test_an_unknown_i386_relocation_type_is_fatal(tmp_path, mode: str, where: str) -> None:
    """A library's R_386_GLOB_DAT rewritten to R_386_GOT32 (3), which elf_machine_rel's switch does not
    handle: looked up, then "unexpected reloc type 0x03"; its R_386_JMP_SLOT rewritten to R_386_GLOB_DAT
    (6): bound like one with immediate binding, "unexpected PLT reloc type 0x06" from
    elf_machine_lazy_rel when lazy (sysdeps/i386/dl-machine.h, elf/dl-reloc.c)."""
    from ldsim.elf import DT
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    root = str(tmp_path)
    build(root, [Obj("lib/libg.so", "int g;\nint gf(void) { return 1; }\n"),
                 Obj("lib/libr.so", "extern int g;\nint gf(void);\nint *pg(void) { return &g; }\n"
                     "int cg(void) { return gf(); }\n", libs=("g",)),
                 Obj("m", "int *pg(void);\nint main(void) { return 0; }\n", libs=("r",), shared=False)], CC32)
    path = f"{root}/lib/libr.so"
    done = (_rewrite_rel(path, DT.REL, DT.RELSZ, 6, 3) if where == "rel"
            else _rewrite_rel(path, DT.JMPREL, DT.PLTRELSZ, 7, 6))
    if not done:
        pytest.skip("no entry to rewrite")
    env = {k: v.replace("{root}", root) for k, v in MODES[mode].items()}
    assert_same(real_ldso32([f"{root}/m"], env, root), ldsim_ldso32([f"{root}/m"], env, root))


def test_i386_prog_on_x86_64_ldd_lists_nothing_unused(tmp_path) -> None:
    """`ldd -u` of a 32-bit program using libc and libm: the i386 loader binds its references there, so
    neither is unused (ldsim bound nothing for ELFCLASS32 objects and listed both)."""
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    root = str(tmp_path)
    build(root, [Obj("m", "#include <math.h>\n#include <stdio.h>\n"
                     "int main(int c, char **v) { printf(\"%f\\n\", sin(c)); return 0; }\n",
                     ("-lm",), shared=False)], CC32)
    for args in (["-u", f"{root}/m"], ["-r", "-u", f"{root}/m"], ["-d", f"{root}/m"]):
        assert_same(oracle.real_ldd(args, {}, root), oracle.ldsim_ldd(args, {}, root))
    assert os.path.exists(f"{root}/m")


# ------------------------------------------------------------------------ the host's 32-bit libraries

DEBUG = "libs,reloc,files,symbols,bindings,versions,scopes"
TRACE_NOW = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes", "LD_DEBUG": DEBUG}
TRACE_LAZY = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_DEBUG": "bindings,unused"}


def i386_libraries() -> list[str]:
    """Every i386 shared object of /usr/lib32 and its gconv modules (libc6-i386), by real path."""
    import glob
    seen: dict[str, str] = {}
    for path in sorted(glob.glob("/usr/lib32/*.so*") + glob.glob("/usr/lib32/gconv/*.so")):
        try:
            with open(path, "rb") as f:
                head = f.read(20)
        except OSError:
            continue
        if head[:5] == b"\x7fELF\x01" and head[16] == 3 and head[18] == 3:  # ELFCLASS32, ET_DYN, EM_386
            seen.setdefault(os.path.realpath(path), path)
    return sorted(seen.values())


def _corpus_compare(libs: list[str], real, sim, label: str) -> list[str]:
    from ldsim.linkmap import FileCache
    files = FileCache()
    with ThreadPoolExecutor(max_workers=8) as pool:
        reals = list(pool.map(real, libs))
    bad = [lib for lib, r in zip(libs, reals) if sim(lib, files) != r]
    print(f"{label}: {len(libs) - len(bad)}/{len(libs)} identical; differ: {' '.join(bad[:20])}")
    return bad


def _sim_inv(env: dict[str, str], profile):
    from ldsim.config import Invocation
    from ldsim.hwcaps import cpu_for_profile, detect_host_cpu
    return Invocation(env=tuple(env.items()), cwd="/", pid=4242, cpu=cpu_for_profile(profile, detect_host_cpu()),
                      profile=profile)


@pytest.mark.parametrize("mode", ["now", "lazy", "ldd-u"])
def test_i386_system_libraries(mode: str) -> None:
    """Each 32-bit library of the host as `ld.so LIB` under the i386 loader, traced with LD_WARN (every
    object's relocations bound, LD_DEBUG with the binding categories), and `ldd -r -u` of every third:
    the real loader's output, byte for byte (addresses and PID masked)."""
    from ldsim.glibc import PROFILES
    from ldsim.lddscript import run_ldd
    from ldsim.ldso import run_ldso
    from ldsim.world import HostWorld
    _need(RTLD32, packages=("libc6-i386",))
    libs = i386_libraries()
    if len(libs) < 10:
        pytest.skip("libc6-i386's libraries are not installed")

    def enc(run) -> oracle.Outcome:
        return oracle.outcome_of(run)

    if mode == "ldd-u":
        args = ["-r", "-u"]
        bad = _corpus_compare(
            libs[::3], lambda lib: oracle.real_ldd([*args, lib], {}, "/"),
            lambda lib, files: enc(run_ldd(HostWorld("/"), _sim_inv(oracle.LDD_PATH, PROFILES["debian-x86_64"]),
                                           [*args, lib], files)), f"ldd {' '.join(args)}")
    else:
        env = TRACE_NOW if mode == "now" else TRACE_LAZY
        bad = _corpus_compare(
            libs, lambda lib: real_ldso32([lib], env, "/"),
            lambda lib, files: enc(run_ldso(HostWorld("/"), _sim_inv(env, PROFILES[PROFILE]), [lib], files,
                                            RTLD32)), mode)
    assert not bad
