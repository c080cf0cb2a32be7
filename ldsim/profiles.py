"""Which loader rules apply: a root's own loader decides, never the host's files.

The evidence is read through the World, the way it would be found inside the root: the ELF class and
machine of the loader binary and the SYSTEM_DIRS string compiled into it (elf/dl-load.c keeps them as one
NUL-separated `system_dirs` array), the program's PT_INTERP, and for musl the `ld-musl-ARCH.so.1` name.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod

from ldsim.elf import read_ident
from ldsim.glibc import DEBIAN_X86_64, PROFILES, Profile, profile_from_toml
from ldsim.kernelabi import KernelAbis, interp_errno
from ldsim.world import World

_READ_LIMIT = 4 << 20  # a loader is ~200 KiB; never read more than this of a file that claims to be one


def is_musl_interp(path: str | None) -> bool:
    """musl's dynamic linker is installed as /lib/ld-musl-ARCH.so.1 (musl's Makefile, `LDSO_PATHNAME`)."""
    return bool(path) and path.rsplit("/", 1)[-1].startswith("ld-musl-") and path.endswith(".so.1")


def _read(world: World, path: str, limit: int = _READ_LIMIT) -> bytes | None:
    try:
        return world.read(path, limit)
    except OSError:
        return None


_VERSION_HEAD = b"ld.so ("
_VERSION_TAIL = b") stable release version "


def loader_version(data: bytes) -> str | None:
    """The package version compiled into a glibc loader: its --version text (elf/rtld.c `_dl_version`)
    starts `ld.so (PKGVERSION) stable release version`.  None when the binary holds no such text."""
    at = data.find(_VERSION_HEAD)
    while at >= 0:
        start = at + len(_VERSION_HEAD)
        end = data.find(_VERSION_TAIL, start, start + 256)
        if end >= 0 and b"\0" not in data[start:end] and b"\n" not in data[start:end]:
            return data[start:end].decode("utf-8", "replace")
        at = data.find(_VERSION_HEAD, start)
    return None


def identify_loader(world: World, rtld: str) -> Profile | None:
    """The profile of the glibc loader at `rtld` in this world: same class and machine, and its
    SYSTEM_DIRS compiled in.  A loader of a known ABI whose directories are unknown gets the profile
    whose RTLD is that path (the best guess); anything else is None.  The profile carries the version
    the binary itself prints (a root's libc6 need not be the build the profile was written from)."""
    data = _read(world, rtld)
    if data is None:
        return None
    found = _identify(data, rtld)
    version = loader_version(data) if found is not None else None
    if found is None or version is None or version == found.version:
        return found
    return Profile(**{**{f: getattr(found, f) for f in Profile._fields}, "version": version})


def _identify(data: bytes, rtld: str) -> Profile | None:
    """The shipped profile of a loader binary (`data`, installed at `rtld`), by ABI and SYSTEM_DIRS."""
    ident = read_ident(data[:64])
    if ident is None or not ident.magic_ok:
        return None
    same_abi = [p for p in PROFILES.values() if (p.ei_class, p.e_machine) == (ident.ei_class, ident.e_machine)]
    for p in same_abi:
        at = data.find(p.system_dirs_blob + b"\0")
        while at >= 0:
            if at == 0 or data[at - 1] == 0:  # the array starts the string, not inside a longer one
                return p
            at = data.find(p.system_dirs_blob + b"\0", at + 1)
    for p in same_abi:
        if p.rtld == rtld:
            return p
    return None


def detect_root(world: World) -> Profile:
    """The profile of a root's primary loader: the first shipped profile whose RTLD exists in the root
    and identifies as that profile (x86-64 before i386, so a biarch root is an x86-64 one)."""
    order = sorted(PROFILES.values(), key=lambda p: (p.arch != "x86_64", p.name))
    for p in order:
        found = identify_loader(world, p.rtld)
        if found is not None and found.name == p.name:
            return found
    for p in order:  # a loader whose build is unknown: the one its path and ABI suggest
        found = identify_loader(world, p.rtld)
        if found is not None:
            return found
    return _from_cache(world) or DEBIAN_X86_64


def _from_cache(world: World) -> Profile | None:
    """A root without a loader: the profile most of whose cache entries it would take (flags accepted,
    path in its system directories) — the cache was written by the root's own ldconfig."""
    from ldsim.ldcache import parse_cache
    data = _read(world, "/etc/ld.so.cache", 64 << 20)
    if not data:
        return None
    entries = parse_cache(data).entries
    best, best_score = None, 0
    for p in PROFILES.values():
        accepted = p.cache_flags_accepted or (p.cache_flags,)
        score = sum(1 for e in entries if e.flags in accepted and e.path.startswith(p.system_dirs))
        if score > best_score:
            best, best_score = p, score
    return best


def interp_of(head: bytes) -> str | None:
    """Pure: PT_INTERP from the first bytes of an ELF file, or None."""
    return _interp(head)[1]


def _interp(head: bytes) -> tuple[bool, str | None]:
    """(decided, PT_INTERP): decided is False when the headers or the string lie beyond `head`.
    Little-endian files only; anything else is decided as None."""
    import struct
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[5] != 1:
        return True, None
    if head[4] == 2:
        if len(head) < 64:
            return True, None
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        ph, off_at, size_at = "<IIQQQQQQ", 2, 5
    elif head[4] == 1:
        phoff, = struct.unpack_from("<I", head, 28)
        phentsize, phnum = struct.unpack_from("<HH", head, 42)
        ph, off_at, size_at = "<IIIIIIII", 1, 4
    else:
        return True, None
    if phentsize != struct.calcsize(ph):
        return True, None
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + phentsize > len(head):
            return False, None
        fields = struct.unpack_from(ph, head, at)
        if fields[0] == 3:  # PT_INTERP
            off, size = fields[off_at], fields[size_at]
            raw = head[off:off + size]
            if off + size > len(head):
                return False, None
            return True, raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") if raw else None
    return True, None


def program_interp(world: World, path: str) -> str | None:
    """PT_INTERP of a program, or None (static, unreadable, not ELF).  Reads the first page, where the
    linker puts PT_INTERP; only a file that has it further in is read whole."""
    head = _read(world, path, 4096)
    if head is None:
        return None
    decided, found = _interp(head)
    if decided or len(head) < 4096:
        return found
    data = _read(world, path, 64 << 20)
    return interp_of(data) if data else None


def exec_error(world: World, program: str, abis: KernelAbis | None = None) -> str | None:
    """Why execve(PROGRAM) fails before any loader runs, or None: the file itself, an ELF class and
    machine the kernel does not execute (`abis`; load_elf_binary checks them first: ENOEXEC), or its
    PT_INTERP, which the kernel opens inside the root (fs/binfmt_elf.c: open_exec wants a regular file)
    and whose ELF header its binfmt must accept (kernelabi.interp_errno: an i386 loader named by a
    64-bit program is ELIBBAD)."""
    try:
        world.stat(program)
    except OSError as e:
        return e.strerror or str(e)
    if abis is not None and not _kernel_executes(world, program, abis):
        return f"cannot execute: {os.strerror(errno.ENOEXEC)}"
    interp = program_interp(world, program)
    if interp is None:
        return None
    try:
        st = world.stat(interp)
    except OSError as e:
        return f"cannot execute: program interpreter {interp}: {e.strerror or e}"
    # open_exec's MAY_EXEC: a file without any x bit is EACCES even for root (generic_permission); the
    # caller's own bits are not modelled here
    if not stat_mod.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        return f"cannot execute: program interpreter {interp}: {os.strerror(errno.EACCES)}"
    bad = interp_errno(_read(world, program, 64) or b"", _read(world, interp, 64) or b"", abis)
    if bad is not None:
        return f"cannot execute: program interpreter {interp}: {os.strerror(bad)}"
    return None


def _kernel_executes(world: World, program: str, abis: KernelAbis) -> bool:
    head = _read(world, program, 64)
    ident = read_ident(head) if head is not None else None
    if ident is None or not ident.magic_ok:
        return True  # not ELF: another binary format's (a #! script), or the loader's error
    return abis.executes((int(ident.ei_class), int(ident.e_machine)))


def musl_root_loader(world: World) -> str | None:
    """The musl loader of a root that has no glibc loader of any shipped profile: /lib/ld-musl-*.so.1."""
    if any(identify_loader(world, p.rtld) is not None for p in PROFILES.values()):
        return None
    try:
        names = sorted(world.listdir("/lib"))
    except OSError:
        return None
    for name in names:
        if is_musl_interp("/lib/" + name):
            return "/lib/" + name
    return None


def profile_by_name(name: str) -> Profile:
    """--profile NAME or --profile FILE.toml.  ValueError with a one-line reason otherwise."""
    if name in PROFILES:
        return PROFILES[name]
    if name.endswith(".toml"):
        try:
            with open(name, encoding="utf-8") as f:  # (not pathlib: its import is ~3% of a cold start)
                return profile_from_toml(f.read())
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"{name}: {e}") from None
    raise ValueError(f"{name}: unknown profile (known: {', '.join(sorted(PROFILES))})")
