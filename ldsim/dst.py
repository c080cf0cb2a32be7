"""Dynamic string tokens: $ORIGIN, $LIB, $PLATFORM (and ${...}).  Mirrors `is_dst`, `_dl_dst_count` and
`_dl_dst_substitute` (elf/dl-load.c) and `is_trusted_path_normalize`."""

from __future__ import annotations

from ldsim.record import Frozen

_NAMES = ("ORIGIN", "PLATFORM", "LIB")


def _is_dst(s: str, i: int, name: str) -> int:
    """Length of the token `name` at s[i:] (after the '$'), 0 when it is not that token."""
    if s.startswith("{" + name + "}", i):
        return len(name) + 2
    if s.startswith(name, i):
        j = i + len(name)
        if j == len(s) or not (s[j].isascii() and (s[j].isalnum() or s[j] == "_")):
            return len(name)
    return 0


def dst_count(s: str) -> int:
    count = 0
    i = s.find("$")
    while i >= 0:
        if any(_is_dst(s, i + 1, n) for n in _NAMES):
            count += 1
        i = s.find("$", i + 1)
    return count


class DstValues(Frozen):
    """What the tokens stand for in one object: its origin (None = unknown), $PLATFORM, $LIB."""

    __slots__ = _fields = ("origin", "platform", "lib", "secure", "is_executable", "trusted_dirs")

    def __init__(self, origin: str | None, platform: str | None, lib: str, secure: bool = False,
                 is_executable: bool = False, trusted_dirs: tuple[str, ...] = ()) -> None:
        _set = object.__setattr__
        _set(self, "origin", origin)
        _set(self, "platform", platform)
        _set(self, "lib", lib)
        _set(self, "secure", secure)
        _set(self, "is_executable", is_executable)  # the trust check applies to the main program's paths only
        _set(self, "trusted_dirs", trusted_dirs)


def substitute(s: str, v: DstValues) -> str:
    """Expand every token; the empty string when a token's value is unknown or refused (the element is
    then dropped by the caller).  Unknown `$X` sequences are kept literally."""
    out: list[str] = []
    i = 0
    check_trusted = False
    while i < len(s):
        if s[i] != "$":
            out.append(s[i])
            i += 1
            continue
        i += 1
        repl: str | None = None
        refused = False
        if (n := _is_dst(s, i, "ORIGIN")):
            # secure mode: $ORIGIN only as the very first token, alone or followed by '/'
            if v.secure and not (i == 1 and (i + n == len(s) or s[i + n] == "/")):
                refused = True
            else:
                repl = v.origin
            check_trusted = v.secure and v.is_executable
        elif (n := _is_dst(s, i, "PLATFORM")):
            repl = v.platform
        elif (n := _is_dst(s, i, "LIB")):
            repl = v.lib
        if n == 0:
            out.append("$")
            continue
        if refused or repl is None:
            return ""
        out.append(repl)
        i += n
    result = "".join(out)
    if check_trusted and not is_trusted_path_normalize(result, v.trusted_dirs):
        return ""
    return result


def expand(s: str, v: DstValues) -> str:
    """expand_dynamic_string_token: strings without tokens are returned unchanged."""
    return substitute(s, v) if dst_count(s) else s


def is_trusted_path_normalize(path: str, trusted_dirs: tuple[str, ...]) -> bool:
    """Collapse '//', '/./' and '/../' the way glibc does (character by character, not by components),
    then require a trusted-directory prefix (elf/dl-load.c)."""
    if not path:
        return False
    out: list[str] = []
    i = 0
    while i < len(path):
        if path[i] == "/":
            if path[i + 1:i + 2] == ".":
                if path[i + 2:i + 3] == "." and path[i + 3:i + 4] in ("/", ""):
                    while out and out.pop() != "/":
                        pass
                    i += 3
                    continue
                if path[i + 2:i + 3] in ("/", ""):
                    i += 2
                    continue
            if out and out[-1] == "/":
                i += 1
                continue
        out.append(path[i])
        i += 1
    if not out or out[-1] != "/":
        out.append("/")
    norm = "".join(out)
    return any(norm.startswith(d) for d in trusted_dirs)
