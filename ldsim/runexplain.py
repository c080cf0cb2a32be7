"""`ldsim run --explain`: one row per loaded object — who asked for it first, the search step that found
it, how many symbol bindings it supplied.  Pure given a World: the rows are computed from a simulated
startup's link map, its `_dl_map_object` requests and its Binding events; `render.explain.run_table`
prints them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ldsim import events as ev
from ldsim.access import exec_view
from ldsim.config import Debug, Invocation, read_environment
from ldsim.linkmap import FileCache, Kind, LinkMap
from ldsim.loader import Process
from ldsim.world import World


@dataclass(frozen=True)
class ObjectRow:
    name: str  # l_name as the loader prints it (the program: its path as executed)
    needed_by: str  # the first requester's name, the preload source, or "(exec)" for the program
    step: str  # how it was found: Found.step, "RPATH/RUNPATH of OWNER", "program", "loader"
    bindings: int  # symbol bindings resolved to a definition in this object


def step_of(proc: Process, m: LinkMap) -> str:
    if m.kind is Kind.MAIN:
        return "program"
    if m.kind is Kind.RTLD and m.found is None:
        return "loader"
    if m.found is None:
        return "?"
    if m.found.step in ("RPATH", "RUNPATH") and m.found.owner is not None:
        return f"{m.found.step} of {m.found.owner or proc.argv0}"  # "": the main program's l_name
    return m.found.step


def needed_by(proc: Process, m: LinkMap) -> str:
    """The first `_dl_map_object` request that ended in `m`: its requester, or how a preload came."""
    if m.kind is Kind.MAIN:
        return "(exec)"
    for r in proc.result.requests:
        if r.result is m:
            if r.via in ("needed", "filter", "auxiliary", "program"):
                return proc.dso_filename(r.loader) if r.loader is not None else "(exec)"
            return r.via
    return "(loader)" if m.kind is Kind.RTLD else "?"


def rows(proc: Process) -> list[ObjectRow]:
    """The link map in load order (l_next), the vDSO left out (nothing searches for it)."""
    supplied = Counter(e.definer for e in proc.result.events if isinstance(e, ev.Binding))
    return [ObjectRow(proc.dso_filename(m), needed_by(proc, m), step_of(proc, m), supplied[proc.dso_filename(m)])
            for m in proc.objects if m.kind is not Kind.VDSO and not m.faked]


def explain_run(world: World, inv: Invocation, argv: list[str], files: FileCache) -> list[ObjectRow]:
    """Start `argv[0]` as `exec` would (run_exec's path), recording bindings whatever LD_DEBUG says:
    a run of its own, so the user's trace is untouched and secure mode's LD_DEBUG rule does not hide
    the counts."""
    from ldsim.credentials import secure_for_exec
    cfg = read_environment(inv.env, secure_for_exec(world, argv[0], inv.credentials, inv.secure))
    cfg.debug, cfg.debug_output = Debug.BINDINGS, None
    proc = Process(exec_view(world, argv[0], inv.credentials), inv, cfg, files, program=argv[0], direct=False)
    proc.start()
    return rows(proc)
