"""Differential tests of the LD_DEBUG categories other than libs/bindings (files, symbols, scopes, reloc,
versions, statistics, unused, all): small worlds built with gcc at test time, each run by the real loader,
as `ld.so PROG` (traced or not, lazily or with LD_BIND_NOW) or executed, and by ldsim in-process; stdout,
stderr and status must be identical once addresses, the PID column and statistics' cycle counts are masked.
The programs never call into their libraries: whatever a real run prints comes from the loader's startup
and exit, which ldsim simulates.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import oracle
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance

CTOR = ("__attribute__((constructor)) static void ctor(void) {} "
        "__attribute__((destructor)) static void dtor(void) {}")
MAIN = "int main(void) { return 0; }"

# name -> bash script run in the world's directory (lib/ exists; $CT is CTOR, $MAIN is MAIN)
WORLDS: dict[str, str] = {
    # DT_FLAGS_1 bits outside DT_1_SUPPORTED_MASK: elf_get_dynamic_info warns under LD_DEBUG=files, after
    # "generating link map" and before the "dynamic:" lines (elf/get-dynamic-info.h, elf/dl-load.c); for a
    # program the kernel mapped, dl_main's own elf_get_dynamic_info warns first of all (rtld.c)
    "flags1": """
for z in interpose nodump global loadfltr now; do
  echo "int f_$z(void) { return 0; } $CT" > $z.c
  gcc -shared -fPIC -o lib/lib$z.so $z.c -Wl,-soname,lib$z.so -Wl,-z,$z
done
echo "$MAIN" > prog.c
gcc -o prog prog.c -Llib -Wl,--no-as-needed -linterpose -lnodump -lglobal -lloadfltr -lnow '-Wl,-rpath,$ORIGIN/lib'
gcc -o nodump prog.c -Wl,-z,nodump
gcc -no-pie -o interpose prog.c -Wl,-z,interpose,-z,global
""",
    # a DT_NEEDED naming a PIE or an ET_EXEC file: "generating link map" is printed, then the mapping
    # fails before the "dynamic:" lines (_dl_map_object_from_fd)
    "exec_as_lib": """
echo "" > empty.c
gcc -shared -fPIC -o lib/libpie.so empty.c -Wl,-soname,libpie.so
gcc -shared -fPIC -o lib/libexe.so empty.c -Wl,-soname,libexe.so
echo "$MAIN" > prog.c
gcc -o needs-pie prog.c -Llib -Wl,--no-as-needed -lpie '-Wl,-rpath,$ORIGIN/lib'
gcc -o needs-exe prog.c -Llib -Wl,--no-as-needed -lexe '-Wl,-rpath,$ORIGIN/lib'
gcc -o lib/libpie.so prog.c
gcc -no-pie -o lib/libexe.so prog.c
echo "#include <stdlib.h>
int f(void) { return abs(-1); } $CT" > entry.c
gcc -shared -fPIC -o lib/libentry.so entry.c -Wl,-soname,libentry.so -Wl,--no-as-needed -lc
echo "int g(void) { return 1; }" > bare.c
gcc -shared -fPIC -nostdlib -o lib/libbare.so bare.c -Wl,-soname,libbare.so
""",
    # LD_DEBUG=statistics counts DT_RELACOUNT of the objects whose load bias is not 0 (rtld.c
    # print_statistics): ld.so maps a library with mmap hinted at its first PT_LOAD (_dl_map_segments), so
    # one linked at a fixed address gets it (bias 0) unless the range is taken (libtwin after libfixed,
    # libat400 under the non-PIE program), below vm.mmap_min_addr (liblow, moved up to it) or, with a
    # p_align above the page size, not aligned to it (libbig2); the kernel maps a PIE program anywhere,
    # ld.so maps it like a library (pie-at: a PIE at 0x60000000, e_type patched from ET_EXEC)
    "fixed_address": """
echo 'int a = 1; int *pa = &a, *pb = &a, *pc = &a; int f(void) { return *pa + *pb + *pc; }' > f.c
sed 's/int f(/int g(/' f.c > g.c
gcc -shared -fPIC -o lib/libfixed.so f.c -Wl,-soname,libfixed.so -Wl,-Ttext-segment=0x50000000
gcc -shared -fPIC -o lib/libtwin.so g.c -Wl,-soname,libtwin.so -Wl,-Ttext-segment=0x50000000
gcc -shared -fPIC -o lib/liblow.so g.c -Wl,-soname,liblow.so -Wl,-Ttext-segment=0x1000
gcc -shared -fPIC -o lib/libat400.so g.c -Wl,-soname,libat400.so -Wl,-Ttext-segment=0x400000
gcc -shared -fPIC -o lib/libbig.so g.c -Wl,-soname,libbig.so -Wl,-z,max-page-size=0x200000 -Wl,-Ttext-segment=0x50200000
gcc -shared -fPIC -o lib/libbig2.so g.c -Wl,-soname,libbig2.so -Wl,-z,max-page-size=0x200000 -Wl,-Ttext-segment=0x60001000 2>/dev/null
echo 'int f(void); int g(void); int refs(void) { return f() + g(); } int main(void) { return 0; }' > prog.c
gcc -o twin prog.c -Llib -Wl,--no-as-needed -lfixed -ltwin -lbig '-Wl,-rpath,$ORIGIN/lib'
gcc -o low prog.c -Llib -Wl,--no-as-needed -lfixed -llow -lbig2 '-Wl,-rpath,$ORIGIN/lib'
gcc -no-pie -o at400 prog.c -Llib -Wl,--no-as-needed -lat400 -lfixed '-Wl,-rpath,$ORIGIN/lib'
echo 'int x = 1; int *px = &x, *py = &x; int f(void); int refs(void) { return f(); } int main(void) { return 0; }' > pie.c
gcc -pie -fPIE -o pie-at pie.c -Llib -lfixed '-Wl,-rpath,$ORIGIN/lib' -Wl,-Ttext-segment=0x60000000
printf '\\x03' | dd of=pie-at bs=1 seek=16 conv=notrunc status=none
# DT_RELACOUNT's tag rewritten to DT_RELCOUNT, which print_statistics adds as well
mkdir rel; gcc -shared -fPIC -o rel/librel.so g.c -Wl,-soname,librel.so
python3 -c "import struct, sys; d = bytearray(open(sys.argv[1], 'rb').read()); t = struct.pack('<q', 0x6ffffff9)
i = next(i for i in range(0, len(d), 8) if d[i:i + 8] == t); d[i:i + 8] = struct.pack('<q', 0x6ffffffa)
open(sys.argv[1], 'wb').write(d)" rel/librel.so
gcc -o relcount prog.c -Llib -Lrel -Wl,--no-as-needed -lfixed -lrel '-Wl,-rpath,$ORIGIN/lib:$ORIGIN/rel'
""",
    # libc's time and gettimeofday are IFUNCs whose resolvers look their vDSO symbol up each time a
    # relocation binds to them (dl_vdso_vsym): one more lookup, binding line and relocation counted;
    # never in trace mode, where no resolver runs
    "vdso_ifunc": """
cat > t.c <<'C'
#include <sys/time.h>
#include <time.h>
void *pt = (void *) time, *pg = (void *) gettimeofday;
int use(void) { struct timeval tv; gettimeofday(&tv, 0); return time(0) > 0; }
C
gcc -shared -fPIC -o lib/libt.so t.c -Wl,-soname,libt.so
echo '#include <time.h>
int use(void); int refs(void) { return time(0) + use(); } int main(void) { return 0; }' > prog.c
gcc -o prog prog.c -Llib -lt '-Wl,-rpath,$ORIGIN/lib'
echo '#include <time.h>
void *p = (void *) time; int main(void) { return 0; }' > addr.c
gcc -no-pie -o addr addr.c
""",
    # LD_DEBUG=unused walks the program's DT_NEEDED entries alongside l_next (rtld.c): a repeated entry
    # maps no second object, so the walk reaches the end of the list and dereferences NULL (SIGSEGV after
    # the lines printed so far)
    "needed_twice": """
echo 'int x(void) { return 1; }' > x.c
gcc -shared -fPIC -nostdlib -o lib/libx.so x.c -Wl,-soname,libx.so
echo 'int y(void) { return 1; }' > y.c
gcc -shared -fPIC -o lib/liby.so y.c -Wl,-soname,liby.so
echo 'int x(void); int refs(void) { return x(); } int main(void) { return 0; }' > p.c
gcc -o once p.c -Llib -Wl,--no-as-needed -lx -ly '-Wl,-rpath,$ORIGIN/lib'
cp once twice
patchelf --add-needed libx.so twice
patchelf --add-needed liby.so twice
""",
}

TRACE = {"LD_TRACE_LOADED_OBJECTS": "1"}
WARN = {**TRACE, "LD_WARN": "yes"}
NOW = {"LD_BIND_NOW": "1"}
# (world, program, how, env): how = "ld.so" (`ld.so PROG`) or "run" (PROG executed by the kernel)
CASES: list[tuple[str, str, str, dict[str, str]]] = [
    *[("flags1", "prog", how, {**base, "LD_DEBUG": cats})
      for how, base in (("ld.so", {}), ("ld.so", WARN), ("run", NOW))
      for cats in ("files", "all,statistics")],
    *[("flags1", prog, how, {**base, "LD_DEBUG": "files"})
      for prog in ("nodump", "interpose") for how, base in (("ld.so", {}), ("run", {}), ("run", TRACE))],
    *[("exec_as_lib", prog, how, {"LD_DEBUG": "files"})
      for prog in ("needs-pie", "needs-exe") for how in ("ld.so", "run")],
    ("exec_as_lib", "needs-pie", "ld.so", {**TRACE, "LD_DEBUG": "all"}),
    *[("fixed_address", prog, how, {**now, "LD_DEBUG": "statistics"})
      for prog in ("twin", "low", "at400", "pie-at", "relcount") for how in ("ld.so", "run") for now in ({}, NOW)],
    *[("vdso_ifunc", prog, how, {**base, "LD_DEBUG": cats})
      for prog in ("prog", "addr") for how, base in (("ld.so", {}), ("ld.so", NOW), ("run", NOW), ("ld.so", WARN))
      for cats in ("symbols,bindings", "all,statistics")],
    *[("needed_twice", prog, "ld.so", {**base, "LD_DEBUG": cats})
      for prog in ("once", "twice") for base in (TRACE, {**WARN, **NOW}) for cats in ("unused", "all,unused")],
]

_CYCLES = re.compile(rb"\d+ cycles( \(\d*\.\d%\))?")


def _uncycled(o: oracle.Outcome) -> oracle.Outcome:
    """Statistics timings are not reproducible; the counts are compared."""
    return oracle.Outcome(o.stdout, _CYCLES.sub(b"N cycles", o.stderr), o.status)


def _build(root: str, script: str) -> None:
    os.makedirs(f"{root}/lib")
    p = subprocess.run(["bash", "-ec", script], cwd=root, capture_output=True, text=True,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CT": CTOR, "MAIN": MAIN})
    if p.returncode:
        raise RuntimeError(f"building failed:\n{script}\n{p.stderr}")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("debug")
    roots = {n: str(base / n) for n in WORLDS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda n: _build(roots[n], WORLDS[n]), WORLDS))
    return roots


def outcomes(root: str, prog: str, how: str, env: dict[str, str]) -> tuple[oracle.Outcome, oracle.Outcome]:
    """(real, ldsim) for `./PROG` in the world's directory."""
    from ldsim.ldso import run_exec
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    prog = f"./{prog}"
    if how == "ld.so":
        return oracle.real_ldso([prog], env, root), oracle.sim_ldso(prog, env, root)
    sim = run_exec(HostWorld(root), oracle._invocation(env, root), [prog], FileCache())
    return oracle.run([prog], env, root), oracle.outcome_of(sim)


def _id(case) -> str:
    world, prog, how, env = case
    return f"{world}-{prog}-{how}-" + ",".join(f"{k}={v}" for k, v in env.items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_debug_category(worlds, case) -> None:
    world, prog, how, env = case
    real, sim = outcomes(worlds[world], prog, how, env)
    assert_same(_uncycled(real), _uncycled(sim))


LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


@pytest.mark.parametrize("how", ["ld.so", "run"])
@pytest.mark.parametrize("env", [{}, {"LD_DEBUG": "files,statistics"}, {**NOW, "LD_DEBUG": "all,statistics"}])
def test_libc_as_the_program(how: str, env: dict[str, str]) -> None:
    """libc.so.6 run as a program: its entry point, __libc_main (csu/version.c), writes the banner on
    stdout and calls _exit (0), so __libc_start_main's "initialize program" / "transferring control",
    the fini calls and the final statistics never come; ldsim printed them and no banner."""
    if not os.path.exists(LIBC):
        pytest.skip("no multiarch libc.so.6")
    from ldsim.ldso import run_exec
    from ldsim.linkmap import FileCache
    from ldsim.world import HostWorld
    if how == "ld.so":
        real, sim = oracle.real_ldso([LIBC], env, "/"), oracle.sim_ldso(LIBC, env, "/")
    else:
        real = oracle.run([LIBC], env, "/")
        sim = oracle.outcome_of(run_exec(HostWorld("/"), oracle._invocation(env, "/"), [LIBC], FileCache()))
    assert_same(_uncycled(real), _uncycled(sim))


@pytest.mark.parametrize("lib", ["libc_dep", "no_deps"])
@pytest.mark.parametrize("env", [{}, {"LD_DEBUG": "files,statistics"}, {**NOW, "LD_DEBUG": "all"}])
def test_a_library_as_the_program(worlds, lib: str, env: dict[str, str]) -> None:
    """`ld.so LIB`: after the init calls _dl_start_user jumps to the library's entry point, e_entry 0, its
    ELF header in a read-only segment: SIGSEGV (ldsim exited 0).  A library with neither DT_NEEDED nor
    PT_INTERP is handed to execve (rtld_chain_load), and the kernel faults at the same place."""
    root = worlds["exec_as_lib"]
    path = f"{root}/lib/{'libentry.so' if lib == 'libc_dep' else 'libbare.so'}"
    real, sim = oracle.real_ldso([path], env, root), oracle.sim_ldso(path, env, root)
    assert_same(_uncycled(real), _uncycled(sim))


# -- 32-bit programs (the biarch /lib/ld-linux.so.2 of libc6-i386) ------------------------------------------


@pytest.fixture(scope="module")
def i386_world(tmp_path_factory) -> str:
    if not os.path.exists("/lib/ld-linux.so.2"):
        pytest.skip("no i386 loader (Debian: libc6-i386)")
    root = str(tmp_path_factory.mktemp("i386"))
    try:
        _build(root, """
echo 'int l(void) { return 0; }' > l.c
gcc -m32 -shared -fPIC -o lib/libl.so l.c -Wl,-soname,libl.so
echo 'int l(void); int refs(void) { return l(); } int main(void) { return 0; }' > m.c
gcc -m32 -o m m.c -Llib -Wl,--no-as-needed -ll '-Wl,-rpath,$ORIGIN/lib'
""")
    except RuntimeError:
        pytest.skip("gcc -m32 cannot link (Debian: gcc-multilib)")
    return root


def _ldsim_run(env: dict[str, str], prog: str, cwd: str) -> oracle.Outcome:
    """`ldsim run` as a command: it takes the profile of the program's PT_INTERP (the i386 loader's)."""
    return oracle.ldsim_run(prog, env, cwd)


@pytest.mark.parametrize("cats", ["files", "files,versions,scopes,reloc,statistics"])
def test_i386_trace(i386_world: str, cats: str) -> None:
    """A 32-bit loader prints the "dynamic: ... phnum:" fields sizeof (void *) * 2 = 8 wide
    (_dl_map_object_from_fd's %0*lx and %*u); ldsim printed x86-64's 16."""
    env = {**TRACE, "LD_DEBUG": cats}
    real, sim = oracle.run(["./m"], env, i386_world), _ldsim_run(env, "./m", i386_world)
    assert_same(_uncycled(real), _uncycled(sim))


@pytest.mark.parametrize("env", [{}, {"LD_DEBUG": "statistics"}, {**TRACE, "LD_DEBUG": "symbols"},
                                 {**TRACE, "LD_DEBUG": "unused"}, {**WARN, "LD_DEBUG": "files"}])
def test_i386_symbol_lookups(i386_world: str, env: dict[str, str]) -> None:
    """The i386 relocation engine (REL entries, the i386 vDSO's symbols, libc's start at GLIBC_2.0):
    ldsim had reported x86-64's lookups, or a false `symbol lookup error` for malloc@GLIBC_2.2.5 when the
    program was run, while the real program runs."""
    real, sim = oracle.run(["./m"], env, i386_world), _ldsim_run(env, "./m", i386_world)
    assert real.status == 0
    assert_same(_uncycled(real), _uncycled(sim))


def test_i386_ldd_r(i386_world: str) -> None:
    """ldd -r's LD_WARN relocation pass of a 32-bit program: the real one reports `undefined symbol: gone`
    (REL entries looked up), ldsim had seen no symbol table and reported nothing."""
    _build(f"{i386_world}/gone", """
echo 'int l(void) { return 0; } int gone(void) { return 1; }' > l.c
gcc -m32 -shared -fPIC -o lib/libl.so l.c -Wl,-soname,libl.so
echo 'int l(void); int gone(void); int refs(void) { return l() + gone(); } int main(void) { return 0; }' > m.c
gcc -m32 -o m m.c -Llib -Wl,--no-as-needed -ll '-Wl,-rpath,$ORIGIN/lib'
echo 'int l(void) { return 0; }' > l.c
gcc -m32 -shared -fPIC -o lib/libl.so l.c -Wl,-soname,libl.so
""")
    real = oracle.real_ldd(["-r", "./m"], {}, f"{i386_world}/gone")
    sim = oracle.ldsim_ldd(["-r", "./m"], {}, f"{i386_world}/gone")
    assert b"undefined symbol: gone" in real.stdout
    assert_same(real, sim)
