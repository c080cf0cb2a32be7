"""LD_SHOW_AUXV's lines: `_dl_show_auxv` (sysdeps/unix/sysv/linux/dl-sysdep.c) as x86 builds it, where
x86-64's `_dl_procinfo` declines every entry (sysdeps/x86/dl-hwcap.h), so AT_HWCAP is plain hex, and
i386's names AT_HWCAP's bits."""

from __future__ import annotations

from ldsim.auxv import AT

_DEC, _HEX, _STR, _IGNORE = "dec", "hex", "str", "ignore"
# auxvars[]: label (with its padding, and a literal "0x" for some hex entries) and form
_LABELS: dict[int, tuple[str, str]] = {
    AT.EXECFD: ("EXECFD:            ", _DEC), AT.EXECFN: ("EXECFN:            ", _STR),
    AT.PHDR: ("PHDR:              0x", _HEX), AT.PHENT: ("PHENT:             ", _DEC),
    AT.PHNUM: ("PHNUM:             ", _DEC), AT.PAGESZ: ("PAGESZ:            ", _DEC),
    AT.BASE: ("BASE:              0x", _HEX), AT.FLAGS: ("FLAGS:             0x", _HEX),
    AT.ENTRY: ("ENTRY:             0x", _HEX), AT.NOTELF: ("NOTELF:            ", _HEX),
    AT.UID: ("UID:               ", _DEC), AT.EUID: ("EUID:              ", _DEC),
    AT.GID: ("GID:               ", _DEC), AT.EGID: ("EGID:              ", _DEC),
    AT.PLATFORM: ("PLATFORM:          ", _STR), AT.HWCAP: ("HWCAP:             ", _HEX),
    AT.CLKTCK: ("CLKTCK:            ", _DEC), AT.FPUCW: ("FPUCW:             ", _HEX),
    AT.DCACHEBSIZE: ("DCACHEBSIZE:       0x", _HEX), AT.ICACHEBSIZE: ("ICACHEBSIZE:       0x", _HEX),
    AT.UCACHEBSIZE: ("UCACHEBSIZE:       0x", _HEX), AT.IGNOREPPC: ("IGNOREPPC", _IGNORE),
    AT.SECURE: ("SECURE:            ", _DEC), AT.BASE_PLATFORM: ("BASE_PLATFORM:     ", _STR),
    AT.SYSINFO: ("SYSINFO:           0x", _HEX), AT.SYSINFO_EHDR: ("SYSINFO_EHDR:      0x", _HEX),
    AT.RANDOM: ("RANDOM:            0x", _HEX), AT.HWCAP2: ("HWCAP2:            0x", _HEX),
    AT.MINSIGSTKSZ: ("MINSIGSTKSZ:       ", _DEC), AT.L1I_CACHESIZE: ("L1I_CACHESIZE:     ", _DEC),
    AT.L1I_CACHEGEOMETRY: ("L1I_CACHEGEOMETRY: 0x", _HEX), AT.L1D_CACHESIZE: ("L1D_CACHESIZE:     ", _DEC),
    AT.L1D_CACHEGEOMETRY: ("L1D_CACHEGEOMETRY: 0x", _HEX), AT.L2_CACHESIZE: ("L2_CACHESIZE:      ", _DEC),
    AT.L2_CACHEGEOMETRY: ("L2_CACHEGEOMETRY:  0x", _HEX), AT.L3_CACHESIZE: ("L3_CACHESIZE:      ", _DEC),
    AT.L3_CACHEGEOMETRY: ("L3_CACHEGEOMETRY:  0x", _HEX),
}


# the i386 build's _dl_x86_cap_flags (sysdeps/i386/dl-procinfo.c): CPUID 1 EDX's bits by name
_CAP_FLAGS = ("fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "10", "sep", "mtrr", "pge",
              "mca", "cmov", "pat", "pse36", "pn", "clflush", "20", "dts", "acpi", "mmx", "fxsr", "sse", "sse2",
              "ss", "ht", "tm", "ia64", "pbe")


def show_auxv(vector: tuple[tuple[int, int | str], ...], hwcap_names: bool = False) -> str:
    """`hwcap_names`: the i386 build, whose _dl_procinfo prints AT_HWCAP bit by bit
    (sysdeps/unix/sysv/linux/i386/dl-procinfo.h); x86-64's declines it (plain hex)."""
    lines = []
    for a_type, value in vector:
        if a_type < 2:  # AT_NULL, AT_IGNORE
            continue
        label, form = _LABELS.get(a_type, ("", ""))
        if form == _IGNORE:
            continue
        if hwcap_names and a_type == AT.HWCAP and isinstance(value, int):
            lines.append("AT_HWCAP:   " + "".join(f" {n}" for i, n in enumerate(_CAP_FLAGS) if value >> i & 1) + "\n")
            continue
        if form == _STR:
            lines.append(f"AT_{label}{value}\n")
        elif form:
            lines.append(f"AT_{label}{value:x}\n" if form == _HEX else f"AT_{label}{value}\n")
        else:  # not in the table: a generic line
            lines.append(f"AT_??? (0x{a_type:x}): 0x{value:x}\n")
    return "".join(lines)
