"""Differential tests of the library search rules (glibc-loader.md §2, §3, §8; peers.md §3 lab cases c1..c14).

Every case is a small world built with gcc into a temp dir; each run is compared, byte for byte after
masking addresses and PIDs, between the real loader (ldd; `ld.so PROG` with LD_TRACE_LOADED_OBJECTS=1
LD_DEBUG=libs; `ld.so PROG` executing a do-nothing program) and ldsim.  Nothing host-specific is pinned:
which glibc-hwcaps levels or which `$PLATFORM` apply is whatever the real loader does here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.materialize import Dir, File, LibSpec, ProgSpec, Symlink, WorldSpec
from tests.conformance.conftest import Run, assert_same, build_case_worlds, case_params, outcomes

pytestmark = pytest.mark.conformance

EXEC = ("ldd", "trace", "exec")
PLATFORMS = ("x86_64", "haswell", "xeon_phi")  # every AT_PLATFORM this loader can report (§0)
HWCAPS = ("x86-64-v4", "x86-64-v3", "x86-64-v2")
EM_AARCH64 = b"\xb7\x00"

Case = Callable[[str], tuple[WorldSpec, Sequence[Run]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def lib(path: str, soname: str | None = "", **kw) -> LibSpec:
    """A libc-free shared object whose soname defaults to its base name."""
    kw.setdefault("libc", False)
    return LibSpec(path, soname=os.path.basename(path) if soname == "" else soname, **kw)


def prog(path: str, *needed: str, **kw) -> ProgSpec:
    return ProgSpec(path, needed=needed, **kw)


# ------------------------------------------------------------------------------------------- names


@case
def slash_names(r: str):
    """A DT_NEEDED with '/' is opened as is (absolute, or relative to the cwd), never searched (§3.1)."""
    w = WorldSpec((
        prog("bin/m", f"{r}/lib/libsa.so", "lib/libsr.so", "./lib/libsr2.so", f"{r}/nope/libsn.so"),
        lib("lib/libsa.so", needed=("lib/libsr.so",)),
        lib("lib/libsr.so"), lib("lib/libsr2.so"),
    ))
    return w, [Run("bin/m", modes=EXEC), Run("{root}/bin/m", cwd="lib", name="other-cwd")]


@case
def loaded_by_soname(r: str):
    """c9: a NEEDED name equal to the DT_SONAME of an object already loaded reuses it (§2)."""
    w = WorldSpec((
        prog("bin/m", f"{r}/real/libc9s-real.so", "libc9s.so", "libc9u.so", rpath="$ORIGIN/../lib"),
        lib("real/libc9s-real.so", soname="libc9s.so"),
        lib("lib/libc9u.so", needed=("libc9s.so",)),
        lib("lib/libc9s.so"),  # same soname, never opened
    ))
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def loaded_by_file_identity(r: str):
    """The same file reached by another name (symlink, symlinked dir) is not loaded twice (§2 dev/ino)."""
    w = WorldSpec(
        (prog("bin/m", "libfa.so", "libfb.so", f"{r}/dirlink/libfa.so", rpath="$ORIGIN/../lib:$ORIGIN/../lib2"),
         lib("lib/libfa.so", soname=None, needed=("libfc.so", "libfd.so")),
         lib("lib/libfc.so", soname=None)),
        symlinks=(Symlink("lib2/libfb.so", "../lib/libfa.so"), Symlink("lib2/libfd.so", "../lib/libfc.so"),
                  Symlink("dirlink", "lib")),
    )
    return w, [Run("{root}/bin/m")]


@case
def rtld_by_another_path(r: str):
    """ld.so named by its PT_INTERP path or soname is the loader's own map; by another path to the same
    file it is mapped again (rtld's map has no dev/ino: rtld.c never sets its l_file_id)."""
    w = WorldSpec((
        prog("bin/interp", "/lib64/ld-linux-x86-64.so.2"),
        prog("bin/soname", "ld-linux-x86-64.so.2"),
        prog("bin/multiarch", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "libc.so.6"),
        prog("bin/viasymlink", "ld-rtld.so", rpath="$ORIGIN/../lib"),
    ), symlinks=(Symlink("lib/ld-rtld.so", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),))
    return w, [Run(f"{{root}}/bin/{p}") for p in ("interp", "soname", "multiarch", "viasymlink")]


@case
def program_by_its_own_name(r: str):
    """`ld.so PROG`: the program's map is named "" (_dl_new_object ignores the name under __RTLD_OPENEXEC),
    so a DT_NEEDED or preload naming PROG as given maps the file again, and LD_TRACE_LOADED_OBJECTS=2
    lists the program as "\t (0x...)" (§2)."""
    w = WorldSpec((prog("bin/m", "libpn.so", rpath="$ORIGIN/../lib"), prog("bin/mself", "bin/mself"),
                   lib("lib/libpn.so")))
    return w, [Run("bin/mself", name="needed", modes=("trace",)),
               Run("bin/m", {"LD_PRELOAD": "bin/m"}, name="preload"),
               Run("bin/m", {"LD_TRACE_LOADED_OBJECTS": "2"}, name="trace-program", modes=("trace",)),
               Run("bin/m", {"LD_TRACE_LOADED_OBJECTS": "2"}, name="trace-program-argv0", modes=("trace",),
                   args=("--argv0", "other"))]


@case
def libc_soname_impostor(r: str):
    """A library whose DT_SONAME is libc.so.6 answers the later libc.so.6 request by soname (§2); started
    for real, it is libc_map and lacks __libc_early_init: _dl_call_libc_early_init's assertion, exit 127."""
    w = WorldSpec((prog("bin/m", "libfakec.so", "libc.so.6", rpath="$ORIGIN/../lib"),
                   lib("lib/libfakec.so", soname="libc.so.6")))
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def static_program_direct(r: str):
    """`ld.so STATIC`: run normally it is chain-loaded with execve; traced, listed or under --help it goes on
    to audit_list_add_dynamic_tag, which reads the absent DT_STRTAB: SIGSEGV (after the vDSO lookups)."""
    w = WorldSpec((ProgSpec("bin/static", pie=False, cflags=("-static",)),
                   ProgSpec("bin/nolibc", pie=False, libc=False, cflags=("-static",)),
                   prog("bin/m", "libsp.so", rpath="$ORIGIN/../lib"), lib("lib/libsp.so")))
    return w, [Run("{root}/bin/static", modes=("trace", "exec"), name="static"),
               Run("{root}/bin/nolibc", modes=("trace", "exec"), name="nolibc"),
               Run("{root}/bin/static", modes=("trace",), name="list", args=("--list",)),
               Run("{root}/bin/static", {"LD_DEBUG": "bindings"}, modes=("trace",), name="help", args=("--help",)),
               Run("{root}/bin/m", {"LD_DEBUG": "bindings"}, modes=("trace",), name="help-dynamic",
                   args=("--help",))]


@case
def vdso_as_needed(r: str):
    """A DT_NEEDED "linux-vdso.so.1" names the vDSO's map (§2).  Needed by a library, the vDSO lands just
    before ld.so in the search list; run for real, putting ld.so back into the chain after it breaks
    dl_main's assertion (the vDSO's chain successor is not the list's next object): exit 127."""
    w = WorldSpec((prog("bin/v", "linux-vdso.so.1"),
                   prog("bin/v2", "libvd.so", rpath="$ORIGIN/../lib"), lib("lib/libvd.so", needed=("linux-vdso.so.1",))))
    return w, [Run("{root}/bin/v", modes=EXEC), Run("{root}/bin/v2", modes=EXEC)]


# ------------------------------------------------------------------------------------ RPATH/RUNPATH


@case
def rpath_of_requester(r: str):
    """The requesting object's DT_RPATH is searched first (§3.1)."""
    w = WorldSpec((
        prog("bin/m", "librq_a.so", rpath="$ORIGIN/../a"),
        lib("a/librq_a.so", needed=("librq_b.so",), rpath="$ORIGIN/../b"),
        lib("b/librq_b.so"),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def rpath_inherited(r: str):
    """c1: the exe's RPATH serves a grandchild; c2: an intermediate loader's RPATH is inherited."""
    w = WorldSpec((
        prog("bin/m1", "libc1b.so", rpath="$ORIGIN/../A"),
        lib("A/libc1b.so", needed=("libc1c.so",)),
        lib("A/libc1c.so"),
        prog("bin/m2", "libc2b.so", rpath="$ORIGIN/../A2"),
        lib("A2/libc2b.so", needed=("libc2d.so",), rpath="$ORIGIN/../B2:$ORIGIN/../C2"),
        lib("B2/libc2d.so", needed=("libc2e.so",)),
        lib("C2/libc2e.so", needed=("libc2f.so",)),
        lib("A2/libc2f.so"),
    ))
    return w, [Run("{root}/bin/m1", modes=EXEC), Run("{root}/bin/m2", modes=EXEC),
               Run("{root}/bin/m2", modes=("trace",), name="inhibit-rpath",
                   args=("--inhibit-rpath", "{root}/bin/../A2/libc2b.so"))]


@case
def runpath_blocks_rpath(r: str):
    """c4: a loader with DT_RUNPATH disables every RPATH, the exe's included (§3.1)."""
    w = WorldSpec((
        prog("bin/m", "libc4b.so", "libc4x.so", rpath="$ORIGIN/../A"),
        lib("A/libc4b.so", needed=("libc4c.so",), runpath="$ORIGIN/../nowhere"),
        lib("A/libc4x.so", needed=("libc4c.so",), runpath="$ORIGIN/../R"),
        lib("A/libc4c.so"),
        lib("R/libc4y.so"),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def rpath_and_runpath(r: str):
    """c14: an object with both DT_RPATH and DT_RUNPATH uses only the RUNPATH, for itself and below."""
    w = WorldSpec((
        prog("bin/m", "libc14a.so", "libc14b.so", rpath="$ORIGIN/../A", runpath="$ORIGIN/../B"),
        lib("A/libc14a.so"),
        lib("B/libc14b.so", needed=("libc14c.so",)),
        lib("A/libc14c.so"),
        prog("bin/m2", "libc14x.so", rpath="$ORIGIN/../A2"),
        lib("A2/libc14x.so", needed=("libc14y.so", "libc14z.so"), rpath="$ORIGIN/../D", runpath="$ORIGIN/../E"),
        lib("D/libc14y.so"), lib("E/libc14z.so"),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC), Run("{root}/bin/m2")]


@case
def runpath_not_inherited(r: str):
    """c3: DT_RUNPATH serves only the object's own DT_NEEDED (§3.1)."""
    w = WorldSpec((
        prog("bin/m", "libc3b.so", runpath="$ORIGIN/../A"),
        lib("A/libc3b.so", needed=("libc3c.so",)),
        lib("A/libc3c.so"),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def path_element_syntax(r: str):
    """Trailing '/' stripped, `a//b` kept, relative and empty (= cwd) elements, duplicates dropped, an
    empty RPATH disables the tag, and a dir shared by two lists keeps its first label (§3.2, §3.3)."""
    w = WorldSpec((
        prog("bin/m", "libps1.so", "libps2.so", "libps3.so", "libps4.so",
             rpath="$ORIGIN/../A/:$ORIGIN/../A:rel::$ORIGIN/../B//"),
        prog("bin/me", "libps1.so", rpath=""),
        prog("bin/mshared", "libps1.so", "libps4.so", rpath=f"{r}/A"),
        lib("A/libps1.so"), lib("rel/libps2.so"), lib("libps3.so"), lib("B/libps4.so"),
    ))
    return w, [Run("bin/m"), Run("bin/me", {"LD_LIBRARY_PATH": "{root}/A"}),
               Run("{root}/bin/mshared", {"LD_LIBRARY_PATH": "{root}/A:{root}/B/"})]


@case
def nonexistent_dirs(r: str):
    """Missing dirs are tried once, then remembered as nonexisting; an all-missing RPATH is dropped (§3.2)."""
    w = WorldSpec((
        prog("bin/m", "libne1.so", "libne2.so", "libne3.so",
             rpath="$ORIGIN/../gone1:$ORIGIN/../D:/nonexistent/x:$ORIGIN/../D2"),
        lib("D/libne1.so", needed=("libne4.so",)),
        lib("D2/libne2.so"), lib("D/libne3.so"), lib("D2/libne4.so"),
        prog("bin/m2", "libne1.so", rpath="$ORIGIN/../gone1:$ORIGIN/../gone2"),
    ))
    return w, [Run("{root}/bin/m"), Run("{root}/bin/m2", {"LD_LIBRARY_PATH": "{root}/gone3:{root}/D:{root}/D2"})]


@case
def root_dir_element(r: str):
    """"/" as a search dir: open_path's directory check cuts "/NAME" to "" and stat("") fails, so after its
    first miss "/" (not its subdirs) is marked nonexisting and no longer searched or shown (§3.2)."""
    w = WorldSpec((
        prog("bin/m", "librd1.so", "librd2.so", "librd3.so"),
        prog("bin/mr", "librd1.so", "librd2.so", rpath="/:$ORIGIN/../d"),
        lib("d/librd1.so"), lib("d/librd2.so", needed=("librd3.so",)), lib("d/librd3.so"),
    ))
    return w, [Run("{root}/bin/m", {"LD_LIBRARY_PATH": "/:{root}/d"}, modes=EXEC),
               Run("{root}/bin/m", {"LD_LIBRARY_PATH": "//:{root}/d:/"}, name="twice"),
               Run("{root}/bin/mr", modes=EXEC, name="rpath")]


# ------------------------------------------------------------------------------------ LD_LIBRARY_PATH


@case
def ld_library_path(r: str):
    """':' and ';' separators, relative dirs, and LD_LIBRARY_PATH between RPATH and RUNPATH (§3.4)."""
    w = WorldSpec((
        prog("bin/m", "libl1.so", "libl2.so", "libl3.so"),
        lib("d1/libl1.so"), lib("d2/libl2.so"), lib("d3/libl3.so"),
        lib("d4/libl1.so"),
        prog("bin/mr", "libl1.so", "libl2.so", "libl3.so", rpath="$ORIGIN/../d4"),
        prog("bin/mu", "libl1.so", "libl2.so", "libl3.so", runpath="$ORIGIN/../d4"),
    ))
    colon = {"LD_LIBRARY_PATH": "{root}/d1:{root}/nonex:{root}/d2:{root}/d3"}
    return w, [
        Run("{root}/bin/m", colon, name="colon"),
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": "{root}/d1;{root}/d2;{root}/d3"}, name="semicolon"),
        Run("bin/m", {"LD_LIBRARY_PATH": "d1:d2;d3"}, name="relative"),
        Run("{root}/bin/mr", colon, name="rpath-first"),
        Run("{root}/bin/mu", colon, name="runpath-last"),
        Run("{root}/bin/mr", {"LD_LIBRARY_PATH": "{root}/d4"}, modes=("trace",), name="library-path-option",
            args=("--library-path", "{root}/d1:{root}/d2;{root}/d3")),
    ]


@case
def ld_library_path_empty_element(r: str):
    """c11: an empty element is the cwd; ldd then prints `libx.so (0x...)` without `=>` (§8)."""
    w = WorldSpec((prog("bin/m", "libc11e.so"), lib("w/libc11e.so")))
    return w, [
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": ":"}, cwd="w", modes=EXEC, name="colon"),
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": "{root}/nonex;"}, cwd="w", name="trailing-semicolon"),
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": "{root}/bin::{root}/nonex"}, cwd="w", name="middle"),
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": ""}, cwd="w", name="empty-string"),
    ]


@case
def ld_library_path_dsts(r: str):
    """DSTs in LD_LIBRARY_PATH expand against the main program; unknown `$X` stays literal (§3.4, §3.6)."""
    objs = [prog("bin/m", "libld1.so", "libld2.so", "libld3.so", "libld4.so", "libld5.so"),
            lib("lib/libld1.so"), lib("x/libld2.so"), lib("lx/lib/x86_64-linux-gnu/libld3.so")]
    objs += [lib(f"p/{p}/libld4.so") for p in PLATFORMS] + [lib(f"q/{p}/libld5.so") for p in PLATFORMS]
    llp = "$ORIGIN/../lib:${ORIGIN}/../x:{root}/lx/$LIB:{root}/p/$PLATFORM:{root}/q/${PLATFORM}:$FOO/x:$ORIGINX"
    return WorldSpec(tuple(objs)), [Run("{root}/bin/m", {"LD_LIBRARY_PATH": llp})]


# ------------------------------------------------------------------------------------------- DSTs


@case
def dst_lib_platform(r: str):
    """c6: `$LIB`/`${LIB}`, `$PLATFORM`/`${PLATFORM}` in RPATH, RUNPATH and DT_NEEDED (§3.6)."""
    objs = [
        prog("bin/m", "libc6a.so", "libc6b.so", "libc6c.so", "libc6d.so",
             rpath="$ORIGIN/../$LIB:${ORIGIN}/../x/${LIB}:$ORIGIN/../p/$PLATFORM:${ORIGIN}/../q/${PLATFORM}"),
        prog("bin/m2", "$ORIGIN/../n/libc6n.so", "${ORIGIN}/../n/libc6m.so", "$ORIGINX/libc6z.so",
             "$ORIGIN/../p/$PLATFORM/libc6c.so"),
        prog("bin/m3", "libc6a.so", "libc6r.so", runpath="${ORIGIN}/../${LIB}:$ORIGIN/../r/$PLATFORM"),
        lib("lib/x86_64-linux-gnu/libc6a.so"), lib("x/lib/x86_64-linux-gnu/libc6b.so"),
        lib("n/libc6n.so"), lib("n/libc6m.so"),
    ]
    for p in PLATFORMS:
        objs += [lib(f"p/{p}/libc6c.so"), lib(f"q/{p}/libc6d.so"), lib(f"r/{p}/libc6r.so")]
    return WorldSpec(tuple(objs)), [Run("{root}/bin/m"), Run("{root}/bin/m2"), Run("{root}/bin/m3")]


@case
def origin_of_symlinked_lib(r: str):
    """c5b: `$ORIGIN` of a library opened via a symlink is the symlink's directory (§3.6)."""
    w = WorldSpec(
        (prog("bin/m", "libc5o.so", "libc5p.so", rpath="$ORIGIN/../links"),
         lib("real/libc5o.so", needed=("libc5d.so",), runpath="$ORIGIN/dep"),
         lib("real/libc5p.so", needed=("libc5q.so",), rpath="${ORIGIN}/dep"),
         lib("links/dep/libc5d.so"), lib("links/dep/libc5q.so")),
        symlinks=(Symlink("links/libc5o.so", "../real/libc5o.so"), Symlink("links/libc5p.so", "../real/libc5p.so")),
    )
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def origin_of_symlinked_exe(r: str):
    """c13: in ldd / `ld.so PROG` mode the main program's `$ORIGIN` comes from the path given (§3.6, peers §3)."""
    w = WorldSpec(
        (prog("real/bin/m", "libc13.so", rpath="$ORIGIN/../lib"), lib("real/lib/libc13.so")),
        symlinks=(Symlink("other/m", "../real/bin/m"), Symlink("abs/m", f"{r}/real/bin/m")),
    )
    return w, [Run("{root}/other/m", modes=EXEC), Run("abs/m", name="relative"),
               Run("{root}/real/bin/m", name="direct")]


# ----------------------------------------------------------------------------------- candidates


@case
def wrong_class_and_machine(r: str):
    """c8: 32-bit and foreign-machine candidates earlier in the path are skipped (§3.9)."""
    w = WorldSpec((
        lib("d32/libc8.so", m32=True), lib("dm/libc8.so", patches=((18, EM_AARCH64),)), lib("d64/libc8.so"),
        prog("bin/m", "libc8.so", rpath="$ORIGIN/../dm:$ORIGIN/../d32:$ORIGIN/../d64"),
        lib("d32/libc8x.so", m32=True), prog("bin/m32only", "libc8x.so", rpath="$ORIGIN/../d32"),
        lib("dm/libc8y.so", patches=((18, EM_AARCH64),)), prog("bin/mforeign", "libc8y.so", rpath="$ORIGIN/../dm"),
    ))
    return w, [
        Run("{root}/bin/m", modes=EXEC),
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": "{root}/d32:{root}/dm"}, name="llp"),
        Run("{root}/bin/m32only", modes=EXEC),
        Run("{root}/bin/mforeign", modes=EXEC),
    ]


@case
def broken_candidates(r: str):
    """Fatal candidates stop the search: too short, not ELF, a directory (§3.9, §3.10)."""
    objs = [lib("good/libbad.so"), lib("short/libbad.so", truncate=40)]
    for d in ("t", "n", "d", "short"):
        objs.append(prog(f"bin/m_{d}", "libbad.so", rpath=f"$ORIGIN/../{d}:$ORIGIN/../good"))
    files = (File("t/libbad.so", b"\x7fELF\x02\x01\x01"), File("n/libbad.so", b"not an ELF file\n" * 8),
             Dir("d/libbad.so"))
    return WorldSpec(tuple(objs), files=files), [Run(f"{{root}}/bin/m_{d}", modes=EXEC, name=d)
                                                for d in ("t", "n", "d", "short")]


@case
def nodeflib(r: str):
    """c10: DF_1_NODEFLIB of the requester skips the system dirs and system-dir cache hits (§3.7)."""
    w = WorldSpec((
        prog("bin/m", "libc10n.so", rpath="$ORIGIN/../A"),
        lib("A/libc10n.so", needed=("libm.so.6",), nodeflib=True),
        prog("bin/m2", "libc10o.so", nodeflib=True),  # the exe's own flag: libc.so.6 from the cache is refused
        lib("A/libc10o.so"),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC), Run("{root}/bin/m2", {"LD_LIBRARY_PATH": "{root}/A"}, modes=EXEC)]


@case
def hwcaps_subdirs(r: str):
    """c7: glibc-hwcaps/x86-64-vN subdirs the CPU supports come first (§3.5); prepend and mask options."""
    objs = [prog("bin/m", "libc7h.so", "libc7i.so", "libc7j.so", rpath="$ORIGIN/../D"),
            lib("D/libc7h.so"), lib("D/libc7i.so"), lib("D/libc7j.so"),
            lib("D/glibc-hwcaps/x86-64-v2/libc7i.so"), lib("D/glibc-hwcaps/x86-64-v4/libc7j.so"),
            lib("D/glibc-hwcaps/extra/libc7h.so")]
    objs += [lib(f"D/glibc-hwcaps/{h}/libc7h.so") for h in HWCAPS]
    return WorldSpec(tuple(objs)), [
        Run("{root}/bin/m", modes=EXEC),
        Run("{root}/bin/m", {"LD_LIBRARY_PATH": "{root}/D"}, name="llp"),
        Run("{root}/bin/m", name="prepend", modes=("trace",),
            args=("--glibc-hwcaps-prepend", "extra:x")),
        Run("{root}/bin/m", name="mask", modes=("trace",),
            args=("--glibc-hwcaps-mask", "x86-64-v2")),
    ]


@case
def legacy_subdirs(r: str):
    """Legacy tls/ and platform/hwcap subdirs are still searched in 2.36 (§3.5)."""
    w = WorldSpec((
        prog("bin/m", "libl20a.so", "libl20b.so", "libl20c.so", "libl20d.so", rpath="$ORIGIN/../D"),
        lib("D/tls/libl20a.so"), lib("D/libl20a.so"), lib("D/x86_64/libl20b.so"),
        lib("D/tls/x86_64/libl20c.so"), lib("D/x86_64/libl20c.so"), lib("D/x86_64/x86_64/libl20d.so"),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC)]


@case
def missing_library(r: str):
    """`=> not found` under ldd; exit 127 with the error message in a normal run (§3.10)."""
    w = WorldSpec((
        prog("bin/m", "libmiss1.so", "libmiss2.so.3"),
        prog("bin/m2", "libmhas.so", rpath="$ORIGIN/../A"), lib("A/libmhas.so", needed=("libmiss3.so",)),
    ))
    return w, [Run("{root}/bin/m", modes=EXEC), Run("bin/m2", modes=EXEC)]


# ------------------------------------------------------------------------------------------- driver


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, tuple[str, Sequence[Run]]]:
    """Build every case's world once, concurrently, each in its own directory."""
    return build_case_worlds(str(tmp_path_factory.mktemp("search_rules")), CASES)


@pytest.fixture(scope="module")
def results(worlds, request) -> dict[tuple[str, int, str], tuple]:
    """Outcomes of the selected tests, computed concurrently (each is one or two processes)."""
    keys = [tuple(item.callspec.params[k] for k in ("case_name", "run_index", "mode"))
            for item in request.session.items
            if item.module is request.module and hasattr(item, "callspec")]

    def one(key):
        name, i, mode = key
        root, runs = worlds[name]
        return key, outcomes(runs[i], mode, root)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, keys))


@pytest.mark.parametrize(("case_name", "run_index", "mode"), case_params(CASES))
def test_search_rule(results, case_name: str, run_index: int, mode: str) -> None:
    real, sim = results[(case_name, run_index, mode)]
    assert_same(real, sim)
