"""GLIBC_TUNABLES and the tunables' environment aliases, read as elf/dl-tunables.c reads them
(`__tunables_init`, `parse_tunables`, `tunable_initialize`), for the tunables that change what the loader
does: glibc.cpu.hwcap_mask (legacy hwcap subdirectories; alias LD_HWCAP_MASK), glibc.cpu.hwcaps (the x86
CPU features: glibc-hwcaps subdirectories, $PLATFORM, dl_hwcap; sysdeps/x86/cpu-tunables.c) and
glibc.rtld.dynamic_sort (the init/fini sorting algorithm), glibc.rtld.nns and glibc.rtld.optional_static_tls
(the static TLS surplus, elf/dl-tls.c).  Other tunables are read and ignored, as they change nothing ldsim
shows.  All are SXID_ERASE: a secure process reads none of them."""

from __future__ import annotations

from ldsim.record import NamedTuple

UINT64_MAX = (1 << 64) - 1

HWCAP_MASK, CPU_HWCAPS, DYNAMIC_SORT = "glibc.cpu.hwcap_mask", "glibc.cpu.hwcaps", "glibc.rtld.dynamic_sort"
NNS, OPTIONAL_STATIC_TLS = "glibc.rtld.nns", "glibc.rtld.optional_static_tls"
# name -> (kind, min, max, env alias) as elf/dl-tunables.list and sysdeps/x86/dl-tunables.list declare them
_KNOWN = {
    HWCAP_MASK: ("u64", 0, UINT64_MAX, "LD_HWCAP_MASK"),
    CPU_HWCAPS: ("str", 0, 0, ""),
    DYNAMIC_SORT: ("i32", 1, 2, ""),
    NNS: ("u64", 1, 16, ""),  # SIZE_T, compared unsigned
    OPTIONAL_STATIC_TLS: ("u64", 0, UINT64_MAX, ""),
}


class Tunables(NamedTuple):
    """The values a process's tunables were given; None = not initialized (the built-in default)."""
    hwcap_mask: int | None = None
    cpu_hwcaps: str | None = None
    dynamic_sort: int | None = None
    nns: int | None = None
    optional_static_tls: int | None = None


NO_TUNABLES = Tunables()


def dl_strtoul(s: str) -> int:
    """_dl_strtoul (elf/dl-misc.c): blanks, a sign, a base from the prefix, digits up to the first bad
    one; UINT64_MAX on overflow; a negative value wraps as in C."""
    i, n = 0, len(s)
    while i < n and s[i] in " \t":
        i += 1
    positive = True
    if i < n and s[i] in "+-":
        positive = s[i] == "+"
        i += 1
    if i >= n or not "0" <= s[i] <= "9":
        return 0
    base, digits = 10, "0123456789"
    if s[i] == "0":
        if s[i + 1:i + 2] in ("x", "X"):
            base, digits, i = 16, "0123456789abcdef", i + 2
        else:
            base, digits = 8, "01234567"
    result = 0
    while i < n:
        d = digits.find(s[i].lower() if base == 16 else s[i])
        if d < 0:
            break
        if result >= (UINT64_MAX - d) // base:
            return UINT64_MAX
        result = result * base + d
        i += 1
    return result if positive else (-result) & UINT64_MAX


def _initialize(values: dict[str, object], name: str, text: str) -> None:
    """tunable_initialize + do_tunable_update_val: a number out of the tunable's range leaves it as it was."""
    kind, lo, hi, _ = _KNOWN[name]
    if kind == "str":
        values[name] = text
        return
    value = dl_strtoul(text)
    if kind == "i32" and value >= 1 << 63:  # tunable_num_t is signed: compared as int64
        value -= 1 << 64
    if lo <= value <= hi:
        values[name] = value


def _parse(values: dict[str, object], tunestr: str) -> None:
    """parse_tunables: NAME=VALUE items separated by ':'; an item without '=' is skipped, a name without
    a value ends the string."""
    p = 0
    while True:
        end = p
        while end < len(tunestr) and tunestr[end] not in "=:":
            end += 1
        if end == len(tunestr):
            return
        if tunestr[end] == ":":
            p = end + 1
            continue
        name = tunestr[p:end]
        vstart = vend = end + 1
        while vend < len(tunestr) and tunestr[vend] != ":":
            vend += 1
        if name in _KNOWN:
            _initialize(values, name, tunestr[vstart:vend])
        if vend == len(tunestr):
            return
        p = vend + 1


def read_tunables(env: tuple[tuple[str, str], ...], secure: bool) -> Tunables:
    """__tunables_init over the environment in order: every GLIBC_TUNABLES entry sets what it names (later
    ones win); an alias (LD_HWCAP_MASK) only sets a tunable not set yet, so the first alias wins and a
    GLIBC_TUNABLES before it keeps its value.  A secure process reads no SXID_ERASE tunable."""
    if secure or not any(k == "GLIBC_TUNABLES" or k == "LD_HWCAP_MASK" for k, _ in env):
        return NO_TUNABLES
    values: dict[str, object] = {}
    for key, value in env:
        if key == "GLIBC_TUNABLES":
            _parse(values, value)
            continue
        for name, (_, _, _, alias) in _KNOWN.items():
            if alias and key == alias and name not in values:
                _initialize(values, name, value)
                break
    return Tunables(values.get(HWCAP_MASK), values.get(CPU_HWCAPS), values.get(DYNAMIC_SORT), values.get(NNS),
                    values.get(OPTIONAL_STATIC_TLS))
