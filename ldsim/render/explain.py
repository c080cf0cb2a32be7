"""`ldsim why`: a WhyReport as text (tables made with tabulate) or as a JSON-ready dict.  Pure."""

from __future__ import annotations

import re

from tabulate import tabulate

from ldsim.loader import Process, Request
from ldsim.why import WhyReport, label


def _edge(proc: Process, r: Request) -> str:
    via = "" if r.via == "needed" else f" [{r.via}]"
    return f"{r.name}{via}"


_SUBDIRS = re.compile(r"(/(glibc-hwcaps/[^/]+|tls|x86_64|haswell|xeon_phi|avx512_1|i686|i586))+$")


def _record_dir(path: str) -> str:
    return _SUBDIRS.sub("", path.rsplit("/", 1)[0])


def _collapsed(tried) -> list[tuple[str, str]]:
    """Runs of absent candidates in one directory (its hwcaps subdirectories included) become one row."""
    rows: list[tuple[str, str]] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) == 1:
            rows.append((run[0], "absent"))
        elif run:
            rows.append((f"{_record_dir(run[0])}/ ({len(run)} paths, subdirectories included)", "absent"))
        run.clear()

    for t in tried:
        if t.outcome != "absent":
            flush()
            rows.append((t.path, t.outcome))
            continue
        if run and _record_dir(t.path) != _record_dir(run[0]):
            flush()
        run.append(t.path)
    flush()
    return rows


def chain_text(proc: Process, chain: list[Request]) -> str:
    return " -> ".join([proc.program] + [_edge(proc, r) for r in chain])


def lines(proc: Process, rep: WhyReport) -> list[str]:
    out: list[str] = []
    for i in rep.implicit:
        out.append(f"{label(proc, i.target)}: {i.how}.")
    if rep.implicit and not rep.found and not rep.missing:
        return out
    if not rep.chains and not rep.found and not rep.missing:
        out.append(f"{rep.program} does not load {rep.lib}: nothing it needs (directly or indirectly) asks for it.")
        out += [f"note: {e}" for e in rep.errors]
        return out
    verb = "loads" if rep.found else "does not load"
    out.append(f"Why {rep.program} {verb} {rep.lib}:")
    out.append("")
    out.append("Requested along:")
    out += [f"  {chain_text(proc, c)}" for c in rep.chains]
    for f in rep.found:
        out.append("")
        req = f.request
        out.append(f"{label(proc, f.target)}")
        out.append(f"  requested as {req.name} by {label(proc, req.loader) if req.loader else '(startup)'}"
                   f"{'' if req.via == 'needed' else ' via ' + req.via}")
        out.append(f"  found by: {f.how}")
        if f.rejected:
            out.append("  tried before it:")
            out += ["    " + x for x in tabulate(_collapsed(f.rejected),
                                                 headers=("candidate", "rejected because"),
                                                 tablefmt="simple").splitlines()]
        if f.others:
            out.append("  other requests for this object:")
            for o in f.others:
                how = {"name": "by name", "soname": "by soname", "file": "same file"}.get(o.reused or "",
                                                                                         "which mapped it")
                out.append(f"    {label(proc, o.loader) if o.loader else '(startup)'} as {o.name} ({how})")
        if f.shadowed:
            out.append("  shadowed alternatives (what later steps would have found):")
            out += ["    " + x for x in tabulate([(t.path, t.outcome) for t in f.shadowed],
                                                 headers=("candidate", "step"), tablefmt="simple").splitlines()]
    for m in rep.missing:
        r = m.request
        out.append("")
        out.append(f"{r.name} NOT FOUND (needed by {label(proc, r.loader) if r.loader else '(startup)'}"
                   f"{'' if r.via == 'needed' else ', via ' + r.via})")
        if r.error:
            out.append(f"  error: {r.error}")
        if m.rows:
            out.append("  searched, in order:")
            out += ["    " + x for x in tabulate(
                [(row.step, row.directory, row.element if row.element is not None else "", row.result)
                 for row in m.rows], headers=("list", "directory", "element", "result"),
                tablefmt="simple").splitlines()]
        if m.reasons:
            out.append("  why the search looked only there:")
            out += [f"    - {x}" for x in m.reasons]
        if m.near:
            out.append("  near misses:")
            for n in m.near:
                out.append(f"    {n.path}")
                out.append(f"      why not: {n.why}")
                out.append(f"      fix: {n.fix}")
        else:
            out.append("  near misses: no file with that name or soname in the usual places")
    if rep.errors:
        out.append("")
        out += [f"loader: {e}" for e in rep.errors]
    return out


def _found_dict(proc: Process, r: Request) -> dict | None:
    found = r.search.found if r.search else None
    if found is None:
        return None
    d = found._asdict()
    if d["owner"] == "":
        d["owner"] = proc.program  # the main map's l_name is ""
    return d


def as_dict(proc: Process, rep: WhyReport) -> dict:
    def req(r: Request) -> dict:
        return {"name": r.name, "requester": label(proc, r.loader) if r.loader else None, "via": r.via,
                "reused": r.reused, "error": r.error}
    return {
        "program": rep.program, "lib": rep.lib, "status": rep.status, "errors": rep.errors,
        "chains": [[proc.program] + [r.name for r in c] for c in rep.chains],
        "implicit": [{"path": label(proc, i.target), "how": i.how} for i in rep.implicit],
        "found": [{"path": label(proc, f.target), "request": req(f.request), "how": f.how,
                   "found": _found_dict(proc, f.request),
                   "rejected": [vars(t) for t in f.rejected], "shadowed": [vars(t) for t in f.shadowed],
                   "also_requested_by": [req(o) for o in f.others]} for f in rep.found],
        "missing": [{"request": req(m.request), "searched": [vars(r) for r in m.rows], "reasons": m.reasons,
                     "near_misses": [vars(n) for n in m.near]} for m in rep.missing],
    }


def run_table(rows) -> list[str]:
    """`ldsim run --explain`: the `runexplain.ObjectRow`s as one table, in load order."""
    body = [(r.name, r.needed_by, r.step, r.bindings) for r in rows]
    text = tabulate(body, headers=("object", "needed first by", "found by", "symbols supplied"),
                    colalign=("left", "left", "left", "right"))
    return [line + "\n" for line in text.splitlines()]
