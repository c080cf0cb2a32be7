"""`ldsim tree` and `ldsim why` against the real loader.

* tree: every world of test_search_rules, every ldd run: the objects of the tree (requested name => path,
  or not found) are exactly the lines of the real `ldd` (apart from the vDSO and ld.so itself).
* why: the step that found a library is where the real loader found it (LD_DEBUG=libs); the first shadowed
  alternative is what the real loader loads once the winner is removed; the classic trap (the executable's
  RUNPATH does not serve a library's own dependency) is named, and the fix ldsim proposes works for real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.materialize import LibSpec, ProgSpec, Symlink, WorldSpec, build_world
from tests import oracle
from tests.conformance.test_search_rules import CASES

pytestmark = pytest.mark.conformance
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ldsim(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    eargs = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return subprocess.run([sys.executable, "-m", "ldsim", args[0], "-i", *eargs, *args[1:]], capture_output=True,
                          text=True, cwd=cwd, env={"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": ROOT})


def real_ldd_objects(prog: str, env: dict[str, str], cwd: str) -> Counter | None:
    """The real ldd listing as (name, path|"not found") counts; None when the loader stopped with an error."""
    out = oracle.real_ldd([prog], env, cwd).stdout.decode(errors="replace")
    if "error while loading shared libraries" in out:
        return None
    objs: Counter = Counter()
    for line in out.splitlines():
        line = re.sub(r" \(0x[0-9a-fA-FADR]+\)$", "", line.strip())
        # the loader's own map (a second copy reached by another path is a listed object like any other)
        if (not line or line.startswith("linux-vdso") or line == oracle.RTLD or line == "statically linked"
                or line.startswith("ERROR: ld.so: ")):  # a preload that was ignored
            continue
        name, sep, path = line.partition(" => ")
        objs[(name, path if sep else name)] += 1
    return objs


def tree_objects(node: dict) -> Counter:
    objs: Counter = Counter()
    for c in node["children"]:
        if c["status"] == "loaded":
            objs[(c["name"], c["path"])] += 1
        elif c["status"] == "not found":
            objs[(c["name"], "not found")] += 1
        objs += tree_objects(c)
    return objs


@pytest.fixture(scope="module")
def rule_worlds(tmp_path_factory):
    base = tmp_path_factory.mktemp("why_tree")

    def one(name):
        root = str(base / name)
        spec, runs = CASES[name](root)
        build_world(spec, root, jobs=2)
        return name, (root, runs)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, CASES))


def test_tree_lists_what_ldd_lists(rule_worlds) -> None:
    """Every ldd run of the search-rule worlds: tree's objects == real ldd's objects."""
    jobs = []
    for name, (root, runs) in rule_worlds.items():
        for run in runs:
            if "ldd" not in run.modes:
                continue
            prog = run.prog.replace("{root}", root)
            env = {k: v.replace("{root}", root) for k, v in run.env.items()}
            jobs.append((name, prog, env, f"{root}/{run.cwd}"))

    def check(job):
        name, prog, env, cwd = job
        real = real_ldd_objects(prog, env, cwd)
        p = ldsim(["tree", "--ldd", "--json", prog], env, cwd)
        if p.returncode not in (0, 1) or not p.stdout.startswith("{"):
            return name, prog, f"ldsim failed: {p.stderr}"
        if real is None:  # a fatal error: tree must fail too and show the error
            return name, prog, None if p.returncode == 1 and '"error"' in p.stdout else "no error in tree"
        sim = tree_objects(json.loads(p.stdout))
        return name, prog, None if sim == real else f"real {sorted(real.items())}\nldsim {sorted(sim.items())}"

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(check, jobs))
    bad = [f"{n} {p}: {why}" for n, p, why in results if why]
    assert len(jobs) >= 15
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def why_world(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("why"))
    build_world(WorldSpec((
        ProgSpec("bin/trap", needed=("libwa.so",), runpath="$ORIGIN/../lib", libc=False),
        LibSpec("lib/libwa.so", soname="libwa.so", needed=("libwb.so",), libc=False),
        LibSpec("lib/libwb.so", soname="libwb.so", libc=False),
        ProgSpec("bin/shadow", needed=("libws.so",), rpath="$ORIGIN/../a:$ORIGIN/../b", libc=False),
        LibSpec("a/libws.so", soname="libws.so", libc=False),
        LibSpec("b/libws.so", soname="libws.so", libc=False),
    )), root)
    return root


def _real_found(prog: str, lib: str, cwd: str) -> str | None:
    """Where the real loader loads `lib` (the ldd listing)."""
    for (name, path), _ in (real_ldd_objects(prog, {}, cwd) or {}).items():
        if name == lib:
            return None if path == "not found" else path
    return None


def test_why_found_step_and_shadowed(why_world: str) -> None:
    """The found path and step are the real loader's; removing it makes the real loader take the first
    shadowed alternative ldsim lists."""
    prog = f"{why_world}/bin/shadow"
    p = ldsim(["why", "--ldd", "--json", prog, "libws.so"], cwd=why_world)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    found = rep["found"][0]
    assert found["path"] == _real_found(prog, "libws.so", why_world)
    assert found["how"].startswith(f"DT_RPATH of {prog}: $ORIGIN/../a -> ")
    alternative = next(t["path"] for t in found["shadowed"] if "would load" in t["outcome"])
    os.rename(found["path"], found["path"] + ".away")
    try:
        assert _real_found(prog, "libws.so", why_world) == alternative
    finally:
        os.rename(found["path"] + ".away", found["path"])


def test_why_names_the_runpath_trap_and_its_fix_works(why_world: str) -> None:
    """The executable's RUNPATH does not serve libwa's own DT_NEEDED: why says so, and the proposed
    patchelf command makes the real loader find libwb.so."""
    prog = f"{why_world}/bin/trap"
    assert _real_found(prog, "libwb.so", why_world) is None
    p = ldsim(["why", prog, "libwb.so"], cwd=why_world)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "does not apply to indirect dependencies" in p.stdout
    fixes = [line.split(": ", 1)[1] for line in p.stdout.splitlines() if line.strip().startswith("fix:")]
    assert fixes, p.stdout
    cmd = fixes[0].split(": ", 1)[1]
    assert cmd.startswith("patchelf ") and cmd.endswith("/libwa.so"), cmd
    subprocess.run(shlex.split(cmd), check=True)
    real = _real_found(prog, "libwb.so", why_world)
    assert real is not None and os.path.samefile(real, f"{why_world}/lib/libwb.so")
    p = ldsim(["why", "--ldd", "--json", prog, "libwb.so"], cwd=why_world)
    rep = json.loads(p.stdout)
    assert rep["found"][0]["path"] == real
    assert rep["found"][0]["how"].startswith("DT_RUNPATH of ")


# ------------------------------------------------------------------------ why against LD_DEBUG=libs,files

_LINE = re.compile(r"^\s*\d+:\t?(.*)$")


def real_requests(prog: str, env: dict[str, str], cwd: str, args: tuple[str, ...] = (),
                  direct: bool = True) -> list[dict]:
    """The searches of the real `ld.so PROG` trace (LD_DEBUG=libs,files): per `find library=` line, its
    requester (the preceding `needed by`), every `trying file=` in order with the search-path label it
    was tried under, and the path mapped (`generating link map`) or None (same file already loaded, or
    not found)."""
    env = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_DEBUG": "libs,files", **env}
    argv = [oracle.RTLD, *args, prog] if direct else [prog]  # exec: the program's own PT_INTERP
    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, errors="replace")
    text = p.stdout + p.stderr
    reqs: list[dict] = []
    cur: dict | None = None
    by: str | None = None
    label: str | None = None
    for raw in text.splitlines():
        m = _LINE.match(raw)
        line = m.group(1) if m else ""
        if mm := re.match(r"file=(.*) \[\d+\];  needed by (.*) \[\d+\]$", line):
            by, cur = mm.group(2), None
        elif mm := re.match(r"find library=(.*) \[\d+\]; searching$", line):
            cur = {"name": mm.group(1), "by": by, "tried": [], "labels": [], "mapped": None}
            reqs.append(cur)
        elif mm := re.match(r" search path=(.*)\t\t\((.*)\)$", line):
            label = mm.group(2)
        elif line.startswith(" search cache="):
            label = "cache"
        elif (mm := re.match(r"  trying file=(.*)$", line)) and cur is not None:
            cur["tried"].append(mm.group(1))
            cur["labels"].append(label)
        elif (mm := re.match(r"file=(.*) \[\d+\];  generating link map", line)) and cur is not None:
            if mm.group(1) == cur["name"] and cur["tried"]:
                cur["mapped"] = cur["tried"][-1]
            cur = None
    return reqs


_SUBDIR = re.compile(r"(/(glibc-hwcaps/[^/]+|tls|x86_64|haswell|avx512_1))+$")


def _searched_dirs(r: dict) -> list[str]:
    """The directories of a failed real search in order, without their hwcaps subdirectories (the cache
    hit, if any, is not a directory of the search)."""
    out: list[str] = []
    for path, label in zip(r["tried"], r["labels"]):
        d = _SUBDIR.sub("", os.path.dirname(path)) or "/"
        if label != "cache" and (not out or out[-1] != d):
            out.append(d)
    return out


def _row_dirs(miss: dict) -> list[str]:
    """The directories `why` says a failed search tried a file in."""
    return [row["directory"] for row in miss["searched"]
            if not row["step"].startswith("ld.so.cache") and row["result"] != "directory does not exist"
            and not row["result"].startswith("skipped")]


def _label_of(found: dict) -> str:
    """How the real trace labels the search list ldsim says found the file."""
    if found["step"] in ("RPATH", "RUNPATH"):
        return f"{found['step']} from file {found['owner']}"
    return "cache" if found["step"] == "cache" else found["step"]


def why_disagreements(prog: str, env: dict[str, str], cwd: str, args: tuple[str, ...] = (),
                      direct: bool = True) -> list[str]:
    """args: ld.so options that `ldsim why` takes too (--preload, --library-path, --inhibit-cache)."""
    out = []
    for r in real_requests(prog, env, cwd, args, direct):
        p = ldsim(["why", *(["--ldd"] if direct else []), "--json", *args, prog, r["name"]], env, cwd)
        if not p.stdout.startswith("{"):
            out.append(f"{r['name']}: ldsim failed ({p.returncode}) {p.stderr}")
            continue
        rep = json.loads(p.stdout)
        found = [f for f in rep["found"] if f["request"]["name"] == r["name"] and f["request"]["requester"] == r["by"]]
        missing = [m for m in rep["missing"] if m["request"]["name"] == r["name"] and m["request"]["requester"] == r["by"]]
        where = f"{r['name']} (needed by {r['by']})"
        if not found:
            if r["mapped"] is not None or not missing:
                out.append(f"{where}: real mapped {r['mapped']}, ldsim found {[f['path'] for f in rep['found']]}")
            elif _searched_dirs(r) != _row_dirs(missing[0]):
                out.append(f"{where}: real searched {_searched_dirs(r)}\nldsim searched {_row_dirs(missing[0])}")
            # open_path tried each of these; a directory that is not there must not read "no NAME here"
            out += [f"{where}: {row['directory']} does not exist, ldsim says {row['result']}"
                    for row in missing[0]["searched"] if row["result"].startswith("no ")
                    and not row["step"].startswith("ld.so.cache") and not os.path.isdir(row["directory"])]
            continue
        f = found[0]
        tried = [t["path"] for t in f["rejected"]] + ([f["found"]["path"]] if f["found"] else [])
        if tried != r["tried"]:
            out.append(f"{where}: real tried {r['tried']}\nldsim tried {tried}")
        if r["mapped"] is not None and f["path"] != r["mapped"]:
            out.append(f"{where}: real mapped {r['mapped']}, ldsim {f['path']}")
        # a directory listed by an earlier search keeps that search's label in the trace (dl-load.c's
        # r_search_path_elem are shared): then why must say under which label the trace shows it
        if (f["found"] and r["labels"] and r["labels"][-1] != _label_of(f["found"])
                and f"lists this directory under ({r['labels'][-1]})" not in f["how"]):
            out.append(f"{where}: real found under ({r['labels'][-1]}), ldsim says {f['how']}")
    return out


EXEC_CASES = ("origin_of_symlinked_exe", "rpath_inherited", "loaded_by_file_identity")
WHY_CASES = ("origin_of_symlinked_exe", "rpath_inherited", "runpath_blocks_rpath", "rpath_and_runpath", "runpath_not_inherited",
             "loaded_by_soname", "loaded_by_file_identity", "ld_library_path", "ld_library_path_dsts",
             "origin_of_symlinked_lib", "wrong_class_and_machine", "nodeflib", "hwcaps_subdirs",
             "missing_library", "broken_candidates")


def test_why_follows_the_real_trace(rule_worlds) -> None:
    """For every library the real loader searched for (`ld.so PROG`, LD_DEBUG=libs,files), `ldsim why
    --json` names the same requester, the same candidates in the same order, the same mapped path (for a
    miss: the same directories, up to a fatal candidate), and
    a step whose list the trace prints the winning directory under; a search that ended at an already
    loaded file (same dev/ino) is explained by its own candidates, not by the request that mapped it."""
    jobs = []
    for name in WHY_CASES:
        root, runs = rule_worlds[name]
        for run in runs:
            if run.args or "trace" not in run.modes and "exec" not in run.modes:
                continue
            env = {k: v.replace("{root}", root) for k, v in run.env.items()}
            job = (name, run.prog.replace("{root}", root), env, f"{root}/{run.cwd}", ())
            jobs.append(job)
            if name in EXEC_CASES and "exec" in run.modes:  # the kernel's exec: $ORIGIN from the real path
                jobs.append(job + (False,))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda j: (j, why_disagreements(*j[1:])), jobs))
    bad = [f"{j[0]} {j[1]} {j[2]}: {d}" for j, ds in results for d in ds]
    assert len(jobs) >= 30
    assert not bad, "\n".join(bad)


def _real_listed(prog: str, cwd: str) -> list[tuple[str, str | None]]:
    """(name as ldd prints it, path or None) for every object of the real ldd listing, found or not."""
    out = []
    for line in oracle.real_ldd([prog], {}, cwd).stdout.decode(errors="replace").splitlines():
        line = re.sub(r" \(0x[0-9a-fA-FADR]+\)$", "", line.strip())
        name, sep, path = line.partition(" => ")
        if line:
            out.append((name, path if sep and path != "not found" else None if sep else name))
    return out


@pytest.mark.parametrize("case", ("loaded_by_soname", "rpath_of_requester"))
def test_why_knows_every_object_ldd_lists(rule_worlds, case: str) -> None:
    """Each object of the real ldd listing (the vDSO and ld.so included, which no search loads) is loaded
    for `ldsim why` too: exit 0, at the same path; a name ldd does not list gives exit 4."""
    root, runs = rule_worlds[case]
    prog = runs[0].prog.replace("{root}", root)
    listed = _real_listed(prog, root)
    assert any(name.startswith("linux-vdso") for name, _ in listed)
    for name, path in listed:
        p = ldsim(["why", "--ldd", "--json", prog, name], cwd=root)
        assert p.returncode == (0 if path else 1), f"{name}: {p.stdout}{p.stderr}"
        rep = json.loads(p.stdout)
        paths = {x["path"] for x in rep["found"] + rep["implicit"]}
        assert path in paths or os.path.realpath(path) in map(os.path.realpath, paths), (name, path, paths)
    p = ldsim(["why", "--ldd", prog, "libnot-listed-anywhere.so"], cwd=root)
    assert p.returncode == 4 and "does not load" in p.stdout, p.stdout + p.stderr


def test_why_names_the_fatal_candidate_and_removing_it_works(rule_worlds) -> None:
    """A file open_verify finds fatal (too short) ends the search: why names it, does not list the RPATH
    directory after it as searched, and its fix (remove it) makes the real loader find the near miss."""
    root, _ = rule_worlds["broken_candidates"]
    prog = f"{root}/bin/m_t"
    p = ldsim(["why", "--ldd", "--json", prog, "libbad.so"], cwd=root)
    miss = json.loads(p.stdout)["missing"][0]
    fatal = f"{root}/bin/../t/libbad.so"
    assert [row["directory"] for row in miss["searched"]] == [f"{root}/bin/../t"], miss["searched"]
    assert any(fatal in reason for reason in miss["reasons"]), miss["reasons"]
    near = {n["path"]: n["fix"] for n in miss["near_misses"]}
    good = next(path for path in near if "/good/" in path)
    assert near[good] == f"remove or replace {fatal}"
    os.rename(fatal, fatal + ".away")
    try:
        assert _real_found(prog, "libbad.so", root) == good
    finally:
        os.rename(fatal + ".away", fatal)


def test_why_finds_a_library_by_the_name_of_the_file_its_symlink_leads_to(tmp_path) -> None:
    """ldd lists lib/libsym.so (a symlink to libsym.so.1.2, soname libsym.so.1): asked by the file's own
    name, its soname, the link's name or either path, why names that object."""
    root = str(tmp_path)
    build_world(WorldSpec((ProgSpec("bin/p", needed=("libsym.so",), rpath="$ORIGIN/../lib", libc=False),
                           LibSpec("lib/libsym.so.1.2", soname="libsym.so.1", libc=False)),
                          symlinks=(Symlink("lib/libsym.so", "libsym.so.1.2"),)), root)
    prog = f"{root}/bin/p"
    path = dict(_real_listed(prog, root))["libsym.so"]
    assert path is not None and os.path.islink(path)
    real = os.path.realpath(path)
    for name in (os.path.basename(real), "libsym.so.1", "libsym.so", path, real):
        p = ldsim(["why", "--ldd", "--json", prog, name], cwd=root)
        assert p.returncode == 0, f"{name}: {p.stdout}{p.stderr}"
        assert [f["path"] for f in json.loads(p.stdout)["found"]] == [path], name


def test_why_fix_for_a_secure_program_works_for_real() -> None:
    """A set-user-ID program run by another user (AT_SECURE): the real loader drops the `$ORIGIN/../lib`
    element of its DT_RPATH and fails on libs1.so.  why says so, and its proposed patchelf command (an
    absolute directory, since `$ORIGIN` would be dropped again) makes the real program start."""
    import shutil
    import tempfile
    if os.geteuid() != 0:
        pytest.skip("needs root to make a set-user-ID program and run it as another user")
    root = tempfile.mkdtemp(prefix="why-secure-", dir="/tmp")
    try:
        os.chmod(root, 0o755)
        build_world(WorldSpec((ProgSpec("bin/s", needed=("libs1.so",), rpath="$ORIGIN/../lib"),
                               LibSpec("lib/libs1.so", soname="libs1.so"))), root)
        prog = f"{root}/bin/s"

        def real() -> subprocess.CompletedProcess:
            os.chmod(prog, 0o4755)
            return subprocess.run([prog], env={"LD_LIBRARY_PATH": f"{root}/lib"}, capture_output=True, text=True,
                                  cwd="/", preexec_fn=lambda: os.setuid(65534))
        before = real()
        assert before.returncode == 127 and "libs1.so: cannot open shared object file" in before.stderr
        p = ldsim(["why", "--uid", "65534", "--euid", "0", "--json", prog, "libs1.so"],
                  {"LD_LIBRARY_PATH": f"{root}/lib"}, "/")
        assert p.returncode == 1, p.stdout + p.stderr
        miss = json.loads(p.stdout)["missing"][0]
        assert any("$ORIGIN/../lib" in r and "secure mode" in r for r in miss["reasons"]), miss["reasons"]
        assert any("ignored in secure mode" in r for r in miss["reasons"]), miss["reasons"]
        cmd = miss["near_misses"][0]["fix"].split(": ", 1)[1]
        subprocess.run(shlex.split(cmd), check=True)
        after = real()
        assert after.returncode == 0, (cmd, after.stderr)
    finally:
        shutil.rmtree(root)
