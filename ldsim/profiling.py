"""LD_PROFILE: what ld.so's own profiler changes at startup (elf/rtld.c, elf/dl-reloc.c, elf/dl-profile.c).

`GLRO(dl_profile)` is set by a non-empty LD_PROFILE, in secure mode too (the variable is only removed from
the program's environment afterwards).  Then, in normal mode only:

* `dl_lazy |= 1` before the relocation loop, and `_dl_relocate_object` ignores DT_BIND_NOW (DF_BIND_NOW,
  DF_1_NOW) of every object: PLTs stay lazy;
* the last relocated object (ld.so excluded) with a DT_JMPREL whose name, or DT_SONAME, is LD_PROFILE
  becomes the profile map, and `_dl_start_profile` opens `OUTPUT/NAME.profile` (OUTPUT: LD_PROFILE_OUTPUT
  when not secure, else /var/tmp, or /var/profile in secure mode) with O_RDWR|O_CREAT|O_NOFOLLOW.  When
  that fails it prints `FILE: cannot open file: STRERROR` on stderr and goes on.

Not simulated: writing the file (ldsim never creates it), and the checks of an existing non-empty file
(its size and header against the profiled object's text range).
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod

from ldsim.access import R, W, may_write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ldsim.linkmap import LinkMap
    from ldsim.loader import Process


def output_dir(cfg) -> str:
    """GLRO(dl_profile_output): LD_PROFILE_OUTPUT (ignored in secure mode), else the default."""
    if cfg.profile_output is not None and not cfg.secure:
        return cfg.profile_output
    return "/var/profile" if cfg.secure else "/var/tmp"


def matches(proc: Process, m: LinkMap, name: str) -> bool:
    """_dl_name_match_p, with the DT_SONAME that _dl_map_object_from_fd adds at once when profiling (not
    for a program the kernel mapped)."""
    if name == m.name or name in m.names:
        return True
    from ldsim.linkmap import Kind
    kernel_mapped = m.kind is Kind.MAIN and not proc.direct
    return not kernel_mapped and m.elf is not None and m.elf.soname == name


def profile_map(proc: Process, relocated: list[LinkMap]) -> LinkMap | None:
    """GL(dl_profile_map): set by elf_machine_runtime_setup for each matching object with a PLT."""
    from ldsim.elf import DT
    found = None
    for m in relocated:
        if m.elf is not None and m.elf.dyn(DT.JMPREL) is not None and matches(proc, m, proc.cfg.profile):
            found = m
    return found


def open_error(proc: Process, filename: str) -> int | None:
    """The errno of open(FILENAME, O_RDWR|O_CREAT|O_NOFOLLOW, 0666) by the simulated process, or None."""
    world = proc.world
    parent = os.path.dirname(filename) or "."
    try:
        pst = world.stat(parent)
    except OSError as e:
        return e.errno or errno.ENOENT
    if not stat_mod.S_ISDIR(pst.st_mode):
        return errno.ENOTDIR
    try:
        st = world.lstat(filename)
    except FileNotFoundError:
        return None if may_write(world, filename, R | W) else errno.EACCES
    except OSError as e:
        return e.errno
    if stat_mod.S_ISLNK(st.st_mode):
        return errno.ELOOP
    if stat_mod.S_ISDIR(st.st_mode):
        return errno.EISDIR
    # O_RDWR: read and write permission, with the effective uid and gid (proc.world is the process's view)
    return None if may_write(world, filename, R | W) else errno.EACCES


def start_profile(proc: Process, relocated: list[LinkMap]) -> None:
    """After the relocation loop: _dl_start_profile for the profile map, if any."""
    if profile_map(proc, relocated) is None:
        return
    filename = f"{output_dir(proc.cfg)}/{proc.cfg.profile}.profile"
    err = open_error(proc, filename)
    if err is not None:
        from ldsim.glibc import ldso_strerror  # ld.so's minimal __strerror_r: "Error N" for most errnos
        proc.out(f"{filename}: cannot open file: {ldso_strerror(err)}\n", 2)
