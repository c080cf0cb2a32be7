"""glob(3) with no flags and fnmatch(3) with FNM_PERIOD, as glibc 2.36 does them (posix/glob.c,
posix/fnmatch_loop.c), over a World: ldconfig's `include` patterns.

The result names keep the pattern's own text — `/etc//d/*.conf` gives `/etc//d/a.conf`, a relative
pattern gives relative names — because ldconfig prints them as `FILE:LINE`.  Single-byte C locale;
`[=c=]` and `[.c.]` are read as plain characters.
"""

from __future__ import annotations

import stat as S
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ldsim.world import World

_SPECIAL, _BACKSLASH, _BRACKET = 0x1, 0x2, 0x4  # GLOBPAT_*
_CLASSES = {
    "alnum": str.isalnum, "alpha": str.isalpha, "blank": lambda c: c in " \t",
    "cntrl": lambda c: ord(c) < 32 or ord(c) == 127, "digit": str.isdigit,
    "graph": lambda c: 33 <= ord(c) <= 126, "lower": str.islower, "print": lambda c: 32 <= ord(c) <= 126,
    "punct": lambda c: 33 <= ord(c) <= 126 and not c.isalnum(), "space": lambda c: c in " \t\n\v\f\r",
    "upper": str.isupper, "xdigit": lambda c: c in "0123456789abcdefABCDEF",
}


def _ascii_class(name: str, c: str) -> bool:
    return c.isascii() and _CLASSES[name](c)


def pattern_type(pattern: str) -> int:
    """Mirrors `__glob_pattern_type` (posix/glob_internal.h) with quoting on."""
    ret = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c in "?*":
            return _SPECIAL
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
            ret |= _BACKSLASH
        elif c == "[":
            ret |= _BRACKET
        elif c == "]" and ret & _BRACKET:
            return _SPECIAL
        i += 1
    return ret


def _bracket(p: str, i: int, fn: str) -> tuple[bool | None, int]:
    """One `[...]` from just after its '['.  (matched, index after ']'); matched None: no match at all
    (a malformed class); index -1: unterminated, the '[' is then an ordinary character."""
    negate = i < len(p) and p[i] in "!^"  # '^' too while POSIXLY_CORRECT is unset
    if negate:
        i += 1
    first = True
    while True:  # left by `break` only when the character matched
        if i >= len(p):
            return False, -1
        c = p[i]
        i += 1
        if c == "]" and not first:
            return negate, i
        first = False
        if c == "\\":
            if i >= len(p):
                return None, i
            c = p[i]
            i += 1
        elif c == "[" and p[i:i + 1] == ":":
            end = p.find(":]", i + 1)
            name = p[i + 1:end] if end >= 0 else ""
            if end >= 0 and name and all("a" <= ch < "z" for ch in name):  # fnmatch_loop.c's test
                if name not in _CLASSES:
                    return None, i
                i = end + 2
                if _ascii_class(name, fn):
                    break
                continue
        if p[i:i + 1] == "-" and i + 1 < len(p) and p[i + 1] != "]":
            hi = p[i + 1]
            i += 2
            if hi == "\\":
                if i >= len(p):
                    return None, i
                hi = p[i]
                i += 1
            if c <= fn <= hi:
                break
        elif c == fn:
            break
    # skip the rest of a bracket that matched; unterminated, it was no bracket
    while True:
        if i >= len(p):
            return False, -1
        c = p[i]
        i += 1
        if c == "]":
            return not negate, i
        if c == "\\":
            i += 1
        elif c == "[" and p[i:i + 1] == ":":
            end = p.find(":]", i + 1)
            if end >= 0 and all("a" <= ch < "z" for ch in p[i + 1:end]):
                i = end + 2


def fnmatch(pattern: str, name: str) -> bool:
    """Mirrors `fnmatch (pattern, name, FNM_PERIOD)`: a leading '.' is matched only by a literal '.'."""
    return _match(pattern, 0, name, 0, True)


def _match(p: str, pi: int, s: str, si: int, leading: bool) -> bool:
    while pi < len(p):
        c = p[pi]
        pi += 1
        at_period = si < len(s) and s[si] == "." and leading
        if c == "?":
            if si >= len(s) or at_period:
                return False
            si += 1
        elif c == "*":
            if at_period:
                return False
            while pi < len(p) and p[pi] in "?*":
                if p[pi] == "?":
                    if si >= len(s):
                        return False
                    si += 1
                pi += 1
            if pi >= len(p):
                return True
            return any(_match(p, pi, s, k, leading and k == si) for k in range(si, len(s)))
        elif c == "[":
            if si >= len(s) or at_period:
                return False
            ok, end = _bracket(p, pi, s[si])
            if end < 0:  # unterminated: a literal '['
                if s[si] != "[":
                    return False
            elif not ok:
                return False
            else:
                pi = end
            si += 1
        else:
            if c == "\\":
                if pi >= len(p):
                    return False  # a trailing backslash matches nothing
                c = p[pi]
                pi += 1
            if si >= len(s) or s[si] != c:
                return False
            si += 1
        leading = False
    return si == len(s)


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def _is_dir(world: World, path: str) -> bool:
    try:
        return S.S_ISDIR(world.stat(path).st_mode)
    except OSError:
        return False


def _glob_in_dir(world: World, pattern: str, directory: str, only_dir: bool) -> list[str]:
    """Mirrors `glob_in_dir`: names (not paths) in `directory` matching `pattern`."""
    if pattern_type(pattern) == 0:
        try:
            world.lstat(f"{directory}/{pattern}")  # a dangling symlink exists too
        except OSError:
            return []
        return [pattern]
    try:
        names = [".", ".."] + world.listdir(directory)  # readdir returns both; '.*' matches them
    except OSError:
        return []
    found = []
    for name in names:
        if only_dir and not _is_dir(world, f"{directory}/{name}"):
            continue
        if fnmatch(pattern, name):
            found.append(name)
    return found


def _prefix(directory: str, name: str) -> str:
    """Mirrors `prefix_array`: "/" is not doubled, any other directory text is kept as written."""
    return "/" + name if directory == "/" else f"{directory}/{name}"


def _glob(world: World, pattern: str, only_dir: bool, mark: bool) -> list[str]:
    only_dir = only_dir or pattern.endswith("/")  # POSIX: a trailing slash matches only directories
    slash = pattern.rfind("/")
    if slash < 0:
        if not pattern:
            return []
        return [p + "/" if mark and _is_dir(world, p) else p
                for p in _glob_in_dir(world, pattern, ".", only_dir)]
    if slash == 0:
        dirname, filename = "/", pattern[1:]
    else:
        dirname, filename = pattern[:slash], pattern[slash + 1:]
        if not filename and slash > 1:  # "pattern/": the directories, each marked with a '/'
            return _glob(world, dirname, only_dir, True)
    if pattern_type(dirname) & (_SPECIAL | _BRACKET):
        out = [_prefix(d, n) for d in _glob(world, dirname, True, False)
               for n in _glob_in_dir(world, filename, d, only_dir)]
    else:
        if pattern_type(dirname) & _BACKSLASH:
            dirname = _unescape(dirname)
        out = [_prefix(dirname, n) for n in _glob_in_dir(world, filename, dirname, only_dir)]
    if mark:
        out = [p + "/" if _is_dir(world, p) else p for p in out]
    return out


def glob(world: World, pattern: str) -> list[str]:
    """Mirrors `glob (pattern, 0, NULL, &gl)`: matches sorted bytewise (ldconfig keeps LC_COLLATE=C)."""
    return sorted(_glob(world, pattern, False, False), key=lambda s: s.encode("utf-8", "surrogateescape"))
