"""Init and fini order: `_dl_sort_maps_dfs` (elf/dl-sort-maps.c, the 2.36 default `dynamic_sort=2`) and
`_dl_sort_maps_original` (GLIBC_TUNABLES=glibc.rtld.dynamic_sort=1), `_dl_init`/`call_init`
(elf/dl-init.c) and `_dl_fini` (elf/dl-fini.c)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Sequence

from ldsim.linkmap import LinkMap


def sort_maps(maps: Sequence[LinkMap], initfini: Callable[[LinkMap], Sequence[LinkMap] | None],
              force_first: bool, algorithm: int = 2, main_map: LinkMap | None = None) -> list[LinkMap]:
    """_dl_sort_maps: the algorithm glibc.rtld.dynamic_sort chose (1 original, else DFS)."""
    if algorithm == 1:
        return sort_maps_original(maps, initfini, force_first)
    return sort_maps_dfs(maps, initfini, force_first, main_map)


def sort_maps_original(maps: Sequence[LinkMap], initfini: Callable[[LinkMap], Sequence[LinkMap] | None],
                       force_first: bool) -> list[LinkMap]:
    """_dl_sort_maps_original without relocation dependencies: each object is moved behind the last one
    that depends on it; `seen` counts the moves of each place so that a cycle ends the loop."""
    out = [m for m in maps if not m.faked]
    head, rest = (out[:1], out[1:]) if force_first else ([], out)
    n = len(rest)
    if n <= 1:
        return head + rest
    deps = {id(m): [id(d) for d in initfini(m) or ()] for m in rest}
    seen = [0] * n
    i = 0
    while True:
        seen[i] += 1
        this = rest[i]
        k = n - 1
        moved = False
        while k > i:
            if id(this) in deps[id(rest[k])]:
                del rest[i]
                rest.insert(k, this)
                if seen[i + 1] > n - i:  # the object now in place i was seen too often: a cycle
                    i += 1
                    seen[i:] = [0] * (n - i)
                else:
                    seen.insert(k, seen.pop(i))
                moved = True
                break
            k -= 1
        if moved:
            continue
        i += 1
        if i == n:
            break
        seen[i:] = [0] * (n - i)
    return head + rest


def sort_maps_dfs(maps: Sequence[LinkMap], initfini: Callable[[LinkMap], Sequence[LinkMap] | None],
                  force_first: bool, main_map: LinkMap | None = None) -> list[LinkMap]:
    """_dl_sort_maps_dfs without relocation dependencies: reverse postorder of a DFS started from each
    map, last to first, following each map's l_initfini ([itself, its DT_NEEDED deps and filtees]).
    `main_map`: the map with l_main_map set, which dfs_traversal never enters through an edge (a library
    needing the program); rtld.c sets it only when ld.so maps the program itself (`ld.so PROG`)."""
    visited: set[int] = set()
    rpo: list[LinkMap] = []

    def dfs(m: LinkMap) -> None:
        if id(m) in visited or m.faked:
            return
        visited.add(id(m))
        for dep in initfini(m) or ():
            if id(dep) not in visited and dep is not main_map:
                dfs(dep)
        rpo.append(m)

    for m in reversed(maps):
        dfs(m)
        if len(rpo) == len(maps):
            break
    out = rpo[::-1]
    if force_first and maps and out and out[0] is not maps[0]:
        out.remove(maps[0])
        out.insert(0, maps[0])
    return out


def startup_initfini(main: LinkMap, searchlist: Sequence[LinkMap], libc: LinkMap | None,
                     algorithm: int = 2) -> list[LinkMap]:
    """main's l_initfini at the end of _dl_map_object_deps: the search list sorted, main kept first
    unless main is libc itself.  Main has no l_initfini yet (the breadth-first walk makes one for every
    object but the map it starts from: `l != map`), so a library needing the program adds no order.
    Filtees of main come before it in the search list; l_initfini takes main first, then them, then
    the rest ("Always initialize the binary itself last", elf/dl-deps.c)."""
    at = searchlist.index(main) if main in searchlist else 0
    maps = [*searchlist[at:at + 1], *searchlist[:at], *searchlist[at + 1:]]
    return sort_maps(maps, lambda m: [m, *m.deps] if not m.faked and m is not main else None,
                     force_first=maps[0] is not libc, algorithm=algorithm)


def fini_order(objects: Sequence[LinkMap], main: LinkMap, main_initfini: Sequence[LinkMap],
               main_marked: bool, algorithm: int = 2) -> list[LinkMap]:
    """_dl_fini: the object list (l_next order) sorted with force_first; main's l_initfini is by now
    the sorted startup list.  main_marked: as for startup_initfini."""
    def initfini(m: LinkMap) -> Sequence[LinkMap] | None:
        if m is main:
            return main_initfini
        if m.faked or m.elf is None and not m.deps:
            return None
        return [m, *m.deps]
    return sort_maps(list(objects), initfini, force_first=True, algorithm=algorithm,
                     main_map=main if main_marked else None)
