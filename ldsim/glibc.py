"""The build constants of the loader being simulated, as one profile (Debian's glibc 2.36 on x86-64).

Each value is what the real build has compiled in; the glibc source of each is named beside it.
Foreign roots get other profiles (conf/), but the engine only ever reads a `Profile`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path



@dataclass(frozen=True)
class Profile:
    name: str
    rtld: str  # PT_INTERP of this build's programs (RTLD)
    rtld_soname: str
    ei_class: int
    e_machine: int
    system_dirs: tuple[str, ...]  # SYSTEM_DIRS, each with its trailing '/' (elf/gen-trusted-dirs.awk)
    lib: str  # $LIB = DL_DST_LIB
    cache_file: str
    cache_flags: int  # _DL_CACHE_DEFAULT_ID
    preload_file: str
    hwcap_names: tuple[str, ...]  # _dl_x86_hwcap_flags / _dl_aarch64_cap_flags, bit 0 first
    hwcap_important: int  # HWCAP_IMPORTANT, the default glibc.cpu.hwcap_mask
    platforms: tuple[str, ...]  # _dl_x86_platforms, whose index + 48 is the platform's hwcap bit
    hwcaps_subdirs: tuple[str, ...]  # _dl_hwcaps_subdirs, best first
    ldd_rtlds: tuple[str, ...]  # RTLDLIST of the installed ldd script
    libc_abi_max: int  # LIBC_ABI_MAX: EI_ABIVERSION must be below it with ELFOSABI_GNU
    version: str  # the Debian package version, printed by --version texts and the cache generator
    suid_debug_file: str = "/etc/suid-debug"  # keeps LD_DEBUG alive in secure mode (process_envvars)
    arch: str = "x86_64"  # which CPU model decides dl_hwcap, AT_PLATFORM and the ISA level (hwcaps.py)
    cache_flags_accepted: tuple[int, ...] = ()  # _dl_cache_check_flags; () = only cache_flags
    vdso: str = "linux-vdso.so.1"  # the kernel's vDSO soname for this ABI

    @property
    def system_dirs_blob(self) -> bytes:
        """SYSTEM_DIRS as the loader binary stores it: the directories joined by NULs."""
        return "\0".join(self.system_dirs).encode()


PROFILE_DIR = Path(__file__).resolve().parent / "conf" / "profiles"


def profile_from_toml(text: str) -> Profile:
    """Pure: a profile from its TOML text (conf/profiles/*.toml); lists become tuples."""
    data = tomllib.loads(text)
    known = {f.name for f in fields(Profile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown profile keys: {', '.join(unknown)}")
    return Profile(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def load_profiles(directory: Path = PROFILE_DIR) -> dict[str, Profile]:
    """Every shipped profile by name, in file-name order (the detection order)."""
    out: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.toml")):
        prof = profile_from_toml(path.read_text(encoding="utf-8"))
        out[prof.name] = prof
    return out


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
