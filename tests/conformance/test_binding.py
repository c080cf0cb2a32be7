"""Differential tests of symbol binding, versions, relocation order and init/fini order (glibc-loader.md
§5, §6): small worlds built with gcc, run for real by `ld.so PROG` (the programs do nothing) with
LD_DEBUG=all, lazily and with LD_BIND_NOW, and traced with LD_WARN (ldd -r), against `ldsim ld.so`.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance


@dataclass(frozen=True)
class Obj:
    """One object: `out` relative to the world, C source, extra gcc flags, libraries to link (-l names
    resolved in the world's lib dir)."""

    out: str
    src: str
    flags: tuple[str, ...] = ()
    libs: tuple[str, ...] = ()
    shared: bool = True


CTOR = "__attribute__((constructor)) static void ctor(void) {}\n__attribute__((destructor)) static void dtor(void) {}\n"


def build(root: str, objs: list[Obj], cc: tuple[str, ...] = ("gcc",)) -> None:
    """Compile each object with `cc` (("gcc", "-m32") for the i386 worlds)."""
    for o in objs:
        src = os.path.join(root, o.out + ".c")
        os.makedirs(os.path.dirname(src), exist_ok=True)
        with open(src, "w") as f:
            f.write(o.src)
        argv = [*cc, "-o", os.path.join(root, o.out), src, *o.flags]
        if o.shared:
            argv[1:1] = ["-shared", "-fPIC"]
            argv.append(f"-Wl,-soname,{os.path.basename(o.out)}")
        argv += [f"-L{root}/lib", f"-Wl,-rpath,{root}/lib", "-Wl,--no-as-needed", *(f"-l{x}" for x in o.libs)]
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"{' '.join(argv)}\n{p.stderr}")


UNIQUE = ('__asm__(".data\\n.globl uvar\\n.type uvar, @gnu_unique_object\\n.size uvar, 4\\n'
          'uvar: .long 7\\n.text");\n')
# name -> (objects, [(prog, env)] ...); libraries go to lib/, programs to the world root
WORLDS: dict[str, list[Obj]] = {
    "interpose": [
        Obj("lib/libb.so", "int foo(void) { return 2; }\nint var = 2;\n"),
        Obj("lib/liba.so", "int foo(void) { return 1; }\nint var = 1;\nint usefoo(void) { return foo() + var; }\n"
            + CTOR),
        Obj("m", "int foo(void);\nint usefoo(void);\nint unused(void) { return usefoo() + foo(); }\nint main(void) { return 0; }\n",
            ("-rdynamic",), ("a", "b"), shared=False),
    ],
    "weak": [
        Obj("lib/libw.so", "__attribute__((weak)) int val = 1;\n"),
        Obj("lib/libg.so", "int val = 2;\n"),
        Obj("lib/libu.so", "extern int val;\n__attribute__((weak)) extern int maybe;\n"
            "int get(void) { return val + (&maybe ? 1 : 0); }\n", libs=("w", "g")),
        Obj("m", "int get(void);\nint refs(void) { return get() > 0 ? 0 : 1; }\nint main(void) { return 0; }\n", libs=("u",), shared=False),
    ],
    "versions": [
        Obj("lib/libv.so", '__asm__(".symver foo1, foo@V1");\n__asm__(".symver foo2, foo@@V2");\n'
            "int foo1(void) { return 1; }\nint foo2(void) { return 2; }\nint bar(void) { return 3; }\n",
            ("-Wl,--version-script,/dev/stdin",)),
        Obj("m", "int foo(void);\nint bar(void);\nint refs(void) { return foo() + bar() == 5 ? 0 : 1; }\nint main(void) { return 0; }\n",
            libs=("v",), shared=False),
    ],
    "copyreloc": [
        Obj("lib/libd.so", "int data_var[4] = {1};\nint small = 3;\n__attribute__((visibility(\"protected\")))"
            " int prot = 5;\nint *getp(void) { return &prot; }\nint get(void) { return data_var[0] + small; }\n"),
        Obj("m", "extern int data_var[4];\nextern int small;\nint get(void);\n"
            "int refs(void) { return data_var[0] + small == get() ? 0 : 1; }\nint main(void) { return 0; }\n", ("-no-pie",), ("d",),
            shared=False),
    ],
    "protected": [
        Obj("lib/libp.so", "__attribute__((visibility(\"protected\"))) int pfun(void) { return 1; }\n"
            "__attribute__((visibility(\"protected\"))) int pvar = 3;\n"
            "int (*getp(void))(void) { return pfun; }\nint *getv(void) { return &pvar; }\n"),
        Obj("m", "int pfun(void);\nint (*fp)(void) = pfun;\n"
            "int refs(void) { return pfun(); }\nint main(void) { return 0; }\n", ("-no-pie",), ("p",),
            shared=False),
    ],
    "unique_ifunc": [
        Obj("lib/libu1.so", UNIQUE + "static int impl(void) { return 1; }\n"
            "static void *resolve(void) { return (void *) impl; }\n"
            "int ifn(void) __attribute__((ifunc(\"resolve\")));\n"),
        Obj("lib/libu2.so", UNIQUE + "extern int ifn(void);\nint (*pi)(void) = ifn;\n"
            "extern int uvar;\nint *getu(void) { return &uvar; }\n", libs=("u1",)),
        Obj("m", "extern int uvar;\nint ifn(void);\nint *getu(void);\n"
            "int refs(void) { return uvar + ifn() + *getu(); }\nint main(void) { return 0; }\n",
            libs=("u2", "u1"), shared=False),
    ],
    "nolibc": [
        Obj("lib/libn2.so", CTOR, ("-nostdlib",)),
        Obj("lib/libn1.so", "int n1(void) { return 0; }\n" + CTOR, ("-nostdlib",), ("n2",)),
        Obj("m", 'void _start(void) { __asm__ volatile("movl $60, %eax; xorl %edi, %edi; syscall"); }\n',
            ("-nostdlib", "-nostartfiles"), ("n1",), shared=False),
    ],
    "nolibc_libc_dep": [  # libc comes through a library: libc's init runs, __libc_start_main never does
        Obj("lib/libl.so", "int l(void) { return 0; }\n" + CTOR),
        Obj("m", 'void _start(void) { __asm__ volatile("movl $60, %eax; xorl %edi, %edi; syscall"); }\n',
            ("-nostdlib", "-nostartfiles"), ("l",), shared=False),
    ],
    "own_start_with_libc": [  # needs libc.so.6 itself, but its own _start never calls __libc_start_main
        Obj("m", '#include <unistd.h>\nint never_called(void) { return getpid(); }\n'
                 'void _start(void) { __asm__ volatile("movl $60, %eax; xorl %edi, %edi; syscall"); }\n',
            ("-nostartfiles",), (), shared=False),
    ],
    "preload": [
        Obj("lib/libpre.so", "int foo(void) { return 9; }\n"),
        Obj("lib/libf.so", "int foo(void) { return 1; }\nint (*pf)(void) = foo;\n"),
        Obj("m", "int foo(void);\nint (*pm)(void) = foo;\nint main(void) { return 0; }\n", libs=("f",),
            shared=False),
    ],
    "auxiliary": [
        Obj("lib/libaux.so", "int foo(void) { return 2; }\n" + CTOR),
        Obj("lib/libflt.so", "int foo(void) { return 1; }\nint (*pf)(void) = foo;\n" + CTOR,
            ("-Wl,--auxiliary=libaux.so",)),
        Obj("m", "int foo(void);\nint (*pm)(void) = foo;\nint main(void) { return 0; }\n", libs=("flt",),
            shared=False),
    ],
    "tls": [
        Obj("lib/libt1.so", "__thread int tv = 1;\n__thread int tw = 2;\n"),
        Obj("lib/libt2.so", "extern __thread int tv;\nextern __thread int tw;\n"
            "int get(void) { return tv + tw; }\n", libs=("t1",)),
        Obj("m", "extern __thread int tv;\nint get(void);\nint refs(void) { return tv + get(); }\n"
            "int main(void) { return 0; }\n", libs=("t2", "t1"), shared=False),
    ],
    "symbolic": [
        Obj("lib/libo.so", "int helper(void) { return 7; }\nint other(void) { return 8; }\n"),
        Obj("lib/libs.so", "int helper(void) { return 1; }\nint (*ph)(void) = helper;\nint other(void);\n"
            "int (*po)(void) = other;\nint call(void) { return ph(); }\n", ("-Wl,-Bsymbolic",), ("o",)),
        Obj("m", "int call(void);\nint refs(void) { return call() == 1 ? 0 : 1; }\nint main(void) { return 0; }\n", libs=("o", "s"),
            shared=False),
    ],
    "diamond": [
        Obj("lib/libd.so", "int d(void) { return 0; }\n" + CTOR),
        Obj("lib/libc1.so", "int d(void);\nint c1(void) { return d(); }\n" + CTOR, libs=("d",)),
        Obj("lib/libb.so", "int c1(void);\nint b(void) { return c1(); }\n" + CTOR, libs=("c1", "d")),
        Obj("lib/liba.so", "int c1(void);\nint a(void) { return c1(); }\n" + CTOR, libs=("c1",)),
        Obj("m", "int a(void);\nint b(void);\nint refs(void) { return a() + b(); }\nint main(void) { return 0; }\n", libs=("a", "b"),
            shared=False),
    ],
    "cycle": [
        Obj("lib/liby.so", "int y(void) { return 0; }\n" + CTOR),
        Obj("lib/libx.so", "int y(void);\nint x(void) { return y(); }\n" + CTOR, libs=("y",)),
        Obj("lib/liby.so", "int x(void);\nint y(void) { return 0; }\nint yx(void) { return x(); }\n" + CTOR,
            libs=("x",)),
        Obj("m", "int x(void);\nint refs(void) { return x(); }\nint main(void) { return 0; }\n", libs=("y", "x"), shared=False),
    ],
    "missing": [
        Obj("lib/libq.so", "int there(void) { return 0; }\nint nothere(void) { return 1; }\n"),
        Obj("m", "int there(void);\nint nothere(void);\n"
            "int refs(int argc) { return argc > 5 ? nothere() : there(); }\nint main(void) { return 0; }\n", libs=("q",),
            shared=False),
        Obj("lib/libq.so", "int there(void) { return 0; }\n"),
    ],
    "missing_version": [
        Obj("lib/libv.so", "int foo(void) { return 0; }\n", ("-Wl,--version-script,/dev/stdin",)),
        Obj("m", "int foo(void);\nint refs(void) { return foo(); }\nint main(void) { return 0; }\n", libs=("v",), shared=False),
    ],
}
SCRIPTS = {("versions", "lib/libv.so"): "V1 { local: foo1; foo2; };\nV2 { bar; } V1;\n",
           ("missing_version", "lib/libv.so"): "V2 { global: foo; };\n"}
# objects rebuilt after the program was linked: (object, version script)
REBUILD_AFTER = {
    "missing_version": (Obj("lib/libv.so", "int foo(void) { return 0; }\n", ("-Wl,--version-script,/dev/stdin",)),
                        "V1 { global: foo; };\n"),
    "unversioned_ref": (WORLDS["versions"][0], SCRIPTS[("versions", "lib/libv.so")]),
}
# a reference to foo@V1 meeting a library rebuilt without versions: check_match's assertion
REBUILD_AFTER["lost_versions"] = (Obj("lib/libv.so", "int foo(void) { return 0; }\n"), None)
WORLDS["lost_versions"] = [Obj("lib/libv.so", "int foo(void) { return 0; }\n", ("-Wl,--version-script,/dev/stdin",)),
                           Obj("m", "int foo(void);\nint (*p)(void) = foo;\nint main(void) { return 0; }\n",
                               libs=("v",), shared=False)]
SCRIPTS[("lost_versions", "lib/libv.so")] = "V1 { global: foo; };\n"
# the same with no DT_VERSYM left at all (no libc): "Inconsistency detected by ld.so", exit 127
REBUILD_AFTER["no_versym"] = (Obj("lib/libv.so", "int foo(void) { return 0; }\n", ("-nostdlib",)), None)
WORLDS["no_versym"] = [Obj("lib/libv.so", "int foo(void) { return 0; }\n",
                           ("-nostdlib", "-Wl,--version-script,/dev/stdin")), WORLDS["lost_versions"][1]]
SCRIPTS[("no_versym", "lib/libv.so")] = "V1 { global: foo; };\n"
# a program linked against plain data and functions meets protected ones (glibc 2.36
# _dl_check_protected_symbol): its copy relocation and canonical PLT address draw warnings, and when
# the library's GNU property note needs indirect external access, the first is fatal (_dl_signal_error
# with the symbol as occasion, even under ldd -r's _dl_receive_error)
_PLAIN = "int pv = 3;\nint pf(void) { return 1; }\nint *gp(void) { return &pv; }\n"
_PROT = ('__attribute__((visibility("protected"))) int pv = 3;\n'
         '__attribute__((visibility("protected"))) int pf(void) { return 1; }\nint *gp(void) { return &pv; }\n')
_PROT_MAIN = ("extern int pv;\nint pf(void);\n"
              "int main(void) { void *volatile q = (void *) pf; return pv - 3 + (q == 0); }\n")
for _name, _flags in (("protected_copy", ()), ("indirect_extern_access", ("-Wl,-z,indirect-extern-access",))):
    WORLDS[_name] = [Obj("lib/libp.so", _PLAIN),
                     Obj("m", _PROT_MAIN, ("-no-pie", "-fno-pic"), ("p",), shared=False)]
    REBUILD_AFTER[_name] = (Obj("lib/libp.so", _PROT, _flags), None)
# an IFUNC resolver about to run in an object not relocated yet (elf_machine_rela): libb, relocated before
# liba (it does not need it), takes the address of liba's IFUNC: "Relink `libb' with `liba'"; a library's
# reference to an IFUNC the executable defines (relocated last) is fatal.  Never in trace mode
# (__RTLD_NOIFUNC), nor for a lazy PLT slot.
_IFUNC = ('static int impl(void) { return 1; }\nstatic void *res(void) { return (void *) impl; }\n'
          'int ifn(void) __attribute__((ifunc("res")));\n')
_IFUNC_USER = "int ifn(void);\nint (*pb)(void) = ifn;\nint fb(void) { return ifn(); }\n"
WORLDS["ifunc_relink"] = [Obj("lib/liba.so", _IFUNC), Obj("lib/libb.so", _IFUNC_USER),
                          Obj("m", "int fb(void);\nint (*p)(void) = fb;\nint main(void) { return 0; }\n",
                              libs=("a", "b"), shared=False)]
WORLDS["ifunc_in_executable"] = [Obj("lib/libb.so", _IFUNC_USER),
                                 Obj("m", _IFUNC + "int fb(void);\nint (*p)(void) = fb;\nint main(void) { return 0; }\n",
                                     ("-rdynamic",), ("b",), shared=False)]
# a text relocation of the program's 32-bit field (-z nocopyreloc: no copy of dv): elf_machine_rela warns
# "causes overflow" when the value does not fit, R_X86_64_32 unsigned (a non-PIE program taking dv's address
# absolutely), R_X86_64_PC32 signed (a PIE reading dv relative to its code).  The first overflows wherever
# the library lies; the second only when the kernel maps the program, far below ld.so's mappings, not when
# ld.so maps it beside the libraries (`ld.so PROG`)
_TEXTREL_LIB = Obj("lib/libd.so", "int dv[4] = {1};\nint get(void) { return dv[0]; }\n")
WORLDS["textrel_pc32"] = [_TEXTREL_LIB, Obj("m", "extern int dv[4];\nint get(void);\n"
                                            "int refs(void) { return dv[0] + get(); }\nint main(void) { return 0; }\n",
                                            ("-Wl,-z,nocopyreloc",), ("d",), shared=False)]
WORLDS["textrel_32"] = [_TEXTREL_LIB, Obj("m", "extern int dv[4];\nint get(void);\n"
                                          "long refs(void) { return (long) dv + get(); }\nint main(void) { return 0; }\n",
                                          ("-no-pie", "-fno-pic", "-Wl,-z,nocopyreloc"), ("d",), shared=False)]
WORLDS["unversioned_ref"] = [Obj("lib/libv.so", "int foo(void) { return 1; }\nint bar(void) { return 4; }\n"),
                             WORLDS["versions"][1]]

MODES = {
    "exec": {"LD_DEBUG": "all"},
    "exec-now": {"LD_DEBUG": "all", "LD_BIND_NOW": "1"},
    "exec-plain-now": {"LD_BIND_NOW": "1"},
    "trace-now": {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes", "LD_DEBUG": "all"},
    "trace-lazy": {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_DEBUG": "all"},
    "unused": {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "unused"},
    "dynamic-weak": {"LD_DEBUG": "symbols,bindings", "LD_DYNAMIC_WEAK": "1", "LD_BIND_NOW": "1"},
    "scopes": {"LD_DEBUG": "scopes"},
    "bind-not": {"LD_DEBUG": "bindings", "LD_BIND_NOT": "1"},
    "exec-unused": {"LD_DEBUG": "unused,bindings"},
    "run": {"LD_DEBUG": "all"},  # run-* modes: the program executed by the kernel vs `ldsim run`
    "run-now": {"LD_DEBUG": "all", "LD_BIND_NOW": "1"},
    "stats": {"LD_DEBUG": "statistics"},
    "preload": {"LD_PRELOAD": "{root}/lib/libpre.so", "LD_DEBUG": "symbols,bindings", "LD_BIND_NOW": "1"},
    "stats-now": {"LD_DEBUG": "statistics,bindings", "LD_BIND_NOW": "1"},
    # ldd -v -r (ldd-* modes: the real ldd, whose 2>&1 shows the order of stdout and stderr lines): the
    # version information comes after LD_WARN's undefined-symbol lines
    "ldd-verbose": {},
    # `ld.so --list` (list-* modes) never prints the version information
    "list-verbose": {"LD_VERBOSE": "1", "LD_WARN": "yes"},
}
_CYCLES = re.compile(rb"\d+ cycles( \(\d*\.\d%\))?")


def _uncycled(o: oracle.Outcome) -> oracle.Outcome:
    """Statistics timings are not reproducible; the counts are compared."""
    return oracle.Outcome(o.stdout, _CYCLES.sub(b"N cycles", o.stderr), o.status)


def _build_world(root: str, name: str, cc: tuple[str, ...] = ("gcc",)) -> None:
    for o in WORLDS[name]:
        script = SCRIPTS.get((name, o.out))
        if script is not None:
            _with_script(root, o, script, cc)
        else:
            build(root, [o], cc)
    if name in REBUILD_AFTER:
        obj, script = REBUILD_AFTER[name]
        _with_script(root, obj, script, cc) if script is not None else build(root, [obj], cc)


def _with_script(root: str, o: Obj, script: str, cc: tuple[str, ...] = ("gcc",)) -> None:
    path = os.path.join(root, o.out + ".map")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(script)
    build(root, [Obj(o.out, o.src, tuple(x.replace("/dev/stdin", path) for x in o.flags), o.libs, o.shared)], cc)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("binding")
    roots = {n: str(base / n) for n in WORLDS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: _build_world(roots[n], n), WORLDS))
    return roots


# every world runs the core modes; the others run where they say something (keeps the file near a minute)
CORE = ("exec", "exec-now", "exec-plain-now", "trace-now", "trace-lazy", "unused", "run-now")
EXTRA = {"interpose": ("run", "scopes", "bind-not", "exec-unused", "stats", "stats-now", "preload"),
         "weak": ("dynamic-weak", "stats-now"), "preload": ("preload", "scopes"), "tls": ("stats-now",),
         "symbolic": ("scopes", "dynamic-weak"), "diamond": ("run",), "cycle": ("run",), "nolibc": ("run",),
         "nolibc_libc_dep": ("run",), "own_start_with_libc": ("run",),
         "auxiliary": ("scopes",), "missing": ("list-verbose", "ldd-verbose"),
         "missing_version": ("list-verbose", "ldd-verbose"),
         "versions": ("list-verbose", "ldd-verbose"), "ifunc_relink": ("run", "bind-not", "stats-now"),
         "ifunc_in_executable": ("run",), "textrel_pc32": ("run", "ldd-verbose"),
         "textrel_32": ("run", "ldd-verbose")}
KEYS = [(w, m) for w in WORLDS for m in (*CORE, *EXTRA.get(w, ()))]


@pytest.fixture(scope="module")
def results(worlds) -> dict[tuple[str, str], tuple[oracle.Outcome, oracle.Outcome]]:
    keys = KEYS

    def one(key):
        w, m = key
        prog = f"{worlds[w]}/m"
        env, cwd = {k: v.replace("{root}", worlds[w]) for k, v in MODES[m].items()}, worlds[w]
        if m.startswith("run"):
            return key, (oracle.run([prog], dict(env), cwd), oracle.ldsim_run(prog, env, cwd))
        if m.startswith("ldd"):
            return key, (oracle.real_ldd(["-v", "-r", prog], env, cwd), oracle.ldsim_ldd(["-v", "-r", prog], env, cwd))
        argv = ["--list", prog] if m.startswith("list") else [prog]
        return key, (oracle.real_ldso(argv, env, cwd), oracle.ldsim_ldso(argv, env, cwd))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, keys))


@pytest.mark.parametrize(("world", "mode"), KEYS)
def test_binding(results, world: str, mode: str) -> None:
    real, sim = results[(world, mode)]
    assert_same(_uncycled(real), _uncycled(sim))


@pytest.mark.parametrize("mode", ["trace-now", "trace-lazy", "exec-now"])
def test_an_unknown_relocation_type_is_fatal(tmp_path, mode: str) -> None:
    """A GLOB_DAT entry of a library rewritten to R_X86_64_PC64 (24), which elf_machine_rela's switch does
    not handle: looked up first, then _dl_reloc_bad_type(map, 24, 0), "unexpected reloc type 0x18",
    fatal (sysdeps/x86_64/dl-machine.h, elf/dl-reloc.c)."""
    import struct
    from ldsim.elf import DT, parse_elf
    root = str(tmp_path)
    build(root, [Obj("lib/libg.so", "int g;\n"),
                 Obj("lib/libr.so", "extern int g;\nint *pg(void) { return &g; }\n", libs=("g",)),
                 Obj("m", "int *pg(void);\nint main(void) { return 0; }\n", libs=("r",), shared=False)])
    path = f"{root}/lib/libr.so"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(DT.RELA))
    for i in range((elf.dyn(DT.RELASZ) or 0) // 24):
        at = off + 24 * i + 8
        info, = struct.unpack_from("<Q", data, at)
        if info & 0xFFFFFFFF == 6:  # R_X86_64_GLOB_DAT
            struct.pack_into("<Q", data, at, (info & ~0xFFFFFFFF) | 24)
            break
    else:
        pytest.skip("no GLOB_DAT entry to rewrite")
    with open(path, "wb") as f:
        f.write(data)
    env = {k: v.replace("{root}", root) for k, v in MODES[mode].items()}
    assert_same(oracle.real_ldso([f"{root}/m"], env, root), oracle.ldsim_ldso([f"{root}/m"], env, root))


# a filter library run as the program (`ldd LIB`, `ld.so LIB`): _dl_map_object_deps moves each filtee in
# front of its filter in the l_next chain, and the main map heads it (l_prev NULL), so the filtee drops out
# of every walk of the chain: the trace does not list it, _dl_check_all_versions leaves its l_versions NULL
# (the first versioned reference it relocates reads through it: SIGSEGV), and main's l_initfini puts main
# first, then its filtees (relocated before main)
_CT = "__attribute__((constructor)) static void ctor(void) {}\n"
FILTER_MAIN = {
    # filtees without DT_VERSYM (-nostdlib), one needed again by a dependency of the filter
    "plain": [Obj("lib/libi1.so", "int foo(void) { return 2; }\n" + _CT, ("-nostdlib",)),
              Obj("lib/libi2.so", "int bar(void) { return 2; }\n", ("-nostdlib",)),
              Obj("lib/libdep.so", "int foo(void);\nint (*pd)(void) = foo;\n" + _CT, ("-nostdlib",), ("i1",)),
              Obj("lib/libflt.so", "int foo(void) { return 1; }\nint bar(void) { return 2; }\n"
                  "int (*pf)(void) = foo;\nint (*pb)(void) = bar;\n" + _CT,
                  ("-Wl,--filter=libi1.so", "-Wl,--auxiliary=libi2.so"), ("dep",))],
    # a filtee with versioned references (libc's)
    "versioned": [Obj("lib/libimpl.so", "int foo(void) { return 2; }\n" + _CT),
                  Obj("lib/libflt.so", "int foo(void) { return 1; }\nint (*pf)(void) = foo;\n" + _CT,
                      ("-Wl,--filter=libimpl.so",))],
}
FILTER_MODES = ("trace", "trace-now", "trace-lazy", "exec-now", "scopes", "ldd", "ldd-r", "ldd-u")


@pytest.fixture(scope="module")
def filter_worlds(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("filter_main")
    roots = {n: str(base / n) for n in FILTER_MAIN}
    for n, objs in FILTER_MAIN.items():
        build(roots[n], objs)
    return roots


@pytest.mark.parametrize("mode", FILTER_MODES)
@pytest.mark.parametrize("world", list(FILTER_MAIN))
def test_a_filter_as_the_program(filter_worlds, world: str, mode: str) -> None:
    root = filter_worlds[world]
    lib = f"{root}/lib/libflt.so"
    if mode.startswith("ldd"):
        args = {"ldd": [], "ldd-r": ["-r"], "ldd-u": ["-u"]}[mode]
        assert_same(oracle.real_ldd([*args, lib], {}, root), oracle.ldsim_ldd([*args, lib], {}, root))
        return
    env = {"trace": {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs,files"},
           "scopes": {"LD_DEBUG": "scopes,reloc,versions"}}.get(mode) or MODES[mode]
    assert_same(oracle.real_ldso([lib], env, root), oracle.ldsim_ldso([lib], env, root))


@pytest.mark.parametrize("shift", [32, 38, 262])
@pytest.mark.parametrize("mode", ["trace-now", "exec-now"])
def test_a_bloom_shift_past_the_hash_width(tmp_path, shift: int, mode: str) -> None:
    """A GNU hash table whose bloom shift is 32 or more: do_lookup_x shifts the 32-bit hash by it as
    read, and x86's shr counts modulo 32, so 38 and 262 filter as 6 does and 32 as 0 (elf/dl-lookup.c)."""
    import struct
    from ldsim.elf import DT, parse_elf
    root = str(tmp_path)
    build(root, [Obj("lib/liba.so", "int foo(void) { return 1; }\nint bar(void) { return 2; }\nint v = 3;\n"),
                 Obj("m", "int foo(void);\nint bar(void);\nextern int v;\nint (*p[])(void) = {foo, bar};\n"
                          "int *pv = &v;\nint main(void) { return 0; }\n", libs=("a",), shared=False)])
    path = f"{root}/lib/liba.so"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(DT.GNU_HASH))
    struct.pack_into("<I", data, off + 12, shift)
    with open(path, "wb") as f:
        f.write(data)
    env = MODES[mode]
    assert_same(oracle.real_ldso([f"{root}/m"], env, root), oracle.ldsim_ldso([f"{root}/m"], env, root))


def _set_gnu_hash_word(path: str, index: int, value: int) -> None:
    """Overwrite word `index` of the DT_GNU_HASH header of the file at `path`."""
    import struct
    from ldsim.elf import DT, parse_elf
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    struct.pack_into("<I", data, elf.vaddr_to_offset(elf.dyn(DT.GNU_HASH)) + 4 * index, value)
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("nwords", [3, 6])
@pytest.mark.parametrize("target", ["lib/liba.so", "m"])
@pytest.mark.parametrize("how", ["trace", "exec-now", "run"])
def test_a_bloom_filter_of_odd_size(tmp_path, nwords: int, target: str, how: str) -> None:
    """_dl_setup_hash asserts that the GNU bloom filter has a power-of-two number of words
    (elf/dl-setup_hash.c), for each object ld.so maps and for the program the kernel mapped."""
    root = str(tmp_path)
    build(root, [Obj("lib/liba.so", "int foo(void) { return 1; }\n"),
                 Obj("m", "int foo(void);\nint (*p)(void) = foo;\nint main(void) { return 0; }\n",
                     ("-rdynamic",), ("a",), shared=False)])
    _set_gnu_hash_word(f"{root}/{target}", 2, nwords)
    prog = f"{root}/m"
    if how == "run":
        env = {"LD_DEBUG": "files,bindings"}
        assert_same(oracle.run([prog], env, root), oracle.ldsim_run(prog, env, root))
        return
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "files"} if how == "trace" else MODES[how]
    assert_same(oracle.real_ldso([prog], env, root), oracle.ldsim_ldso([prog], env, root))


def _patch_verdefs(path: str, patch) -> None:
    """Call patch(data, offset of the Verdef, vd_cnt, vd_aux) for each Verdef record of the file."""
    import struct
    from ldsim.elf import DT, parse_elf
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(DT.VERDEF))
    while True:
        _, _, _, cnt, _, aux, nxt = struct.unpack_from("<HHHHIII", data, off)
        patch(data, off, cnt, aux)
        if not nxt:
            break
        off += nxt
    with open(path, "wb") as f:
        f.write(data)


def _no_count(data: bytearray, off: int, cnt: int, aux: int) -> None:
    data[off + 6:off + 8] = b"\0\0"  # vd_cnt = 0


def _wild_parent(data: bytearray, off: int, cnt: int, aux: int) -> None:
    import struct
    if cnt > 1:  # the parent's Verdaux: its name far outside the file
        nxt = struct.unpack_from("<I", data, off + aux + 4)[0]
        struct.pack_into("<I", data, off + aux + nxt, 0x7FFFFFF0)


@pytest.mark.parametrize("patch", [_no_count, _wild_parent])
@pytest.mark.parametrize("mode", ["trace-now", "exec-now"])
def test_only_the_first_verdaux_is_read(tmp_path, patch, mode: str) -> None:
    """The loader takes a Verdef's name from its first Verdaux (vd_aux), whatever vd_cnt says, and never
    reads the parents' entries (elf/dl-version.c match_symbol, _dl_check_map_versions)."""
    root = str(tmp_path)
    lib = Obj("lib/libv.so", '__asm__(".symver foo1, foo@V1");\n__asm__(".symver foo2, foo@@V2");\n'
              "int foo1(void) { return 1; }\nint foo2(void) { return 2; }\nint bar(void) { return 3; }\n",
              ("-Wl,--version-script,/dev/stdin",))
    _with_script(root, lib, "V1 { global: bar; local: foo1; foo2; };\nV2 { } V1;\n")
    build(root, [Obj("m", "int foo(void);\nint bar(void);\nint (*p[])(void) = {foo, bar};\nint main(void) { return 0; }\n",
                     libs=("v",), shared=False)])
    _patch_verdefs(f"{root}/lib/libv.so", patch)
    env = MODES[mode]
    assert_same(oracle.real_ldso([f"{root}/m"], env, root), oracle.ldsim_ldso([f"{root}/m"], env, root))


def _v1_v2_world(root: str) -> str:
    """A program `m` referring to foo@V1 and bar@V2 of lib/libv.so; returns libv's source."""
    src = "int foo(void) { return 1; }\nint bar(void) { return 2; }\n"
    _with_script(root, Obj("lib/libv.so", src, ("-Wl,--version-script,/dev/stdin",)),
                 "V1 { global: foo; local: *; };\nV2 { global: bar; } V1;\n")
    build(root, [Obj("m", "int foo(void);\nint bar(void);\nint (*p[])(void) = {foo, bar};\n"
                          "int main(void) { return 0; }\n", libs=("v",), shared=False)])
    return src


@pytest.mark.parametrize("count", [0, 1])
@pytest.mark.parametrize("mode", ["trace-now", "exec-now", "ldd-verbose"])
def test_vernaux_entries_follow_vna_next(tmp_path, count: int, mode: str) -> None:
    """_dl_check_map_versions (and the trace's version information) walks a Verneed's Vernaux entries by
    vna_next from vn_aux, whatever vn_cnt says: a program whose vn_cnt fields are 0 or 1 still has every
    version checked (here V2, which the library lacks: fatal)."""
    import struct
    from ldsim.elf import DT, parse_elf
    root = str(tmp_path)
    src = _v1_v2_world(root)
    _with_script(root, Obj("lib/libv.so", src, ("-Wl,--version-script,/dev/stdin",)), "V1 { global: foo; bar; local: *; };\n")
    path = f"{root}/m"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    off = elf.vaddr_to_offset(elf.dyn(DT.VERNEED))
    while True:
        struct.pack_into("<H", data, off + 2, count)
        nxt = struct.unpack_from("<I", data, off + 12)[0]
        if not nxt:
            break
        off += nxt
    with open(path, "wb") as f:
        f.write(data)
    if mode == "ldd-verbose":
        assert_same(oracle.real_ldd(["-v", path], {}, root), oracle.ldsim_ldd(["-v", path], {}, root))
        return
    env = {**MODES[mode], "LD_DEBUG": "versions"}
    assert_same(oracle.real_ldso([path], env, root), oracle.ldsim_ldso([path], env, root))


@pytest.mark.parametrize("target", ["lib/liba.so", "m"])
@pytest.mark.parametrize("how", ["trace", "exec-now", "run"])
def test_an_unsupported_verneed_version_is_fatal(tmp_path, target: str, how: str) -> None:
    """_dl_check_map_versions accepts only vn_version 1 in an object's first Verneed record: anything
    else is "unsupported version N of Verneed record", fatal even when tracing (elf/dl-version.c)."""
    import struct
    from ldsim.elf import DT, parse_elf
    root = str(tmp_path)
    build(root, [Obj("lib/liba.so", "#include <string.h>\nint foo(const char *s) { return (int) strlen(s); }\n"),
                 Obj("m", "int foo(const char *);\nint (*p)(const char *) = foo;\nint main(void) { return 0; }\n",
                     libs=("a",), shared=False)])
    path = f"{root}/{target}"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    struct.pack_into("<H", data, elf.vaddr_to_offset(elf.dyn(DT.VERNEED)), 2)
    with open(path, "wb") as f:
        f.write(data)
    prog = f"{root}/m"
    if how == "run":
        env = {"LD_DEBUG": "versions"}
        assert_same(oracle.run([prog], env, root), oracle.ldsim_run(prog, env, root))
        return
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "versions"} if how == "trace" else {**MODES[how], "LD_DEBUG": "versions"}
    assert_same(oracle.real_ldso([prog], env, root), oracle.ldsim_ldso([prog], env, root))


@pytest.mark.parametrize("record", [0, 2])
@pytest.mark.parametrize("mode", ["trace-now", "exec-now", "ldd-verbose"])
def test_an_unsupported_verdef_version_fails_the_check(tmp_path, record: int, mode: str) -> None:
    """match_symbol walks the needed object's Verdef records in order and checks each one's vd_version
    before its hash: a record other than version 1 met before the match is "unsupported version N of
    Verdef record", a version lookup error like a missing version (elf/dl-version.c)."""
    import struct
    root = str(tmp_path)
    _v1_v2_world(root)
    seen = []

    def patch(data: bytearray, off: int, cnt: int, aux: int) -> None:
        if len(seen) == record:
            struct.pack_into("<H", data, off, 2)
        seen.append(off)
    _patch_verdefs(f"{root}/lib/libv.so", patch)
    path = f"{root}/m"
    if mode == "ldd-verbose":
        assert_same(oracle.real_ldd(["-v", path], {}, root), oracle.ldsim_ldd(["-v", path], {}, root))
        return
    env = {**MODES[mode], "LD_DEBUG": "versions"}
    assert_same(oracle.real_ldso([path], env, root), oracle.ldsim_ldso([path], env, root))


def _set_dyn(path: str, tag: int, value: int) -> None:
    """Set the value of every `tag` entry of the file's dynamic section."""
    import struct
    from ldsim.elf import PT, parse_elf
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    seg = next(s for s in elf.segments if s.type == PT.DYNAMIC)
    fmt = "<qQ" if elf.is_64 else "<iI"
    size = struct.calcsize(fmt)
    for off in range(seg.offset, seg.offset + seg.filesz - size + 1, size):
        t, _ = struct.unpack_from(fmt, data, off)
        if t == tag:
            struct.pack_into(fmt, data, off, t, value)
    with open(path, "wb") as f:
        f.write(data)


# (gcc flags, dynamic tag, value): DT_PLTREL 17 (DT_REL) where x86-64 has only RELA, 9 on i386; an entry
# size other than the record's
DYNINFO = {"pltrel": ((), 20, 17), "relaent": ((), 9, 16), "relrent": (("-Wl,-z,pack-relative-relocs",), 37, 4),
           "pltrel-i386": (("-m32",), 20, 9), "relent-i386": (("-m32",), 19, 12)}


@pytest.mark.parametrize("target", ["lib/liba.so", "m"])
@pytest.mark.parametrize("case", list(DYNINFO))
def test_elf_get_dynamic_info_assertions(tmp_path, case: str, target: str) -> None:
    """elf_get_dynamic_info asserts DT_PLTREL (DT_RELA only where the machine has no REL relocations) and
    the DT_RELAENT/DT_RELENT/DT_RELRENT sizes (elf/get-dynamic-info.h), for each object it maps and for
    the program in dl_main: "Inconsistency detected by ld.so", exit 127."""
    flags, tag, value = DYNINFO[case]
    root = str(tmp_path)
    cc = ("gcc", "-m32") if "-m32" in flags else ("gcc",)
    extra = tuple(f for f in flags if f != "-m32")
    build(root, [Obj("lib/liba.so", "int getpid(void);\nint x = 1;\nint *px = &x;\n"
                                    "int foo(void) { return *px + getpid(); }\n", extra),
                 Obj("m", "int foo(void);\nstatic int y;\nint *py = &y;\nint (*p)(void) = foo;\n"
                          "int call(void) { return foo(); }\nint main(void) { return 0; }\n", extra, ("a",),
                     shared=False)], cc)
    _set_dyn(f"{root}/{target}", tag, value)
    prog = f"{root}/m"
    env = {"LD_DEBUG": "files"}
    assert_same(oracle.run([prog], env, root), oracle.ldsim_run(prog, env, root))
    if cc == ("gcc",):  # `ld.so PROG` maps the program through _dl_map_object_from_fd too
        env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "files"}
        assert_same(oracle.real_ldso([prog], env, root), oracle.ldsim_ldso([prog], env, root))


@pytest.mark.parametrize("index", [7, 0x40, 0x400])
@pytest.mark.parametrize("mode", ["trace-now", "trace-lazy"])
def test_a_version_index_past_the_array(tmp_path, index: int, mode: str) -> None:
    """A reference whose DT_VERSYM index is past the end of its object's l_versions (sized by the
    file's highest Verneed/Verdef index): do-rel.h reads &l_versions[ndx] anyway, i.e. the arrays
    _dl_check_all_versions allocated after it with the minimal malloc, or zeros past them (trace mode;
    a real start allocates more there first, and may crash)."""
    import struct
    from ldsim.elf import DT, parse_elf
    root = str(tmp_path)
    _with_script(root, Obj("lib/libv.so", '__asm__(".symver foo1, foo@V1");\n__asm__(".symver foo2, foo@@V2");\n'
                           "int foo1(void) { return 1; }\nint foo2(void) { return 2; }\nint bar(void) { return 3; }\n",
                           ("-Wl,--version-script,/dev/stdin",)), "V1 { global: bar; local: foo1; foo2; };\nV2 { } V1;\n")
    build(root, [Obj("lib/libu.so", "int foo(void);\nint bar(void);\nint (*pf)(void) = foo;\n"
                                    "int u(void) { return foo() + bar(); }\n", libs=("v",)),
                 Obj("m", "int u(void);\nint (*p)(void) = u;\nint main(void) { return 0; }\n", libs=("u", "v"),
                     shared=False)])
    path = f"{root}/lib/libu.so"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    elf = parse_elf(bytes(data))
    tab = elf.vaddr_to_offset(elf.dyn(DT.SYMTAB))
    strtab = elf.vaddr_to_offset(elf.dyn(DT.STRTAB))
    versym = elf.vaddr_to_offset(elf.dyn(DT.VERSYM))
    i = 1
    while True:  # the dynamic symbol `foo`
        name = struct.unpack_from("<I", data, tab + 24 * i)[0]
        if bytes(data[strtab + name:strtab + name + 4]) == b"foo\0":
            break
        i += 1
    struct.pack_into("<H", data, versym + 2 * i, index)
    with open(path, "wb") as f:
        f.write(data)
    prog = f"{root}/m"
    env = {**MODES[mode], "LD_DEBUG": "bindings"}
    if mode.startswith("run"):
        assert_same(oracle.run([prog], env, root), oracle.ldsim_run(prog, env, root))
    else:
        assert_same(oracle.real_ldso([prog], env, root), oracle.ldsim_ldso([prog], env, root))
