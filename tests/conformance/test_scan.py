"""`ldsim scan` against the real loader: what the scan calls a resolution problem (missing library, missing
version, load error) must be exactly what the real loader reports for the same file — programs executed
with LD_TRACE_LOADED_OBJECTS=1 (exec mode: $ORIGIN from the real path), libraries as `ld.so LIB` traced.

Two roots: this machine (`--root /`: the default bin and lib dirs) and a planted sysroot, built with gcc,
run by the real loader under chroot(2), where every planted problem (missing library, missing version,
wrong class, set-user-ID program with a writable RUNPATH dir, secure-mode difference, relative and empty
RPATH entries, LD_LIBRARY_PATH-only library, hostile files) must be reported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import detect_host_cpu
from ldsim.linkmap import FileCache
from ldsim.materialize import LibSpec, ProgSpec, Symlink, WorldSpec, build_world
from ldsim import scan as scan_mod
from ldsim.scan import ProblemKind, ScanOptions, ScanResult, Target, discover, scan
from ldsim.world import make_world

pytestmark = pytest.mark.conformance
RTLD = DEBIAN_X86_64.rtld
RTLD32 = "/lib/ld-linux.so.2"
TRACE = {"LD_TRACE_LOADED_OBJECTS": "1"}
BIND_NOW = {"LD_WARN": "yes", "LD_BIND_NOW": "yes"}  # what ldd -r adds
_UNRESOLVED = re.compile(r"^((?:undefined symbol: |symbol ).*)\t\((.*)\)$", re.M)
_NOT_FOUND = re.compile(r"^\t(.*) => not found$", re.M)
_VERSION = re.compile(r"(?:(?:weak )?version `.*' not found|no version information available) \(required by .*\)$")


def inv_for(env: dict[str, str] | None = None) -> Invocation:
    return Invocation(env=tuple((env or {}).items()), cwd="/", pid=1, cpu=detect_host_cpu(),
                      profile=DEBIAN_X86_64)


def real_problems(kind: str, path: str, env: dict[str, str], root: str | None,
                  symbols: bool = True) -> set[tuple[str, str]]:
    """What the real loader reports for one file: ('missing', NAME), ('version', 'DEFINER: MESSAGE'),
    ('status', N) for a fatal exit."""
    setid = os.stat(path if root is None else root + path).st_mode & 0o6000
    # a set-ID exec is secure, and a secure trace request only exits 5: trace set-ID programs through ld.so
    # (a 32-bit file: the i386 loader, as ldd's RTLDLIST picks it)
    with open(path if root is None else root + path, "rb") as f:
        rtld = RTLD32 if f.read(5)[4:] == b"\x01" else RTLD
    argv = [path] if kind == "program" and not setid else [rtld, path]
    enter = None
    if root is not None:  # chroot(2) in the child: a chroot program would itself be traced
        def enter() -> None:
            os.chroot(root)
            os.chdir("/")
    p = subprocess.run(argv, env={**env, **TRACE, **(BIND_NOW if symbols else {})}, capture_output=True,
                       timeout=60, preexec_fn=enter)
    out = p.stdout.decode("utf-8", "surrogateescape")
    err = p.stderr.decode("utf-8", "surrogateescape")
    found = {("missing", n) for n in _NOT_FOUND.findall(out)}
    prefix = f"{path}: "
    for line in (out + err).splitlines():
        if line.startswith(prefix) and _VERSION.search(line):
            found.add(("version", line[len(prefix):]))
    for name in re.findall(rf"^{re.escape(path)}: Symbol `(.*)' has different size in shared object", err, re.M):
        found.add(("copy-size", name))
    for name in re.findall(r"^warning: (?:copy relocation against non-copyable protected symbol|direct reference "
                           r"to protected function) `(.*)' in ", err, re.M):
        found.add(("protected", name))
    for name in re.findall(r"^ERROR: ld.so: object '(.*)' from .* cannot be preloaded ", err, re.M):
        found.add(("preload", name))
    for message, objname in _UNRESOLVED.findall(out + err):
        if objname == path:  # the scan reports each reference in the file it is scanning
            found.add(("symbol", message))
    if p.returncode not in (0,):
        found.add(("status", str(p.returncode)))
    return found


def sim_problems(res: ScanResult) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for f in res.findings:
        s = out.setdefault(f.file, set())
        if f.kind in (ProblemKind.MISSING_LIBRARY, ProblemKind.WRONG_CLASS):
            s.add(("missing", f.subject))
        elif f.kind is ProblemKind.MISSING_VERSION:
            s.add(("version", f.detail))
        elif f.kind is ProblemKind.UNDEFINED_SYMBOL:
            s.add(("symbol", f.detail))
        elif f.kind is ProblemKind.COPY_SIZE:
            s.add(("copy-size", f.subject))
        elif f.kind is ProblemKind.PROTECTED_REFERENCE:
            s.add(("protected", f.subject))
        elif f.kind is ProblemKind.PRELOAD_IGNORED:
            s.add(("preload", f.subject))
        elif f.kind is ProblemKind.LOAD_ERROR:
            s.add(("status", str(f.status)))
    return out


def targets_of(world, inv, opts: ScanOptions) -> list[Target]:
    """The files a scan resolves, found the way scan() finds them."""
    from ldsim.scan import ScanStats, companion_invocations, default_dirs
    notes: list = []
    stats = ScanStats()
    files = FileCache()
    invs = companion_invocations(world, inv)
    tops = opts.paths or default_dirs(world, inv, notes, invs.values())
    out = discover(world, inv, files, tops, bool(opts.paths), bool(opts.paths), notes, stats, tuple(invs))
    return out


def compare(res: ScanResult, targets: list[Target], env: dict[str, str], root: str | None,
            symbols: bool = True) -> list[str]:
    sim = sim_problems(res)
    with ThreadPoolExecutor(max_workers=8 if root is None else 1) as pool:  # preexec_fn: no threads
        reals = list(pool.map(lambda t: real_problems(t.kind, t.path, env, root, symbols), targets))
    bad = []
    for t, real in zip(targets, reals):
        mine = sim.get(t.path, set())
        if mine != real:
            bad.append(f"{t.kind} {t.path}\n  real:  {sorted(real)}\n  ldsim: {sorted(mine)}")
    return bad


# ---------------------------------------------------------------------------------------- this machine


def test_this_machine_reports_nothing_the_real_loader_does_not() -> None:
    """`ldsim scan --root /` (default dirs, empty environment): resolution problems per file (missing
    libraries and versions, load errors, undefined symbols of the file's own references under immediate
    binding) equal the real loader's (`ldd -r`'s settings); no input errors."""
    world = make_world("/", "/")
    inv = inv_for()
    res = scan(world, inv, ScanOptions(check_symbols=False), FileCache())
    targets = targets_of(world, inv, ScanOptions())
    assert len(targets) > 100
    bad = compare(res, targets, {}, None, symbols=False)
    print(f"{len(targets) - len(bad)}/{len(targets)} files: same problems as the real loader; "
          f"{len(res.findings)} findings")
    assert not bad, "\n".join(bad[:10]) + f"\n... {len(bad)} files differ"
    unexpected = [f for f in res.findings if f.kind.group == "input"]
    assert not unexpected, unexpected[:10]


def test_this_machine_undefined_symbols_sample() -> None:
    """Undefined symbols under immediate binding (the slow check: one file in SAMPLE of the default dirs,
    every file with LDSIM_SCAN_SAMPLE=1) equal what the real loader prints with ldd -r's settings."""
    world = make_world("/", "/")
    inv = inv_for()
    every = int(os.environ.get("LDSIM_SCAN_SAMPLE", "5"))
    targets = targets_of(world, inv, ScanOptions())[::every]
    res = scan(world, inv, ScanOptions(paths=[t.path for t in targets], jobs=2), FileCache())  # forked checks
    assert res.symbols_checked
    bad = compare(res, targets, {}, None)
    print(f"{len(targets) - len(bad)}/{len(targets)} files (1 in {every}): same undefined symbols, "
          f"versions and missing libraries as the real loader")
    assert not bad, "\n".join(bad[:10]) + f"\n... {len(bad)} files differ"


# ---------------------------------------------------------------------------------------- planted root


LIBDIR = "usr/lib/x86_64-linux-gnu"


def lib(path: str, **kw) -> LibSpec:
    kw.setdefault("libc", False)
    return LibSpec(path, soname=os.path.basename(path), **kw)


def prog(path: str, *needed: str, **kw) -> ProgSpec:
    kw.setdefault("libc", False)
    return ProgSpec(path, needed=needed, **kw)


def planted_spec() -> WorldSpec:
    return WorldSpec(
        (
            lib(f"{LIBDIR}/libok.so"),
            prog("usr/bin/p_ok", "libok.so"),
            prog("usr/bin/p_missing", "libok.so", "libnothere.so.1"),
            lib(f"{LIBDIR}/libchain.so", needed=("libalsonothere.so",)),
            prog("usr/bin/p_chain", "libchain.so"),
            lib(f"{LIBDIR}/libv.so", defines=("vfun@@V_TWO",), versions=(("V_TWO", None),)),
            prog("usr/bin/p_version", "libv.so", uses=("vfun",)),
            lib(f"{LIBDIR}/libu.so", defines=("ufun", "keep")),
            prog("usr/bin/p_undef", "libu.so", uses=("ufun", "keep")),
            lib(f"{LIBDIR}/lib32only.so", m32=True),
            prog("usr/bin/p_class", "lib32only.so"),
            lib("opt/plug/libplug.so"),
            prog("usr/bin/p_suid", "libplug.so", runpath="/opt/plug"),
            lib("usr/priv/libpriv.so"),
            prog("usr/bin/p_suid_origin", "libpriv.so", runpath="$ORIGIN/../priv"),
            lib("usr/rel/librel.so"),
            prog("usr/bin/p_relative", "librel.so", rpath="usr/rel:/usr/rel::"),
            lib("opt/llp/libllp.so"),
            prog("usr/bin/p_llp", "libllp.so"),
        ),
        symlinks=(Symlink("usr/bin/loop", "loop"), Symlink("usr/bin/up", "../../../../../../etc")),
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("planted"))
    build_world(planted_spec(), root)
    # the version the program was linked against is replaced by an older library without it
    other = str(tmp_path_factory.mktemp("older"))
    build_world(WorldSpec((lib("libv.so", defines=("vfun@@V_ONE",), versions=(("V_ONE", None),)),
                           lib("libu.so", defines=("keep",)))), other)
    shutil.copy(f"{other}/libv.so", f"{root}/{LIBDIR}/libv.so")
    shutil.copy(f"{other}/libu.so", f"{root}/{LIBDIR}/libu.so")  # ufun is gone: undefined under BIND_NOW
    os.makedirs(f"{root}/lib64")
    shutil.copy(os.path.realpath(RTLD), f"{root}{RTLD}")
    for name in ("lib", "bin", "sbin"):
        os.symlink(f"usr/{name}", f"{root}/{name}")
    os.chmod(f"{root}/opt/plug", 0o777)
    os.chmod(f"{root}/usr/bin/p_suid", 0o4755)
    os.chmod(f"{root}/usr/bin/p_suid_origin", 0o4755)
    # hostile input among the files
    os.mkfifo(f"{root}/usr/bin/fifo")
    os.mknod(f"{root}/{LIBDIR}/libdev.so", 0o644 | 0o020000, os.makedev(1, 3))
    with open(f"{root}/{LIBDIR}/libtrunc.so", "wb") as f:
        f.write(open(f"{root}/{LIBDIR}/libok.so", "rb").read()[:40])
    with open(f"{root}/{LIBDIR}/libliar.so", "wb") as f:
        data = bytearray(open(f"{root}/{LIBDIR}/libok.so", "rb").read())
        data[56:58] = (0xFFFF).to_bytes(2, "little")  # e_phnum lies
        f.write(data)
    open(f"{root}/{LIBDIR}/libempty.so", "wb").close()
    return root


def test_planted_root_every_problem_reported(planted: str) -> None:
    world = make_world(planted, "/")
    inv = inv_for({"LD_LIBRARY_PATH": "/opt/llp"})
    res = scan(world, inv, ScanOptions(rooted=True), FileCache())
    got = {(f.kind, f.file, f.subject) for f in res.findings}
    kinds = {(f.kind, f.file) for f in res.findings}
    expected = {
        (ProblemKind.MISSING_LIBRARY, "/usr/bin/p_missing", "libnothere.so.1"),
        (ProblemKind.MISSING_LIBRARY, "/usr/bin/p_chain", "libalsonothere.so"),
        (ProblemKind.MISSING_VERSION, "/usr/bin/p_version", "V_TWO"),
        (ProblemKind.UNDEFINED_SYMBOL, "/usr/bin/p_undef", "ufun"),
        (ProblemKind.WRONG_CLASS, "/usr/bin/p_class", "lib32only.so"),
        (ProblemKind.RPATH_WRITABLE, "/usr/bin/p_suid", "RUNPATH '/opt/plug'"),
        (ProblemKind.RPATH_RELATIVE, "/usr/bin/p_relative", "RPATH 'usr/rel'"),
        (ProblemKind.RPATH_EMPTY, "/usr/bin/p_relative", "RPATH ''"),
        (ProblemKind.LIBRARY_PATH_ONLY, "/usr/bin/p_llp", "libllp.so"),
    }
    assert expected <= got, sorted(expected - got)
    assert (ProblemKind.SECURE_MODE_DIFFERS, "/usr/bin/p_suid_origin") in kinds
    assert (ProblemKind.SECURE_MODE_DIFFERS, "/usr/bin/p_llp") not in kinds  # not set-user-ID
    bad_inputs = {f.file for f in res.findings if f.kind is ProblemKind.BAD_FILE}
    assert {"/usr/bin/fifo", f"/{LIBDIR}/libdev.so", f"/{LIBDIR}/libtrunc.so", f"/{LIBDIR}/libliar.so",
            "/usr/bin/loop"} <= bad_inputs
    assert not any(f.file in ("/usr/bin/p_ok", f"/{LIBDIR}/libok.so") for f in res.findings)


def test_forked_checks_find_what_one_process_finds(planted: str, monkeypatch) -> None:
    """`jobs` > 1 (the CLI's default on a multi-CPU machine): the same findings, in the same order."""
    monkeypatch.setattr(scan_mod, "_MIN_SHARE", 1)  # the planted root is small: fork for a few files
    world = make_world(planted, "/")
    inv = inv_for({"LD_LIBRARY_PATH": "/opt/llp"})
    one = scan(world, inv, ScanOptions(rooted=True), FileCache())
    forked = scan(world, inv, ScanOptions(rooted=True, jobs=3), FileCache())
    assert len(one.findings) > 10
    assert forked.findings == one.findings
    assert forked.stats == one.stats


@pytest.fixture
def proc_mounted(planted: str):
    """/proc inside the planted root: ld.so reads $ORIGIN of a program from /proc/self/exe."""
    target = f"{planted}/proc"
    os.makedirs(target, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", "/proc", target], capture_output=True).returncode:
        pytest.skip("needs root and bind mounts (chroot with /proc)")
    try:
        yield planted
    finally:
        subprocess.run(["umount", "-l", target], capture_output=True)


def test_planted_root_against_the_real_loader_in_chroot(proc_mounted: str) -> None:
    """The real loader, chrooted into the planted root, reports the same resolution problems per file."""
    planted = proc_mounted
    world = make_world(planted, "/")
    env = {"LD_LIBRARY_PATH": "/opt/llp"}
    inv = inv_for(env)
    res = scan(world, inv, ScanOptions(rooted=True), FileCache())
    targets = targets_of(world, inv, ScanOptions())
    assert {t.path for t in targets} >= {"/usr/bin/p_missing", "/usr/bin/p_version", "/usr/bin/p_class"}
    bad = compare(res, targets, env, planted)
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------------------- near-problems


def near_spec() -> WorldSpec:
    """Files each built to trip one rule of the trace; the verdict is the real loader's, per file."""
    rp = "$ORIGIN/../lib"
    return WorldSpec((
        lib("lib/libfiltee.so", defines=("ff",)),
        # a missing DT_AUXILIARY filtee: optional when run, yet faked and listed "not found" by the trace
        lib("lib/libaux.so", needed=("libc.so.6",), defines=("ff",), cflags=("-Wl,-f,libauxmissing.so",)),
        prog("bin/p_aux", "libaux.so", uses=("ff",), runpath=rp),
        # a main object without DT_NEEDED: the trace says "statically linked", its filtees unlisted
        lib("lib/libfilt.so", defines=("ff",), cflags=("-Wl,-F,libfiltmissing.so",)),
        prog("bin/p_filt", "libfilt.so", uses=("ff",), runpath=rp),
        # a reference of version VX found in a libvx.so without versions: check_match's assertion
        lib("lib/libvx.so", defines=("vx@@VX",)),
        prog("bin/p_vermissing", "libvx.so", uses=("vx",), runpath=rp),
        # a version needed of libvB.so, which nothing loads: _dl_check_map_versions' assertion
        lib("lib/libvB.so", defines=("vb@@VB",)),
        lib("lib/libvA.so", defines=("va",)),
        prog("bin/p_verother", "libvA.so", "libvB.so", uses=("va", "vb"), runpath=rp),
        # the same assertion stops ld.so before its listing: a missing library is never printed
        prog("bin/p_verother_missing", "libvA.so", "libvB.so", "libnothere.so", uses=("va", "vb"), runpath=rp),
        # an initial-exec TLS reference bound to a plain symbol of a library without PT_TLS: SIGFPE
        lib("lib/libtt.so", defines=("tls:tt",)),
        lib("lib/libtq.so", defines=("data:tt",)),  # becomes lib/libtt.so
        prog("bin/p_tls_plain", "libtt.so", uses=("tls:tt",), runpath=rp),
        # copy relocations of data whose definition grew (always warned) or shrank (warned under LD_WARN)
        lib("lib/libgrow.so", defines=("data:cv",)),
        lib("lib/libwide.so", defines=("wide,data:cv",)),  # becomes lib/libgrow.so
        prog("bin/p_copy_grew", "libgrow.so", uses=("data:cv",), runpath=rp),
        lib("lib/libshrink.so", defines=("wide,data:cw",)),
        lib("lib/libnarrow.so", defines=("data:cw",)),  # becomes lib/libshrink.so
        prog("bin/p_copy_shrank", "libshrink.so", uses=("wide,data:cw",), runpath=rp),
        # a copy relocation against data made protected since the program was linked
        lib("lib/libpd.so", defines=("data:pd",)),
        lib("lib/libpdp.so", defines=("protected,data:pd",)),  # becomes lib/libpd.so
        prog("bin/p_copy_protected", "libpd.so", uses=("data:pd",), runpath=rp),
        # PT_INTERP names a copy of this loader: resolved like any program (the scan passed over it)
        # a non-PIE program's canonical PLT address of a function made protected since (see `near`)
        lib("lib/libpf.so", defines=("pf",)),
        lib("lib/libpfp.so", defines=("protected:pf",)),  # becomes lib/libpf.so
        prog("bin/p_own_loader", "libfiltee.so", "libnothere.so", uses=("ff",), runpath=rp),
        # one file, two directories (a hard link; a symbolic link): $ORIGIN finds libfiltee.so from one
        lib("lib/libor.so", needed=("libfiltee.so",), runpath="$ORIGIN"),
        prog("bin/p_or", "libfiltee.so", runpath="$ORIGIN/../lib"),
    ))


@pytest.fixture(scope="module")
def near(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("near"))
    build_world(near_spec(), root)
    older = str(tmp_path_factory.mktemp("near-older"))
    build_world(WorldSpec((lib("libvx.so", defines=("vx",)),)), older)
    shutil.copy(f"{older}/libvx.so", f"{root}/lib/libvx.so")
    shutil.copy(f"{root}/lib/libtq.so", f"{root}/lib/libtt.so")
    shutil.copy(f"{root}/lib/libwide.so", f"{root}/lib/libgrow.so")
    shutil.copy(f"{root}/lib/libnarrow.so", f"{root}/lib/libshrink.so")
    shutil.copy(f"{root}/lib/libpdp.so", f"{root}/lib/libpd.so")
    with open(f"{root}/fp.c", "w") as f:  # materialize's programs call functions, never take their address
        f.write("void pf(void); void (*volatile fp)(void); int main(void) { fp = pf; return 0; }\n")
    subprocess.run(["gcc", "-no-pie", "-fno-pic", "-o", f"{root}/bin/p_fp_protected", f"{root}/fp.c",
                    f"-L{root}/lib", "-lpf", "-Wl,-rpath,$ORIGIN/../lib"], check=True)
    shutil.copy(f"{root}/lib/libpfp.so", f"{root}/lib/libpf.so")
    shutil.copy(os.path.realpath(RTLD), f"{root}/lib/myld.so")
    os.makedirs(f"{root}/other")
    os.link(f"{root}/lib/libor.so", f"{root}/other/libor.so")
    os.link(f"{root}/bin/p_or", f"{root}/other/p_or")
    os.makedirs(f"{root}/links")
    os.symlink("../lib/libor.so", f"{root}/links/libor.so")
    os.symlink("../bin/p_or", f"{root}/links/p_or")
    subprocess.run(["patchelf", "--set-interpreter", f"{root}/lib/myld.so", f"{root}/bin/p_own_loader"], check=True)
    for name in ("p_verother", "p_verother_missing"):
        subprocess.run(["patchelf", "--remove-needed", "libvB.so", f"{root}/bin/{name}"], check=True)
    return root


@pytest.mark.parametrize("name", ["bin/p_aux", "lib/libaux.so", "bin/p_filt", "lib/libfilt.so",
                                  "bin/p_vermissing", "bin/p_verother",
                                  "bin/p_verother_missing", "bin/p_tls_plain", "bin/p_copy_grew",
                                  "bin/p_copy_shrank", "bin/p_copy_protected", "bin/p_own_loader",
                                  "bin/p_fp_protected"])
def test_near_problems_as_the_real_loader_reports_them(near: str, name: str) -> None:
    """Each file: the scan's resolution problems (missing libraries, versions, undefined symbols, the
    loader's exit) equal what `ldd -r`'s settings make the real loader print for it."""
    world = make_world("/", "/")
    inv = inv_for()
    path = f"{near}/{name}"
    res = scan(world, inv, ScanOptions(paths=[path]), FileCache())
    targets = targets_of(world, inv, ScanOptions(paths=[path]))
    assert [t.path for t in targets] == [path]
    bad = compare(res, targets, {}, None)
    assert not bad, "\n".join(bad)


def test_links_in_other_directories_are_resolved_from_there(near: str) -> None:
    """The scan resolves one file once per $ORIGIN its paths give it: a library reached as `ld.so LINK`
    from another directory (hard or symbolic link), a program through a hard link (exec: $ORIGIN is the
    link's real path), each as the real loader does for that path; a symbolic link to a program is the
    program again."""
    world = make_world("/", "/")
    inv = inv_for()
    paths = [f"{near}/{p}" for p in ("lib/libor.so", "bin/p_or", "other/libor.so", "other/p_or",
                                      "links/libor.so", "links/p_or")]
    res = scan(world, inv, ScanOptions(paths=paths), FileCache())
    targets = targets_of(world, inv, ScanOptions(paths=paths))
    assert [t.path for t in targets] == paths[:5]
    assert res.stats.duplicates == 1
    bad = compare(res, targets, {}, None)
    assert not bad, "\n".join(bad)


def test_preloads_the_loader_cannot_load(near: str) -> None:
    """An LD_PRELOAD entry that cannot be loaded (missing; not ELF): the real loader says so for every file
    ('ERROR: ld.so: object ... cannot be preloaded (...): ignored.') and goes on."""
    world = make_world("/", "/")
    env = {"LD_PRELOAD": f"/nonexistent/libnope.so {near}/fp.c"}
    inv = inv_for(env)
    paths = [f"{near}/bin/p_aux", f"{near}/lib/libaux.so"]
    res = scan(world, inv, ScanOptions(paths=paths), FileCache())
    targets = targets_of(world, inv, ScanOptions(paths=paths))
    assert sum(f.kind is ProblemKind.PRELOAD_IGNORED for f in res.findings) == 4
    bad = compare(res, targets, env, None)
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------------------- a biarch world


def test_32_bit_files_are_resolved_by_the_i386_loader(tmp_path) -> None:
    """On a root whose ldd lists /lib/ld-linux.so.2 (libc6-i386 here), the 32-bit programs and libraries
    are resolved by that loader, as executing them or ldd would: their missing libraries, 64-bit
    dependencies and undefined symbols are the real i386 loader's (the scan had skipped every 32-bit
    file as "another class or machine")."""
    from tests.conformance.test_foreign import _need, _need_m32
    _need_m32()
    _need(RTLD32, packages=("libc6-i386",))
    d = str(tmp_path)
    build_world(WorldSpec((
        lib("l32/libok.so", m32=True),
        lib("l32/libu.so", m32=True, defines=("ufun", "keep")),
        lib("l32/libchain.so", m32=True, needed=("libalsonothere.so",)),
        lib("l64/libsixty.so"),
        prog("b/p_ok32", "libok.so", m32=True, runpath=f"{d}/l32"),
        prog("b/p_missing32", "libok.so", "libnothere.so.1", m32=True, runpath=f"{d}/l32"),
        prog("b/p_chain32", "libchain.so", m32=True, runpath=f"{d}/l32"),
        prog("b/p_undef32", "libu.so", m32=True, runpath=f"{d}/l32", uses=("ufun", "keep")),
        prog("b/p_class32", "libsixty.so", m32=True, runpath=f"{d}/l64"),
        prog("b/p_ok64", "libsixty.so", runpath=f"{d}/l64"),
    )), d)
    other = str(tmp_path / "older")
    build_world(WorldSpec((lib("libu.so", m32=True, defines=("keep",)),)), other)
    shutil.copy(f"{other}/libu.so", f"{d}/l32/libu.so")  # ufun is gone: undefined under BIND_NOW
    world = make_world("/", "/")
    inv = inv_for()
    opts = ScanOptions(paths=[f"{d}/b", f"{d}/l32", f"{d}/l64"])
    res = scan(world, inv, opts, FileCache())
    targets = targets_of(world, inv, opts)
    assert {t.path for t in targets} >= {f"{d}/b/p_ok32", f"{d}/l32/libchain.so"}
    bad = compare(res, targets, {}, None)
    assert not bad, "\n".join(bad)
    assert ("missing", "libnothere.so.1") in sim_problems(res)[f"{d}/b/p_missing32"]


@pytest.mark.parametrize("m32", [False, True], ids=["x86-64", "i386"])
def test_a_library_the_loader_cannot_map_is_a_load_error(tmp_path, m32: bool) -> None:
    """`ld.so LIB` of a library whose e_ident the loader refuses (an ABI version above LIBC_ABI_MAX,
    nonzero padding): fatal, exit 127, as a load error of that file (the scan said `cannot bind:
    TypeError`: its process's fatal() did not take the program name rtld passes for the main object)."""
    if m32:
        from tests.conformance.test_foreign import _need, _need_m32
        _need_m32()
        _need(RTLD32, packages=("libc6-i386",))
    d = str(tmp_path)
    build_world(WorldSpec((lib("l/libabi.so", m32=m32), lib("l/libpad.so", m32=m32))), d)
    for name, at in (("libabi.so", 8), ("libpad.so", 12)):
        with open(f"{d}/l/{name}", "r+b") as f:
            f.seek(at)
            f.write(b"\x05")
    world = make_world("/", "/")
    opts = ScanOptions(paths=[f"{d}/l"])
    res = scan(world, inv_for(), opts, FileCache())
    assert not [f for f in res.findings if f.kind is ProblemKind.BAD_FILE]
    targets = targets_of(world, inv_for(), opts)
    assert len(targets) == 2
    bad = compare(res, targets, {}, None)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", ["lib/libhuge.so", "bin/p_huge"])
def test_objects_the_loader_cannot_map(tmp_path, name: str) -> None:
    """A library whose .bss runs past the address space: `ld.so LIB` fails to map it itself (the scan
    went through its own fatal() without the program name and reported a TypeError), a program needing
    it fails to map its dependency."""
    root = str(tmp_path)
    os.makedirs(f"{root}/lib")
    os.makedirs(f"{root}/bin")
    with open(f"{root}/huge.c", "w") as f:
        f.write("char big[1UL << 47];\nvoid *gb(void) { return big; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", f"{root}/lib/libhuge.so", f"{root}/huge.c",
                    "-Wl,-soname,libhuge.so"], check=True)
    with open(f"{root}/p.c", "w") as f:
        f.write("void *gb(void);\nvoid *p = gb;\nint main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", f"{root}/bin/p_huge", f"{root}/p.c", f"-L{root}/lib", "-lhuge",
                    "-Wl,-rpath,$ORIGIN/../lib"], check=True)
    world = make_world("/", "/")
    inv = inv_for()
    path = f"{root}/{name}"
    res = scan(world, inv, ScanOptions(paths=[path]), FileCache())
    assert not [f for f in res.findings if f.kind is ProblemKind.BAD_FILE], res.findings
    bad = compare(res, targets_of(world, inv, ScanOptions(paths=[path])), {}, None)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("case", ["relative-to-rodata", "glob-dat-to-rodata", "relr-to-rodata",
                                  "textrel-relative-to-rodata"])
def test_a_library_whose_relocation_stores_fault(tmp_path, case: str) -> None:
    """`ld.so LIB` under ldd -r's settings dies of SIGSEGV where a relocation of LIB stores into its
    read-only data (tests/conformance/test_relocation_stores.py): the scan reports that exit, after the
    undefined symbols looked up before it (it reported nothing)."""
    from tests.conformance.test_memory_limits import _cc
    from tests.conformance.test_relocation_stores import CASES, EXT, LIB
    root = str(tmp_path)
    flags, patch = CASES[case]
    _cc(root, "libext.so", EXT, "-shared", "-Wl,-soname,libext.so")
    _cc(root, "libl.so", LIB, "-shared", "-Wl,-soname,libl.so", "-lext", *flags)
    patch(f"{root}/libl.so")
    world = make_world("/", "/")
    inv = inv_for()
    path = f"{root}/libl.so"
    res = scan(world, inv, ScanOptions(paths=[path]), FileCache())
    bad = compare(res, targets_of(world, inv, ScanOptions(paths=[path])), {}, None)
    assert not bad, "\n".join(bad)
