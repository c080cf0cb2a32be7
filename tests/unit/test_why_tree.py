"""why/tree on scenario worlds (virtual filesystem): the model and the renderers' contracts.
What the loader does is checked against the real one in tests/conformance/test_why_tree.py."""

from __future__ import annotations

import os

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import cpu_for_level
from ldsim.linkmap import FileCache
from ldsim.render import explain as render_explain
from ldsim.render import tree
from ldsim.scenario import VROOT, fmt, load, virtual_world
from ldsim.why import explain, simulate

SCENARIOS = os.path.join(os.path.dirname(__file__), "..", "..", "scenarios")


def _proc(name: str):
    sc = load(os.path.join(SCENARIOS, name))
    w = virtual_world(sc)
    inv = Invocation(env=tuple((k, fmt(v, VROOT)) for k, v in sc.env.items()), cwd=w.cwd, pid=1,
                     cpu=cpu_for_level("x86-64-v3"), profile=DEBIAN_X86_64)
    return simulate(w, inv, FileCache(), fmt(sc.program, VROOT), direct=sc.mode == "ldd")


def test_tree_marks_missing_and_colours_only_on_request() -> None:
    root = tree.build(_proc("03_runpath_is_not_inherited.toml"))
    front = root.children[0]
    assert (front.name, front.status) == ("libfront.so", "loaded")
    assert front.how.startswith("DT_RUNPATH of /world/bin/app: $ORIGIN/../lib -> ")
    assert [(c.name, c.status) for c in front.children] == [("libback.so", "not found")]
    plain, coloured = tree.text(root, False), tree.text(root, True)
    assert not any("\033[" in line for line in plain)
    assert any("\033[31m" in line for line in coloured)
    assert tree.dot(root)[0] == "digraph ldsim {" and tree.dot(root)[-1] == "}"
    assert tree.as_dict(root)["children"][0]["children"][0]["status"] == "not found"


def test_why_names_the_runpath_trap_and_the_fix() -> None:
    proc = _proc("03_runpath_is_not_inherited.toml")
    rep = explain(proc, "libback.so")
    assert not rep.found and len(rep.missing) == 1
    miss = rep.missing[0]
    assert any("does not apply to indirect dependencies" in r for r in miss.reasons)
    assert miss.near and miss.near[0].fix.startswith("add $ORIGIN to the search path of /world/bin/../lib/libfront.so")
    assert "NOT FOUND" in "\n".join(render_explain.lines(proc, rep))


def test_why_lists_rejected_and_shadowed_candidates() -> None:
    proc = _proc("17_a_wrong_class_candidate_is_skipped.toml")
    rep = explain(proc, "libcls.so")
    f = rep.found[0]
    assert f.target.name == "/world/bin/../b/libcls.so"
    assert ("/world/bin/../a/libcls.so", "wrong ELF class") in [(t.path, t.outcome) for t in f.rejected]
    proc = _proc("06_rpath_comes_before_ld_library_path.toml")
    f = explain(proc, "libx.so").found[0]
    assert [t.path for t in f.shadowed if "would load" in t.outcome] == ["/world/env/libx.so"]
    assert render_explain.as_dict(proc, explain(proc, "libx.so"))["found"][0]["found"]["owner"] == "/world/bin/app"


def test_why_of_an_unrelated_library_says_so() -> None:
    proc = _proc("02_rpath_is_inherited_down_the_loader_chain.toml")
    rep = explain(proc, "libnothere.so")
    assert not rep.found and not rep.missing and not rep.chains
    assert "does not load" in render_explain.lines(proc, rep)[0]


def test_why_of_the_program_itself_and_an_empty_lib(tmp_path) -> None:
    """The program given as LIB (by another path) is the main map, loaded without a search; an empty LIB
    is a usage error, not a match of the main map's empty l_name."""
    import subprocess
    import sys
    proc = _proc("02_rpath_is_inherited_down_the_loader_chain.toml")
    rep = explain(proc, proc.program.replace("/bin/", "/bin/../bin/"))
    assert [i.target for i in rep.implicit] == [proc.main] and not rep.found
    assert "the program itself" in render_explain.lines(proc, rep)[0]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-m", "ldsim", "why", "/bin/true", ""], capture_output=True, text=True,
                       env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"})
    assert p.returncode == 2 and "LIB is empty" in p.stderr and "Traceback" not in p.stderr
