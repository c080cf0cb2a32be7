"""The trace-mode listing ld.so writes to stdout (end of `dl_main`, elf/rtld.c): what ldd shows."""

from __future__ import annotations

from ldsim.elf import VER_FLG_WEAK
from ldsim.linkmap import LinkMap
from ldsim.loader import Process


def listing(proc: Process) -> list[str]:
    main = proc.main
    if not (main.elf and main.elf.needed):
        return ["\tstatically linked\n"]
    lines = []
    objs = proc.listed()  # rtld.c walks l_next from main_map: a filtee moved in front is not listed
    digits = 16 if proc.profile.ei_class == 2 else 8  # "0x%0*Zx" with sizeof (ElfW(Addr)) * 2
    for m in objs:
        addr = f"{m.map_start & ((1 << digits * 4) - 1):0{digits}x}"
        if m.faked:
            lines.append(f"\t{m.names[0]} => not found\n")
        elif m.names[0] == m.name:
            lines.append(f"\t{m.names[0]} (0x{addr})\n")
        else:
            lines.append(f"\t{m.names[0] or proc.argv0} => {proc.dso_filename(m)} (0x{addr})\n")
    return lines


def version_information(proc: Process) -> list[str]:
    """LD_VERBOSE: each object's needed versions and where they were found."""
    lines: list[str] = []
    for m in proc.loaded_chain():  # rtld.c: from main_map along l_next
        if m.faked or m.elf is None or not m.elf.verneed:
            continue
        if not lines:
            lines.append("\n\tVersion information:\n")
        lines.append(f"\t{proc.dso_filename(m)}:\n")
        for vn in m.elf.verneed:
            needed = proc.find_needed(vn.file, m)
            for aux in vn.entries:
                fname = needed.name if needed is not None and _match_version(aux.name, needed) else None
                weak = "[WEAK] " if aux.flags & VER_FLG_WEAK else ""
                lines.append(f"\t\t{vn.file} ({aux.name}) {weak}=> {fname if fname is not None else 'not found'}\n")
    return lines


def _match_version(name: str, m: LinkMap) -> bool:
    """rtld.c match_version: by name only."""
    return m.elf is not None and any(d.names and d.names[0] == name for d in m.elf.verdef)
