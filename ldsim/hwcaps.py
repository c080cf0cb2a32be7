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
    """What ld.so derives from the CPU: ISA level bits, AT_PLATFORM (as overridden), dl_hwcap."""

    __slots__ = _fields = ("isa", "platform", "hwcap")

    def __init__(self, isa: int, platform: str | None, hwcap: int) -> None:
        object.__setattr__(self, "isa", isa)
        object.__setattr__(self, "platform", platform)
        object.__setattr__(self, "hwcap", hwcap)

    @property
    def level_name(self) -> str:
        for name, bits in reversed(_LEVEL_BITS.items()):
            if self.isa & bits == bits:
                return name
        return "none"


def cpu_from_flags(flags: set[str], vendor: str) -> Cpu:
    """Pure: the loader's view of a CPU with these /proc/cpuinfo flags."""
    isa = 0
    if _BASE <= flags:
        isa = ISA_BASELINE
        if _V2 <= flags:
            isa |= ISA_V2
            if _V3 <= flags:
                isa |= ISA_V3
                if _V4 <= flags:
                    isa |= ISA_V4
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
    return Cpu(isa, platform, hwcap)


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
        return Cpu(host.isa, "i686", 1 if host.isa & ISA_BASELINE else 0)
    if profile.arch == "aarch64":
        return Cpu(0, "aarch64", 1 << profile.hwcap_names.index("atomics"))
    return Cpu(0, None, 0)


def cpu_for_level(level: str) -> Cpu:
    """A generic (non-Intel) CPU of exactly this ISA level, for --cpu."""
    return Cpu(_LEVEL_BITS[level], "x86_64", 1 << 1)


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
    return [n for n in profile.hwcaps_subdirs if cpu.isa & have.get(n, 0)]


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
