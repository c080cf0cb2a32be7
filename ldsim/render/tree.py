"""`ldsim tree`: the dependency tree of a simulated startup, each edge with the search step that resolved
it.  A model (`build`) and three renderers (text lines, a JSON-ready dict, Graphviz dot).  Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from ldsim.linkmap import Kind
from ldsim.loader import Process, Request
from ldsim.why import describe_found, edges_from, label

RESET, RED, DIM, BOLD = "\033[0m", "\033[31m", "\033[2m", "\033[1m"


@dataclass
class Node:
    name: str  # the name it was requested by
    path: str | None  # where it was loaded from (None: not found)
    status: str  # "program", "loaded", "already loaded", "not found", "error"
    how: str  # the search step (or why it is not found)
    via: str = "needed"
    children: list[Node] = field(default_factory=list)


def build(proc: Process) -> Node:
    """The program at the root; an object is expanded under the request that loaded it, and every other
    edge to it is marked "already loaded"."""
    main = proc.main
    root = Node(proc.program, proc.program, "program", "the program")
    if main is None:
        return root
    expanded: set[int] = {id(main)}

    def grow(node: Node, m) -> None:
        for r in edges_from(proc, m):
            child = _node(proc, r)
            node.children.append(child)
            t = r.result
            if t is not None and not t.faked and r.reused is None and id(t) not in expanded:
                expanded.add(id(t))
                grow(child, t)
            elif t is not None and not t.faked and child.status == "loaded":
                child.status = "already loaded"
    grow(root, main)
    return root


def _node(proc: Process, r: Request) -> Node:
    t = r.result
    if t is None:
        return Node(r.name, None, "error", r.error or "failed", r.via)
    if t.faked:
        return Node(r.name, None, "not found", "not found", r.via)
    status = "already loaded" if r.reused else "loaded"
    path = label(proc, t) if t.kind is not Kind.MAIN else proc.program
    return Node(r.name, path, status, describe_found(proc, r), r.via)


def build_musl(res) -> Node:
    """The same model for a musl run (ldsim.musl.MuslResult): preloads under the program first, then
    each object's DT_NEEDED requests; an object is expanded where it was first loaded."""
    app = res.objects[0] if res.objects else None
    root = Node(app.name if app else "", app.name if app else None, "program", "the program")
    if app is None:
        return root
    nodes = {id(app): root}
    for r in res.requests:
        parent = nodes.get(id(r.requester), root) if r.requester is not None else root
        if r.result is None:
            child = Node(r.name, None, "not found", r.how, "preload" if r.requester is None else "needed")
        else:
            status = "loaded" if r.new or (r.result.is_ldso and r.how == "the loader itself"
                                           and id(r.result) not in nodes) else "already loaded"
            child = Node(r.name, r.result.name, status, r.how, "preload" if r.requester is None else "needed")
            if status == "loaded":
                nodes.setdefault(id(r.result), child)
        parent.children.append(child)
    return root


def text(root: Node, color: bool = False) -> list[str]:
    def paint(s: str, code: str) -> str:
        return f"{code}{s}{RESET}" if color else s

    out = [paint(root.name, BOLD)]

    def walk(n: Node, prefix: str) -> None:
        for i, c in enumerate(n.children):
            last = i == len(n.children) - 1
            branch = "└── " if last else "├── "
            via = "" if c.via == "needed" else f" [{c.via}]"
            if c.status == "not found":
                body = paint(f"{c.name}{via} => not found", RED)
            elif c.status == "error":
                body = paint(f"{c.name}{via} => error: {c.how}", RED)
            else:
                where = "" if c.path == c.name else f" => {c.path}"
                if c.status == "already loaded":
                    body = f"{c.name}{via}{where}" + paint(" (already loaded)", DIM)
                else:
                    body = f"{c.name}{via}{where}" + paint(f"  [{c.how}]", DIM)
            out.append(prefix + branch + body)
            walk(c, prefix + ("    " if last else "│   "))

    walk(root, "")
    return out


def as_dict(n: Node) -> dict:
    return {"name": n.name, "path": n.path, "status": n.status, "how": n.how, "via": n.via,
            "children": [as_dict(c) for c in n.children]}


def dot(root: Node) -> list[str]:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = ["digraph ldsim {", "  node [shape=box];"]
    ids: dict[str, str] = {}

    def nid(n: Node) -> str:
        key = n.path or f"missing:{n.name}"
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            style = ', color=red, fontcolor=red' if n.status in ("not found", "error") else ""
            out.append(f"  {ids[key]} [label={q(n.name if n.path is None else n.path)}{style}];")
        return ids[key]

    def walk(n: Node) -> None:
        for c in n.children:
            style = ", style=dashed" if c.status == "already loaded" else ""
            a, b = nid(n), nid(c)
            out.append(f"  {a} -> {b} [label={q(c.how)}{style}];")
            walk(c)

    nid(root)
    walk(root)
    out.append("}")
    return out
