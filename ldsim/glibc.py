"""The build constants of the loader being simulated, as one profile (Debian's glibc 2.36 on x86-64).

Each value is what the real build has compiled in; the glibc source of each is named beside it.
Foreign roots get other profiles (conf/), but the engine only ever reads a `Profile`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldsim.elf import EIClass, EMachine


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
    hwcap_names: tuple[str, ...]  # _dl_x86_hwcap_flags, bit 0 first
    hwcap_important: int  # HWCAP_IMPORTANT, the default glibc.cpu.hwcap_mask
    platforms: tuple[str, ...]  # _dl_x86_platforms, whose index + 48 is the platform's hwcap bit
    hwcaps_subdirs: tuple[str, ...]  # _dl_hwcaps_subdirs, best first
    ldd_rtlds: tuple[str, ...]  # RTLDLIST of the installed ldd script
    libc_abi_max: int  # LIBC_ABI_MAX: EI_ABIVERSION must be below it with ELFOSABI_GNU
    version: str  # the Debian package version, printed by --version texts and the cache generator


DEBIAN_X86_64 = Profile(
    name="debian-x86_64",
    rtld="/lib64/ld-linux-x86-64.so.2",
    rtld_soname="ld-linux-x86-64.so.2",
    ei_class=EIClass.ELF64,
    e_machine=EMachine.X86_64,
    system_dirs=("/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/lib/", "/usr/lib/"),
    lib="lib/x86_64-linux-gnu",
    cache_file="/etc/ld.so.cache",
    cache_flags=0x0303,
    preload_file="/etc/ld.so.preload",
    hwcap_names=("sse2", "x86_64", "avx512_1"),
    hwcap_important=0x6,
    platforms=("i586", "i686", "haswell", "xeon_phi"),
    hwcaps_subdirs=("x86-64-v4", "x86-64-v3", "x86-64-v2"),
    ldd_rtlds=("/lib/ld-linux.so.2", "/lib64/ld-linux-x86-64.so.2", "/libx32/ld-linux-x32.so.2"),
    libc_abi_max=4,
    version="Debian GLIBC 2.36-9+deb12u14",
)

PROFILES = {DEBIAN_X86_64.name: DEBIAN_X86_64}

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
