"""Why was this object loaded from there, or why not at all?  The model behind `ldsim why` and `ldsim tree`.

A simulated startup (in trace mode, so that a missing object does not stop the walk) already records every
request (`Startup.requests`): who asked, by which name, which search lists were walked and every candidate
tried.  This module turns that record into answers: the chains of requests leading to an object, the exact
step and path element that found it, what later steps would have found (shadowed alternatives), and for a
miss every directory searched, why other lists did not apply, and files elsewhere that nearly match.

Pure given a World: it reads files (near misses) but never prints; `render/explain.py` makes the text.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from ldsim.config import Invocation, Mode, read_environment
from ldsim.dst import expand
from ldsim.elf import DF1, ElfError
from ldsim.linkmap import FileCache, Kind, LinkMap, file_id
from ldsim.ldcache import CacheFault
from ldsim.loader import FATAL, Process, Request, rpath_inhibited
from ldsim.search import NONEXISTING, CacheStep, LoadError, PathStep, SearchResult, _split, search_steps
from ldsim.world import World

MAX_CHAINS = 32


def simulate(world: World, inv: Invocation, files: FileCache, program: str, *, direct: bool = False,
             library_path: str | None = None, inhibit_cache: bool = False, preload: str | None = None) -> Process:
    """Start PROGRAM the way `exec` (or `ld.so PROGRAM` when direct) would, in trace mode."""
    from ldsim.credentials import secure_for_exec
    # AT_SECURE as the kernel decides it for the exec (of ld.so itself when direct), with secure rules;
    # the trace request is ldsim's own, so no exit 5 here
    cfg = read_environment(inv.env, secure_for_exec(world, inv.profile.rtld if direct else program,
                                                    inv.credentials, inv.secure))
    cfg.mode = Mode.TRACE
    if library_path is not None:
        cfg.library_path, cfg.library_path_source = library_path, "--library-path"
    cfg.inhibit_cache |= inhibit_cache
    cfg.preload_opt = preload
    proc = Process(world, inv, cfg, files, program=program, direct=direct,
                   rtld_path=inv.profile.rtld if direct else None)
    proc.start()
    return proc


def label(proc: Process, m: LinkMap | None) -> str:
    """How an object is named in explanations: its path, the program as given for the main map."""
    if m is None:
        return "(none)"
    if m.kind is Kind.MAIN:
        return proc.program
    return m.name or (m.names[0] if m.names else "?")


# ------------------------------------------------------------------------------------------ steps


def _normalise(elem: str) -> str:
    n = len(elem)
    while n > 1 and elem[n - 1] == "/":
        n -= 1
    elem = elem[:n]
    return elem if elem.endswith("/") else elem + "/"


def element_for(proc: Process, step: PathStep, directory: str) -> str | None:
    """The raw path element (as written in DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH) that became `directory`."""
    if step.owner is not None and step.owner.elf is not None:
        raw = step.owner.elf.runpath if step.step == "RUNPATH" else step.owner.elf.rpath
        seps, dst = ":", proc.dst_values(step.owner)
    elif step.step in ("LD_LIBRARY_PATH", "--library-path"):
        raw, seps = proc.cfg.library_path, ":;"
        dst = proc.dst_values(proc.main) if proc.main is not None else None
    else:
        return None
    if raw is None or dst is None:
        return None
    for elem in _split(raw, seps):
        value = expand(elem, dst) if elem else ""
        if (elem == "" and directory == "") or (value and _normalise(value) == directory):
            return elem
    return None


def step_name(proc: Process, step: PathStep | CacheStep) -> str:
    if isinstance(step, CacheStep):
        return f"ld.so.cache ({proc.profile.cache_file})"
    if step.owner is not None:
        return f"DT_{step.step} of {label(proc, step.owner)}"
    return step.step


def describe_found(proc: Process, req: Request) -> str:
    """"DT_RUNPATH of /opt/app/lib/libfoo.so.1: $ORIGIN/../lib -> /opt/app/lib" and the like."""
    res = req.search
    if req.reused in ("name", "soname"):
        how = "its soname" if req.reused == "soname" else "this name"
        target = req.result
        if target is not None and target.kind is Kind.RTLD:
            return f"already loaded: ld.so itself, known by {how}"
        return f"already loaded under {how}: {label(proc, target)}"
    if res is None or res.found is None:
        return "not found"
    f = res.found
    sub = f" (hwcaps subdirectory {f.subdir.rstrip('/')})" if f.subdir else ""
    if f.step == "direct":
        text = "the name contains '/': opened as given, no search"
    elif f.step == "cache":
        text = f"ld.so.cache ({f.directory}) entry -> {f.path}"
    else:
        step = next((s.step for s in res.steps if s.outcome == "found"), None)
        shown = (f.directory or "").rstrip("/") or ("/" if f.directory == "/" else "(current directory)")
        if isinstance(step, PathStep) and step.owner is not None:
            elem = element_for(proc, step, f.directory or "")
            text = f"DT_{f.step} of {label(proc, step.owner)}: {elem} -> {shown}" if elem is not None \
                else f"DT_{f.step} of {label(proc, step.owner)}: {shown}"
        elif isinstance(step, PathStep) and step.step in ("LD_LIBRARY_PATH", "--library-path"):
            elem = element_for(proc, step, f.directory or "")
            text = f"{f.step}: {elem} -> {shown}" if elem not in (None, shown) else f"{f.step}: {shown}"
        else:
            text = f"{f.step}: {shown}"
    if req.reused == "file":
        text += f"; the same file was already loaded as {label(proc, req.result)}"
    return text + sub + _trace_label_note(proc, res)


def _trace_label_note(proc: Process, res: SearchResult) -> str:
    """The real LD_DEBUG=libs trace labels a run of directories with the label of the first one's
    creator (print_search_path); a directory entry is shared by every list naming it (fillin_rpath reuses
    it), so the line may name another object's list than the one searched.  Say so when it does."""
    step = next((s.step for s in res.steps or () if s.outcome == "found"), None)
    if not isinstance(step, PathStep) or res.found is None:
        return ""
    what, where = None, None
    for rec in step.records:
        if rec.what != what:
            what, where = rec.what, rec.where
        if rec.dirname == res.found.directory:
            break
    else:
        return ""
    own = step.owner.name if step.owner is not None else None
    if what == step.step and where == own:
        return ""
    shown = f"{what} from file {where or proc.searcher.argv0()}" if where is not None else what
    return f" (LD_DEBUG=libs lists this directory under ({shown}): the loader shares one entry per directory)"


# ------------------------------------------------------------------------------------------ chains


def edges_from(proc: Process, m: LinkMap) -> list[Request]:
    return [r for r in proc.result.requests if r.loader is m and r.via != "program"]


def chains_to(proc: Process, targets: list[LinkMap], failed: list[Request]) -> list[list[Request]]:
    """Every request path from the program to a target object (or to a failed request), depth first."""
    out: list[list[Request]] = []
    tset = set(map(id, targets))
    fset = set(map(id, failed))
    main = proc.main

    def walk(m: LinkMap, path: list[Request], seen: set[int]) -> None:
        for r in edges_from(proc, m):
            if len(out) >= MAX_CHAINS:
                return
            if id(r) in fset or (r.result is not None and id(r.result) in tset):
                out.append(path + [r])
                continue
            if r.result is None or r.result.faked or id(r.result) in seen:
                continue
            walk(r.result, path + [r], seen | {id(r.result)})

    if main is not None:
        walk(main, [], {id(main)})
    return out


# ------------------------------------------------------------------------------------------ the model


@dataclass
class Tried:
    path: str
    outcome: str


@dataclass
class FoundReport:
    target: LinkMap
    request: Request  # the request whose search mapped it
    how: str
    rejected: list[Tried]  # candidates tried before it
    shadowed: list[Tried]  # candidates later steps would have found
    others: list[Request]  # the other requests that ended at this object


@dataclass
class DirRow:
    step: str
    directory: str
    element: str | None
    result: str


@dataclass
class NearMiss:
    path: str
    why: str  # what is wrong with it for this request
    fix: str  # the one change that would make the loader find it


@dataclass
class MissReport:
    request: Request
    rows: list[DirRow]
    reasons: list[str]
    near: list[NearMiss]


@dataclass
class WhyReport:
    program: str
    lib: str
    chains: list[list[Request]] = field(default_factory=list)
    found: list[FoundReport] = field(default_factory=list)
    missing: list[MissReport] = field(default_factory=list)
    status: int | None = None  # the simulated startup's exit status when it stopped early
    errors: list[str] = field(default_factory=list)
    implicit: list[Implicit] = field(default_factory=list)  # loaded without any request


@dataclass
class Implicit:
    """An object in the list that no search loaded: the program, ld.so itself, the vDSO."""
    target: LinkMap
    how: str


def matches(world: World, m: LinkMap, lib: str) -> bool:
    if m.kind is Kind.VDSO and lib != m.name:
        return False
    if "/" in lib:
        if m.faked:
            return m.name == lib
        try:
            return m.name == lib or world.realpath(m.name) == world.realpath(lib)
        except OSError:
            return False
    if (lib in m.names or m.soname == lib or posixpath.basename(m.name) == lib
            or any(posixpath.basename(n) == lib for n in m.names)):
        return True
    # the file's own name when it was opened through a symlink (libfoo.so -> libfoo.so.1.2)
    try:
        return bool(m.name) and not m.faked and posixpath.basename(world.realpath(m.name)) == lib
    except OSError:
        return False


def _request_matches(r: Request, lib: str) -> bool:
    return r.name == lib or ("/" not in lib and posixpath.basename(r.name) == lib)


def explain(proc: Process, lib: str) -> WhyReport:
    rep = WhyReport(proc.program, lib, status=proc.result.status)
    world = proc.world
    targets = [m for m in proc.objects if not m.faked and (matches(world, m, lib) or
                                                            m is proc.main and _is_program(proc, lib))]
    failed = [r for r in proc.result.requests
              if (r.result is None or r.result.faked) and r.via != "program" and _request_matches(r, lib)]
    rep.chains = chains_to(proc, targets, failed)
    for m in targets:
        reqs = [r for r in proc.result.requests if r.result is m]
        if not reqs or all(r.via == "program" for r in reqs):
            how = _implicit_how(proc, m)
            if how is not None:
                rep.implicit.append(Implicit(m, how))
            continue
        loading = next((r for r in reqs if r.reused is None and r.search is not None), reqs[0] if reqs else None)
        if loading is None:
            continue
        loading = _asked_request(reqs, loading, lib)
        rep.found.append(_found_report(proc, m, loading, [r for r in reqs if r is not loading]))
    for r in failed:
        rep.missing.append(_miss_report(proc, r))
    for e in proc.result.events:
        if getattr(e, "stream", 0) == 2:
            rep.errors.append(e.text.rstrip("\n"))
    return rep


def _is_program(proc: Process, lib: str) -> bool:
    """LIB names the program's own file (a path to it)."""
    if "/" not in lib:
        return False
    try:
        return proc.world.realpath(lib) == proc.world.realpath(proc.program)
    except OSError:
        return False


def _implicit_how(proc: Process, m: LinkMap) -> str | None:
    """Why an object is in the list though no request loaded it (rtld.c dl_main, elf/setup-vdso.h)."""
    if m.kind is Kind.VDSO:
        return ("the vDSO: the kernel maps it into every process, and ld.so adds its link map before "
                "any search (setup_vdso)")
    if m.kind is Kind.RTLD:
        how = "run as the command (ld.so PROGRAM)" if proc.direct else "the program's PT_INTERP, mapped by the kernel"
        return f"the dynamic loader itself ({how}): its link map is in the list from the start, no search"
    if m.kind is Kind.MAIN:
        how = "ld.so maps it (ld.so PROGRAM)" if proc.direct else "the kernel maps it (execve)"
        return f"the program itself: {how}, no search"
    return None


def _asked_request(reqs: list[Request], loading: Request, lib: str) -> Request:
    """The request to explain for LIB: the one that mapped the object, unless LIB names only another
    request that searched on its own and found the same file (dev/ino) already loaded; the real trace
    shows that request's own search (_dl_map_object_from_fd returns the existing map after it)."""
    if _request_matches(loading, lib):
        return loading
    return next((r for r in reqs if r.reused == "file" and r.search is not None and _request_matches(r, lib)),
                loading)


def _probe(proc: Process, path: str) -> str | None:
    """What open_verify would say of `path` now: None = absent, "ok", or why it would be skipped/fail."""
    try:
        proc.world.stat(path)
    except OSError:
        return None
    res = SearchResult(None, None, None)
    try:
        opened = proc.searcher.open_verify(path, res)
    except LoadError as e:
        return FATAL + e.message
    if opened is None:
        return res.tried[-1].outcome if res.tried else "not usable"
    return "ok"


def _candidates(proc: Process, step: PathStep | CacheStep, name: str, loader: LinkMap | None) -> list[str]:
    if isinstance(step, CacheStep):
        cache = proc.searcher.cache()
        if cache is None:
            return []
        try:
            hit = proc.searcher.cache_lookup(name)
        except CacheFault:  # the loader died reading the cache (see loader._search)
            return []
        return [hit] if hit else []
    if step.step == "system search path":
        owner = loader or proc.main
        if owner is not None and owner.elf is not None and owner.elf.flags_1 & DF1.NODEFLIB:
            return []
    return [rec.dirname + sub + name for rec in step.records for sub in proc.searcher.capstr]


def _found_report(proc: Process, m: LinkMap, req: Request, others: list[Request]) -> FoundReport:
    res = req.search
    rejected: list[Tried] = []
    shadowed: list[Tried] = []
    if res is not None:
        found_path = res.found.path if res.found else None
        rejected = [Tried(c.path, c.outcome) for c in res.tried if c.path != found_path]
        if "/" not in req.name and res.found is not None:
            shadowed = _shadowed(proc, m, req, found_path)
    return FoundReport(m, req, describe_found(proc, req), rejected, shadowed, others)


def _shadowed(proc: Process, m: LinkMap, req: Request, found_path: str) -> list[Tried]:
    """Candidates after the one that won, in search order: what would load if it were gone."""
    out: list[Tried] = []
    after = False
    seen: set[str] = set()
    steps = search_steps(proc.searcher, req.loader, proc.main, proc.rpath_of, proc.runpath_of, False)
    for step in steps:
        for path in _candidates(proc, step, req.name, req.loader):
            if path == found_path:
                after = True
                continue
            if not after or path in seen:
                continue
            seen.add(path)
            verdict = _probe(proc, path)
            if verdict is None:
                continue
            same = _same_file(proc, path, m)
            out.append(Tried(path, "the same file" if same else
                             f"{step_name(proc, step)}: " + ("would load" if verdict == "ok" else verdict)))
    return out


def _same_file(proc: Process, path: str, m: LinkMap) -> bool:
    try:
        return m.file_id is not None and file_id(proc.world.stat(path)) == m.file_id
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ misses


def _rows(proc: Process, r: Request) -> list[DirRow]:
    rows: list[DirRow] = []
    res = r.search
    if res is None:
        return rows
    if "/" in r.name:
        outcome = res.tried[-1].outcome if res.tried else "not opened"
        return [DirRow("the name contains '/': no search", r.name, None, outcome)]
    for so in res.steps:
        step = so.step
        if isinstance(step, CacheStep):
            result = {"no cache entry": f"no entry for {r.name}",
                      "not found": f"entry {so.cached} does not load"}.get(so.outcome, so.outcome)
            if so.cached and so.outcome.startswith("skipped"):
                result = f"entry {so.cached} skipped: DF_1_NODEFLIB forbids system directories"
            rows.append(DirRow(step_name(proc, step), proc.profile.cache_file, None, result))
            continue
        if so.outcome.startswith("skipped"):
            rows.append(DirRow(step_name(proc, step), "(all)", None,
                               "skipped: the requester has DF_1_NODEFLIB (-z nodeflib)"))
            continue
        for rec in step.records:
            if rows and rows[-1].result.count(FATAL):
                break  # open_verify's fatal error ended the request: later directories were not reached
            tried = [c for c in res.tried if posixpath.dirname(c.path) + "/" == rec.dirname or
                     (c.path.startswith(rec.dirname) and _is_subdir_candidate(proc, rec.dirname, c.path))]
            if all(s == NONEXISTING for s in rec.status):
                # open_path tries a directory of unknown status once, then marks it nonexisting
                result = "directory does not exist" + (" (its paths were tried once)" if tried else "")
            else:
                bad = [c for c in tried if c.outcome != "absent"]
                result = "; ".join(f"{c.path}: {c.outcome}" for c in bad) if bad else f"no {r.name} here"
            shown = rec.dirname.rstrip("/") or ("/" if rec.dirname == "/" else "(current directory)")
            rows.append(DirRow(step_name(proc, step), shown, element_for(proc, step, rec.dirname), result))
    return rows


def _is_subdir_candidate(proc: Process, dirname: str, path: str) -> bool:
    rest = path[len(dirname):]
    return any(sub and rest.startswith(sub) and "/" not in rest[len(sub):] for sub in proc.searcher.capstr)


def _chain(m: LinkMap | None) -> list[LinkMap]:
    out = []
    while m is not None:
        out.append(m)
        m = m.loader
    return out


def _unknown_origin(a: LinkMap) -> list[str]:
    """An executed program's $ORIGIN is unknown when /proc/self/exe cannot be read (a root without procfs
    on /proc) and LD_ORIGIN_PATH is unset: _dl_dst_substitute drops every element that uses it."""
    if a.kind is not Kind.MAIN or a.origin is not None:
        return []
    tag, value = (("DT_RUNPATH", a.elf.runpath) if a.elf.runpath is not None
                  else ("DT_RPATH", a.elf.effective_rpath))
    if not value or "ORIGIN" not in value:
        return []
    return [f"$ORIGIN of the executable is unknown (/proc/self/exe cannot be read in this root and "
            f"LD_ORIGIN_PATH is not set): the elements of its {tag} ({value}) that use it were dropped"]


def _reasons(proc: Process, r: Request) -> list[str]:
    """Why each possible search list was or was not part of this request's search."""
    out: list[str] = []
    x = r.loader
    main = proc.main
    xl = label(proc, x)
    if "/" in r.name:
        return [f"{r.name!r} contains '/': it is opened as given (relative to the current directory "
                "unless absolute), and no search list applies"]
    fatal = _fatal(r)
    if fatal is not None:
        out.append(f"the search stopped at {fatal}: open_verify's errors other than a wrong class, machine or "
                   "ABI end the request, and no later directory or list is tried")
    chain = _chain(x)
    if main is not None and main not in chain:
        chain.append(main)
    x_runpath = x is not None and x.elf is not None and x.elf.runpath is not None
    for a in chain:
        if a.elf is None:
            continue
        out += _unknown_origin(a)
        al = "the executable" if a.kind is Kind.MAIN else label(proc, a)
        if a.elf.runpath is not None and a is not x:
            kind = "the executable" if a.kind is Kind.MAIN else al
            out.append(f"the DT_RUNPATH of {kind} ({a.elf.runpath}) does not apply to indirect dependencies: "
                       f"RUNPATH serves only the object's own DT_NEEDED, and {r.name} is needed by {xl}")
        if a.elf.rpath is not None and a.elf.runpath is not None:
            out.append(f"the DT_RPATH of {al} is ignored because it also has DT_RUNPATH")
        elif a.elf.rpath is not None and x_runpath:
            out.append(f"the DT_RPATH of {al} ({a.elf.rpath}) is not used: the requester {xl} has DT_RUNPATH, "
                       "which disables every RPATH for its requests")
        elif a.elf.rpath is not None and a.rpath_dirs is False:
            inh = proc.cfg.inhibit_rpath
            if inh is not None and rpath_inhibited(inh, a.name):
                out.append(f"the DT_RPATH of {al} is disabled by --inhibit-rpath")
            elif a.elf.rpath == "":
                out.append(f"the DT_RPATH of {al} is empty, which disables it")
            elif proc.cfg.secure and all(not expand(e, proc.dst_values(a)) for e in _split(a.elf.rpath, ":") if e):
                trusted = " and, in the executable's paths, only inside a trusted directory" \
                    if a.kind is Kind.MAIN else ""
                out.append(f"the DT_RPATH of {al} ({a.elf.rpath}) was dropped in secure mode: $ORIGIN is kept "
                           f"only as the first token of an element{trusted}")
            else:
                out.append(f"the DT_RPATH of {al} ({a.elf.rpath}) was dropped: none of its directories exist")
    if x is not None and x.elf is not None and x.elf.runpath is None and x.elf.rpath is None:
        out.append(f"the requester {xl} has neither DT_RPATH nor DT_RUNPATH")
    if proc.cfg.library_path is None or proc.cfg.library_path == "":
        if proc.cfg.secure and dict(proc.inv.env).get("LD_LIBRARY_PATH"):
            out.append("LD_LIBRARY_PATH is set but ignored in secure mode (AT_SECURE)")
        else:
            out.append("LD_LIBRARY_PATH is not set")
    for a in _chain(x) + ([main] if main is not None and main not in _chain(x) else []):
        if a.rpath_dirs is not False:  # a list dropped whole is explained above
            out += [f"the element {e} of {label(proc, a)}'s path list was dropped in secure mode: $ORIGIN is "
                    "kept only where it names a trusted directory" for e, _ in _secure_dropped(proc, a)]
    if proc.cfg.inhibit_cache:
        out.append("the cache is not consulted (--inhibit-cache)")
    owner = x or main
    if owner is not None and owner.elf is not None and owner.elf.flags_1 & DF1.NODEFLIB:
        out.append(f"{label(proc, owner)} has DF_1_NODEFLIB: cache entries in system directories and the "
                   "system directories themselves are skipped")
    return out


def _scan_dirs(proc: Process, r: Request) -> list[str]:
    """Where a near miss may be: every path list of every object, LD_LIBRARY_PATH, the system dirs,
    the cache's directories, beside each loaded object, and the usual lib directories beside the program."""
    dirs: list[str] = []

    def add(d: str | None) -> None:
        if d and d.startswith("/"):
            d = _normalise(d)
            if d not in dirs:
                dirs.append(d)

    for m in proc.objects:
        if m.faked or m.elf is None:
            continue
        dst = proc.dst_values(m)
        for raw in (m.elf.rpath, m.elf.runpath):
            for elem in _split(raw or "", ":"):
                add(expand(elem, dst) if elem else None)
        if m.origin:
            add(m.origin)
            for rel in ("lib", "lib64", proc.profile.lib, "../lib", "../lib64", f"../{proc.profile.lib}"):
                add(posixpath.normpath(posixpath.join(m.origin, rel)))
    if proc.cfg.library_path and proc.main is not None:
        for elem in _split(proc.cfg.library_path, ":;"):
            add(expand(elem, proc.dst_values(proc.main)) if elem else None)
    for d in proc.profile.system_dirs:
        add(d)
    for d in ("/usr/local/lib", "/usr/local/lib64", "/lib64", "/usr/lib64", "/lib32", "/usr/lib32"):
        add(d)
    cache = proc.searcher.cache()
    if cache is not None:
        for e in cache.entries:
            add(posixpath.dirname(e.path))
    return dirs


def _soname_of(proc: Process, path: str) -> str | None:
    try:
        return proc.files.parse(proc.world.open(path)).soname
    except (OSError, ElfError):
        return None


def _find_files(proc: Process, name: str, dirs: list[str]) -> list[str]:
    stem = name.split(".so", 1)[0]
    out: list[str] = []
    for d in dirs:
        try:
            entries = proc.world.listdir(d.rstrip("/") or "/")
        except OSError:
            continue
        for e in sorted(entries):
            if e == name or (e.startswith(stem + ".so") and stem and _soname_of(proc, d + e) == name):
                out.append(d + e)
    return out


def _fatal(r: Request) -> str | None:
    """The candidate whose fatal open_verify error ended this request's search, if any."""
    res = r.search
    return next((c.path for c in (res.tried or []) if c.outcome.startswith(FATAL)), None) if res else None


def _searched_dirs(r: Request) -> set[str]:
    """The directories the search reached (up to a fatal candidate)."""
    res = r.search
    out: set[str] = set()
    fatal = _fatal(r)
    for so in (res.steps if res else []):
        if isinstance(so.step, PathStep) and not so.outcome.startswith("skipped"):
            for rec in so.step.records:
                out.add(rec.dirname)
                if fatal is not None and fatal.startswith(rec.dirname) and so.outcome == "stopped":
                    return out
    return out


def _rel(frm: str, to: str) -> str:
    rel = posixpath.relpath(to.rstrip("/") or "/", frm)
    return "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"


def _fix(proc: Process, r: Request, path: str, verdict: str) -> tuple[str, str]:
    """(what is wrong with `path` for this request, the one change that makes the loader find it)."""
    d = posixpath.dirname(path) + "/"
    base = posixpath.basename(path)
    x = r.loader
    if verdict.startswith(FATAL):
        return (f"the loader stops the whole search at it: {verdict[len(FATAL):]}",
                f"remove or replace {path}: a file that is not a loadable ELF object is fatal (open_verify)")
    if verdict != "ok":
        return (f"the loader would skip it: {verdict}",
                f"install a build of {r.name} for this machine and class ({proc.profile.name})")
    fatal = _fatal(r)
    if fatal is not None and d not in _searched_dirs(r):
        return (f"the search stopped at {fatal} before reaching it", f"remove or replace {fatal}")
    if d in _searched_dirs(r):
        if base != r.name:
            return (f"its file name is {base}, not {r.name} (its DT_SONAME)",
                    f"create the link {d}{r.name} -> {base} (ldconfig {d.rstrip('/')} does it)")
        return ("it was searched for but not usable at the time", "check its permissions")
    link = "" if base == r.name else f", and link {r.name} -> {base} there"
    if x is None or x.kind is Kind.MAIN and x.elf is None:
        return (f"{d.rstrip('/')} is not in any search list", f"set LD_LIBRARY_PATH={d.rstrip('/')}{link}")
    target = "the executable" if x.kind is Kind.MAIN else label(proc, x)
    where = f"{d.rstrip('/')} is not in any search list of this request"
    for a in _chain(x)[1:] + ([proc.main] if proc.main not in _chain(x) else []):
        if a is not None and a.elf is not None and a.elf.runpath is not None and d in _dirs_of(proc, a):
            where = (f"{d.rstrip('/')} is in the DT_RUNPATH of "
                     f"{'the executable' if a.kind is Kind.MAIN else label(proc, a)}, which is not inherited")
    for a in _chain(x) + [proc.main]:
        elem = next((e for e, dd in _secure_dropped(proc, a) if posixpath.normpath(dd) == posixpath.normpath(d)),
                    None) if a is not None else None
        if elem is not None:
            where = (f"{d.rstrip('/')} is named by {elem} in a path list of "
                     f"{'the executable' if a.kind is Kind.MAIN else label(proc, a)}, dropped in secure mode")
            break
    force = " --force-rpath" if x.elf is not None and x.elf.rpath is not None and x.elf.runpath is None else ""
    # in secure mode $ORIGIN survives only in trusted directories (_dl_dst_substitute): name d itself
    new = d.rstrip("/") or "/" if proc.cfg.secure else _rel(x.origin or "/", d)
    return (where, f"add {new} to the search path of {target}: "
                   f"patchelf{force} --add-rpath '{new}' {label(proc, x)}{link}")


def _secure_dropped(proc: Process, a: LinkMap) -> list[tuple[str, str]]:
    """(element, directory it would name) for each $ORIGIN element of A's DT_RPATH/DT_RUNPATH that secure
    mode dropped (it expanded to nothing)."""
    if not proc.cfg.secure or a.elf is None or not a.origin:
        return []
    out = []
    dst = proc.dst_values(a)
    for raw in (a.elf.rpath, a.elf.runpath):
        for elem in _split(raw or "", ":"):
            if "ORIGIN" in elem and not expand(elem, dst):
                plain = elem.replace("${ORIGIN}", a.origin).replace("$ORIGIN", a.origin)
                out.append((elem, _normalise(plain)))
    return out


def _dirs_of(proc: Process, a: LinkMap) -> set[str]:
    dst = proc.dst_values(a)
    out = set()
    for elem in _split(a.elf.runpath or "", ":"):
        if elem:
            v = expand(elem, dst)
            if v:
                out.add(_normalise(v))
    return out


def _miss_report(proc: Process, r: Request) -> MissReport:
    near: list[NearMiss] = []
    if "/" not in r.name:
        ids: set[tuple[int, int]] = set()
        for path in _find_files(proc, r.name, _scan_dirs(proc, r)):
            try:
                fid = file_id(proc.world.stat(path))
            except OSError:
                continue
            if fid in ids:  # the same file reached through another directory name
                continue
            ids.add(fid)
            verdict = _probe(proc, path) or "absent"
            why, fix = _fix(proc, r, path, verdict)
            near.append(NearMiss(path, why, fix))
        cache = proc.searcher.cache()
        for e in (cache.entries if cache is not None else []):
            if e.soname == r.name and e.flags != proc.profile.cache_flags and e.path not in [n.path for n in near]:
                near.append(NearMiss(e.path, f"its ld.so.cache entry has flags {e.flags:#06x}, not "
                                     f"{proc.profile.cache_flags:#06x} (another ABI)",
                                     f"install the {proc.profile.name} build of {r.name}"))
    return MissReport(r, _rows(proc, r), _reasons(proc, r), near)
