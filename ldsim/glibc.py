"""The build constants of the loader being simulated, as one profile (Debian's glibc 2.36 on x86-64).

Each value is what the real build has compiled in; the glibc source of each is named beside it.
Foreign roots get other profiles (conf/), but the engine only ever reads a `Profile`.
"""

from __future__ import annotations

import marshal
import os
import sys

from ldsim.record import Key

_setattr = object.__setattr__


class Profile(Key):
    """One loader build's constants.  Fields (the glibc name of each value):
    rtld: PT_INTERP of this build's programs (RTLD); system_dirs: SYSTEM_DIRS, each with its trailing '/'
    (elf/gen-trusted-dirs.awk); lib: $LIB = DL_DST_LIB; cache_flags: _DL_CACHE_DEFAULT_ID;
    hwcap_names: _dl_x86_hwcap_flags / _dl_aarch64_cap_flags, bit 0 first; hwcap_important:
    HWCAP_IMPORTANT, the default glibc.cpu.hwcap_mask; platforms: _dl_x86_platforms, whose index + 48 is
    the platform's hwcap bit; hwcaps_subdirs: _dl_hwcaps_subdirs, best first; ldd_rtlds: RTLDLIST of the
    installed ldd script; libc_abi_max: LIBC_ABI_MAX, EI_ABIVERSION must be below it with ELFOSABI_GNU;
    version: the Debian package version, printed by --version texts and the cache generator;
    suid_debug_file: keeps LD_DEBUG alive in secure mode (process_envvars); arch: which CPU model decides
    dl_hwcap, AT_PLATFORM and the ISA level (hwcaps.py); cache_flags_accepted: _dl_cache_check_flags,
    () = only cache_flags; vdso: the kernel's vDSO soname for this ABI."""

    __slots__ = ("name", "rtld", "rtld_soname", "ei_class", "e_machine", "system_dirs", "lib", "cache_file",
                 "cache_flags", "preload_file", "hwcap_names", "hwcap_important", "platforms", "hwcaps_subdirs",
                 "ldd_rtlds", "libc_abi_max", "version", "suid_debug_file", "arch", "cache_flags_accepted",
                 "vdso")
    _fields = __slots__

    def __init__(self, name: str, rtld: str, rtld_soname: str, ei_class: int, e_machine: int,
                 system_dirs: tuple[str, ...], lib: str, cache_file: str, cache_flags: int, preload_file: str,
                 hwcap_names: tuple[str, ...], hwcap_important: int, platforms: tuple[str, ...],
                 hwcaps_subdirs: tuple[str, ...], ldd_rtlds: tuple[str, ...], libc_abi_max: int, version: str,
                 suid_debug_file: str = "/etc/suid-debug", arch: str = "x86_64",
                 cache_flags_accepted: tuple[int, ...] = (), vdso: str = "linux-vdso.so.1") -> None:
        values = locals()
        for f in self._fields:
            _setattr(self, f, values[f])

    @property
    def system_dirs_blob(self) -> bytes:
        """SYSTEM_DIRS as the loader binary stores it: the directories joined by NULs."""
        return "\0".join(self.system_dirs).encode()


PROFILE_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "conf", "profiles")


def profile_from_toml(text: str) -> Profile:
    """Pure: a profile from its TOML text (conf/profiles/*.toml); lists become tuples."""
    import tomllib
    return _profile_from_data(tomllib.loads(text))


def _profile_from_data(data: dict) -> Profile:
    known = set(Profile._fields)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown profile keys: {', '.join(unknown)}")
    return Profile(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def load_profiles(directory: str | os.PathLike = PROFILE_DIR) -> dict[str, Profile]:
    """Every shipped profile by name, in file-name order (the detection order)."""
    directory = os.fspath(directory)
    names = sorted(n for n in os.listdir(directory) if n.endswith(".toml"))
    out: dict[str, Profile] = {}
    for data in _profile_data(directory, names):
        prof = _profile_from_data(data)
        out[prof.name] = prof
    return out


def _profile_data(directory: str, names: list[str]) -> list[dict]:
    """The parsed TOML of each file, through a marshal cache beside them (like __pycache__, keyed by each
    file's mtime and size): importing tomllib and parsing would be ~15% of `ldsim ldd`'s cold start."""
    sig = [(n, st.st_mtime_ns, st.st_size) for n in names for st in [os.stat(os.path.join(directory, n))]]
    cache = os.path.join(directory, "__pycache__", "profiles.marshal")
    try:
        with open(cache, "rb") as f:
            cached_sig, datas = marshal.load(f)
        if cached_sig == sig:
            return datas
    except (OSError, EOFError, ValueError, TypeError):
        pass
    import tomllib
    datas = []
    for n in names:
        with open(os.path.join(directory, n), encoding="utf-8") as f:
            datas.append(tomllib.loads(f.read()))
    if not sys.dont_write_bytecode:
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            tmp = f"{cache}.{os.getpid()}"
            with open(tmp, "wb") as f:
                marshal.dump((sig, datas), f)
            os.replace(tmp, cache)
        except (OSError, ValueError):
            pass
    return datas


PROFILES = load_profiles()
DEBIAN_X86_64 = PROFILES["debian-x86_64"]

# ld.so's own __strerror_r (elf/dl-minimal.c) knows only these; any other errno prints as "Error N".
LDSO_STRERROR = {
    1: "Operation not permitted",
    2: "No such file or directory",
    5: "Input/output error",
    12: "Cannot allocate memory",
    13: "Permission denied",
    22: "Invalid argument",
}


def ldso_strerror(errnum: int) -> str:
    return LDSO_STRERROR.get(errnum, f"Error {errnum}")


# sysdeps/generic/unsecvars.h, in the order glibc removes them
UNSECURE_ENVVARS = (
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LD_AUDIT", "LD_DEBUG", "LD_DEBUG_OUTPUT",
    "LD_DYNAMIC_WEAK", "LD_HWCAP_MASK", "LD_LIBRARY_PATH", "LD_ORIGIN_PATH", "LD_PRELOAD",
    "LD_PROFILE", "LD_SHOW_AUXV", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH",
    "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
)
