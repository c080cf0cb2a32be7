"""The CPU as the loader sees it, and the hwcaps subdirectories it makes ld.so search.

`Cpu` is a host fact: detected once from /proc/cpuinfo by the CLI (or chosen with --cpu) and passed in;
the engine never looks at the host.  Mirrors sysdeps/x86/cpu-features.c (platform, dl_hwcap),
sysdeps/x86/get-isa-level.h (ISA level) and elf/dl-hwcaps.c `_dl_important_hwcaps` (subdirectory order).
"""

from __future__ import annotations

from ldsim.glibc import Profile
from ldsim.record import Key

ISA_BASELINE, ISA_V2, ISA_V3, ISA_V4 = 1, 2, 4, 8  # GNU_PROPERTY_X86_ISA_1_*
_LEVEL_BITS = {"baseline": ISA_BASELINE, "x86-64-v2": ISA_BASELINE | ISA_V2,
               "x86-64-v3": ISA_BASELINE | ISA_V2 | ISA_V3,
               "x86-64-v4": ISA_BASELINE | ISA_V2 | ISA_V3 | ISA_V4}

# /proc/cpuinfo flag names of each level's features (get-isa-level.h); LZCNT is "abm", SSE3 "pni".
_BASE = {"cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"}
_V2 = {"cx16", "lahf_lm", "popcnt", "pni", "ssse3", "sse4_1", "sse4_2"}
_V3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"}
_V4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
_HASWELL = {"avx2", "fma", "bmi1", "bmi2", "abm", "movbe", "popcnt"}


class Cpu(Key):
    """What ld.so derives from the CPU.  isa: the ISA level init_cpu_features computes first
    (cpu_features->isa_1: the ISA-level check of objects and of cache entries); subdirs_isa: the level
    get_isa_level gives when the glibc-hwcaps subdirectories are chosen, after glibc.cpu.hwcaps has
    disabled features; platform: AT_PLATFORM as overridden; hwcap: dl_hwcap.  flags and vendor are
    /proc/cpuinfo's, kept for the tunable."""

    __slots__ = _fields = ("isa", "platform", "hwcap", "subdirs_isa", "flags", "vendor")

    def __init__(self, isa: int, platform: str | None, hwcap: int, subdirs_isa: int | None = None,
                 flags: frozenset[str] = frozenset(), vendor: str = "") -> None:
        object.__setattr__(self, "isa", isa)
        object.__setattr__(self, "platform", platform)
        object.__setattr__(self, "hwcap", hwcap)
        object.__setattr__(self, "subdirs_isa", isa if subdirs_isa is None else subdirs_isa)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "vendor", vendor)

    @property
    def level_name(self) -> str:
        for name, bits in reversed(_LEVEL_BITS.items()):
            if self.isa & bits == bits:
                return name
        return "none"


def _isa_level(flags: set[str] | frozenset[str]) -> int:
    """get_isa_level (sysdeps/x86/get-isa-level.h): each level needs the one below."""
    isa = 0
    if _BASE <= flags:
        isa = ISA_BASELINE
        if _V2 <= flags:
            isa |= ISA_V2
            if _V3 <= flags:
                isa |= ISA_V3
                if _V4 <= flags:
                    isa |= ISA_V4
    return isa


def _x86_64_platform(flags: set[str] | frozenset[str], vendor: str) -> tuple[str, int]:
    """init_cpu_features (x86-64): AT_PLATFORM overridden on Intel CPUs, and dl_hwcap."""
    hwcap = 1 << 1  # HWCAP_X86_64, always
    platform = "x86_64"  # the kernel's AT_PLATFORM
    if vendor == "GenuineIntel":
        override = None
        if "avx512cd" in flags:
            if "avx512er" in flags:
                if "avx512pf" in flags:
                    override = "xeon_phi"
            elif {"avx512bw", "avx512dq", "avx512vl"} <= flags:
                hwcap |= 1 << 2  # HWCAP_X86_AVX512_1
        if override is None and _HASWELL <= flags:
            override = "haswell"
        platform = override or platform
    return platform, hwcap


def cpu_from_flags(flags: set[str], vendor: str) -> Cpu:
    """Pure: the loader's view of a CPU with these /proc/cpuinfo flags."""
    isa = _isa_level(flags)
    platform, hwcap = _x86_64_platform(flags, vendor)
    return Cpu(isa, platform, hwcap, isa, frozenset(flags), vendor)


# glibc.cpu.hwcaps names that can be disabled (sysdeps/x86/cpu-tunables.c) -> /proc/cpuinfo flag
_TUNABLE_FLAGS = {
    "AVX": "avx", "CX8": "cx8", "FMA": "fma", "HTT": "ht", "IBT": "ibt", "RTM": "rtm", "AVX2": "avx2",
    "BMI1": "bmi1", "BMI2": "bmi2", "CMOV": "cmov", "ERMS": "erms", "FMA4": "fma4", "SSE2": "sse2",
    "LZCNT": "abm", "MOVBE": "movbe", "SHSTK": "shstk", "SSSE3": "ssse3", "XSAVE": "xsave", "POPCNT": "popcnt",
    "SSE4_1": "sse4_1", "SSE4_2": "sse4_2", "XSAVEC": "xsavec", "AVX512F": "avx512f", "OSXSAVE": "osxsave",
    "AVX512CD": "avx512cd", "AVX512BW": "avx512bw", "AVX512DQ": "avx512dq", "AVX512ER": "avx512er",
    "AVX512PF": "avx512pf", "AVX512VL": "avx512vl",
}
# usable only while XSAVE state is (init_cpu_features after the tunable): AVX, FMA, F16C, AVX-512 ...
_XSAVE_STATE = {"avx", "avx2", "fma", "f16c", "fma4", "xop", "vaes", "vpclmulqdq", "avx_vnni"}


def tuned_cpu(cpu: Cpu, arch: str, hwcaps: str | None) -> Cpu:
    """The CPU after GLIBC_TUNABLES=glibc.cpu.hwcaps=-FEATURE,...: features are only disabled (`-NAME`,
    exact and case-sensitive; other items tune IFUNC preferences, or I586/I686 on i386), then those that
    need XSAVE state go when neither XSAVE nor XSAVEC is left.  isa (isa_1) was computed before the
    tunable and stays; subdirs_isa, the platform and dl_hwcap are worked out again."""
    if hwcaps is None or arch not in ("x86_64", "i386") or not cpu.flags:
        return cpu
    usable = set(cpu.flags)
    if "xsave" in usable:
        usable.add("osxsave")  # the kernel enabled XSAVE: CPUID's OSXSAVE (not listed in /proc/cpuinfo)
    off = {item[1:] for item in hwcaps.split(",") if item.startswith("-")}
    usable -= {_TUNABLE_FLAGS[n] for n in off if n in _TUNABLE_FLAGS}
    if "osxsave" not in usable:
        usable -= {"xsave", "xsaveopt", "xsavec"}
    if not usable & {"xsave", "xsavec"}:
        usable = {f for f in usable if f not in _XSAVE_STATE and not f.startswith("avx512")}
    if arch == "i386":  # sysdeps/x86/cpu-features.c, !__x86_64__: preferred I686 (CMOV), I586 (CX8)
        platform = ("i686" if "I686" not in off and "cmov" in cpu.flags
                    else "i586" if "I586" not in off and "cx8" in cpu.flags else cpu.platform)
        return Cpu(cpu.isa, platform, 1 if "sse2" in usable else 0, _isa_level(usable), cpu.flags, cpu.vendor)
    platform, hwcap = _x86_64_platform(usable, cpu.vendor)
    return Cpu(cpu.isa, platform, hwcap, _isa_level(usable), cpu.flags, cpu.vendor)


def cpu_from_cpuinfo(text: str) -> Cpu:
    flags: set[str] = set()
    vendor = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "vendor_id" and not vendor:
            vendor = value.strip()
    return cpu_from_flags(flags, vendor)


def cpu_for_profile(profile: Profile, host: Cpu) -> Cpu:
    """The CPU as a loader of another ABI sees it.  The host fact is x86-64's; the others derive theirs.

    i386 (sysdeps/x86/cpu-features.c, !__x86_64__): dl_hwcap is HWCAP_X86_SSE2 when SSE2 is usable and
    the platform "i686" on any CPU with CMOV (every x86-64 one).  aarch64: AT_PLATFORM is "aarch64" and
    AT_HWCAP the kernel's; ldsim assumes an ARMv8.1+ CPU (LSE atomics, the only HWCAP_IMPORTANT bit)."""
    if profile.arch == "x86_64":
        return host
    if profile.arch == "i386":
        return Cpu(host.isa, "i686", 1 if host.isa & ISA_BASELINE else 0, host.subdirs_isa, host.flags,
                   host.vendor)
    if profile.arch == "aarch64":
        return Cpu(0, "aarch64", 1 << profile.hwcap_names.index("atomics"))
    return Cpu(0, None, 0)


def cpu_for_level(level: str) -> Cpu:
    """A generic (non-Intel) CPU of exactly this ISA level, for --cpu."""
    isa = _LEVEL_BITS[level]
    flags = set(_BASE)
    for bit, more in ((ISA_V2, _V2), (ISA_V3, _V3 | {"xsave"}), (ISA_V4, _V4)):
        if isa & bit:
            flags |= more
    return Cpu(isa, "x86_64", 1 << 1, isa, frozenset(flags), "")


def detect_host_cpu(cpuinfo_path: str = "/proc/cpuinfo") -> Cpu:
    """Host fact, read only at the edge (the CLI)."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            return cpu_from_cpuinfo(f.read())
    except OSError:
        return cpu_for_level("baseline")


def split_list(value: str | None) -> list[str]:
    """A ':'-separated option list with empty segments skipped (dl-hwcaps-split.c)."""
    return [p for p in (value or "").split(":") if p]


class HwcapsChoice(Key):
    """Everything that decides the subdirectory list."""

    __slots__ = _fields = ("prepend", "mask", "hwcap_mask")

    def __init__(self, prepend: tuple[str, ...] = (), mask: tuple[str, ...] | None = None,
                 hwcap_mask: int | None = None) -> None:
        object.__setattr__(self, "prepend", prepend)
        object.__setattr__(self, "mask", mask)  # --glibc-hwcaps-mask; None = no mask
        # glibc.cpu.hwcap_mask / LD_HWCAP_MASK; None = HWCAP_IMPORTANT
        object.__setattr__(self, "hwcap_mask", hwcap_mask)


def supported_subdirs(profile: Profile, cpu: Cpu) -> list[str]:
    """Built-in glibc-hwcaps names the CPU supports, best first (`_dl_hwcaps_subdirs_active`)."""
    if profile.arch != "x86_64":  # elf/dl-hwcaps-subdirs.c: other ABIs of ldsim's profiles have none
        return []
    have = {"x86-64-v4": ISA_V4, "x86-64-v3": ISA_V3, "x86-64-v2": ISA_V2}
    return [n for n in profile.hwcaps_subdirs if cpu.subdirs_isa & have.get(n, 0)]


def active_subdirs(profile: Profile, cpu: Cpu, choice: HwcapsChoice) -> list[str]:
    """glibc-hwcaps names searched, in priority order: prepended ones, then supported unmasked built-ins."""
    builtins = [n for n in supported_subdirs(profile, cpu) if choice.mask is None or n in choice.mask]
    return list(choice.prepend) + builtins


def legacy_tokens(profile: Profile, cpu: Cpu, choice: HwcapsChoice) -> list[str]:
    """T of the power-set construction: masked hwcap names low bit first, the platform, then "tls"."""
    mask = profile.hwcap_important if choice.hwcap_mask is None else choice.hwcap_mask
    masked = cpu.hwcap & mask
    tokens = [profile.hwcap_names[n] for n in range(len(profile.hwcap_names)) if masked & (1 << n)]
    if cpu.platform is not None:
        tokens.append(cpu.platform)
    tokens.append("tls")
    return tokens


def capstr(profile: Profile, cpu: Cpu, choice: HwcapsChoice) -> list[str]:
    """Every subdirectory tried under each search directory, in order; each ends in '/', the last is ''."""
    result = [f"glibc-hwcaps/{n}/" for n in active_subdirs(profile, cpu, choice)]
    tokens = legacy_tokens(profile, cpu, choice)
    n = len(tokens)
    for k in range(1 << n):
        m = (1 << n) - 1 - k
        result.append("".join(tokens[i] + "/" for i in range(n - 1, -1, -1) if m & (1 << i)))
    return result


def platform_bit(profile: Profile, cpu: Cpu) -> int | None:
    """The hwcap bit (48 + index) of the platform, when it is one of the known platforms."""
    if cpu.platform in profile.platforms:
        return 48 + profile.platforms.index(cpu.platform)
    return None
