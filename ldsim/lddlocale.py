"""ldd's $"..." messages as the script's bash translates them: bash calls setlocale(LC_ALL, "") once at
its start (locale.c, set_default_locale), and each $"..." is looked up with gettext in TEXTDOMAIN=libc
under TEXTDOMAINDIR=/usr/share/locale, which the script sets.  gettext ignores LANGUAGE while the
LC_MESSAGES locale is "C" (dcigettext.c, guess_category_value); only C.UTF-8, which glibc 2.35+ always
has, is simulated beside C and POSIX: another locale that exists in the root is reported as not
simulated."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

from ldsim.world import World

_CATEGORIES = ("LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER",
               "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION")
_LOCALE_DIR = "/usr/share/locale"  # the script's TEXTDOMAINDIR
_MO_MAGIC = 0x950412DE


def _normalized_codeset(codeset: str) -> str:
    """_nl_normalize_codeset: letters lower-cased, digits kept, everything else dropped."""
    return "".join(c.lower() for c in codeset if c.isalnum())


def _category_locale(env: Mapping[str, str], category: str) -> str:
    """setlocale's name for a category: LC_ALL, else the category's variable, else LANG, else C."""
    for name in ("LC_ALL", category, "LANG"):
        if env.get(name):
            return env[name]
    return "C"


def _c_codeset(name: str) -> str | None:
    """The codeset of glibc's C.<codeset>[@modifier] (the language is case-sensitive), else None.  By
    hand, not with re: Python's own locale coercion sets LC_CTYPE=C.UTF-8, so this runs at every start."""
    if not name.startswith("C."):
        return None
    codeset, at, modifier = name[2:].partition("@")
    if not codeset or "\n" in modifier or not all(c.isascii() and (c.isalnum() or c in "_-") for c in codeset):
        return None
    return codeset


def _available(world: World, name: str) -> bool:
    if name in ("C", "POSIX"):
        return True
    codeset = _c_codeset(name)
    if codeset is not None and _normalized_codeset(codeset) == "utf8":
        return True
    if "/" in name or _exists(world, "/usr/lib/locale/locale-archive") or _exists(world, f"/usr/lib/locale/{name}"):
        raise NotImplementedError(f"ldd under the locale {name}: not simulated (only C and C.UTF-8 are)")
    return False


def _exists(world: World, path: str) -> bool:
    try:
        world.stat(path)
    except OSError:
        return False
    return True


def startup(world: World, env: Mapping[str, str]) -> tuple[str | None, str]:
    """bash's setlocale(LC_ALL, ""): (its warning or None, the LC_MESSAGES locale).  One unknown name
    makes the whole call fail and every category stays C; bash warns only about LC_ALL."""
    names = {c: _category_locale(env, c) for c in _CATEGORIES}
    if all(_available(world, n) for n in set(names.values())):
        if names["LC_CTYPE"] in ("C", "POSIX") and names["LC_MESSAGES"] not in ("C", "POSIX"):
            raise NotImplementedError("ldd with translated messages in an ASCII LC_CTYPE: not simulated")
        return None, names["LC_MESSAGES"]
    warning = None
    if env.get("LC_ALL"):
        warning = f"/bin/bash: warning: setlocale: LC_ALL: cannot change locale ({env['LC_ALL']})\n"
    return warning, "C"


def _split_locale(name: str) -> tuple[str, str, str, str]:
    """language[_territory][.codeset][@modifier], split by hand (no re on the start-up path); a modifier
    holding a newline leaves the whole name as the language, as the pattern this replaces did."""
    def cut(text: str, stops: str) -> int:
        return min((i for i in (text.find(c) for c in stops) if i >= 0), default=len(text))
    i = cut(name, "_.@")
    lang, rest = name[:i], name[i:]
    terr = codeset = ""
    if rest.startswith("_"):
        j = cut(rest, ".@")
        terr, rest = rest[:j], rest[j:]
    if rest.startswith("."):
        j = cut(rest, "@")
        codeset, rest = rest[:j], rest[j:]
    if "\n" in rest:
        return name, "", "", ""
    return lang, terr, codeset, rest


def _variants(language: str) -> list[str]:
    """The catalog directories _nl_make_l10nflist tries for one language: every combination of its
    parts, in decreasing mask order (modifier 8, territory 4, codeset 2, normalized codeset 1)."""
    lang, terr, codeset, mod = _split_locale(language)
    norm = "." + _normalized_codeset(codeset[1:]) if codeset else ""
    parts = [(8, mod), (4, terr), (2, codeset), (1, norm if norm != codeset else "")]
    present = sum(bit for bit, text in parts if text)
    out = []
    for mask in range(15, -1, -1):
        if mask & ~present:
            continue
        name = lang + "".join(text for bit, text in sorted(parts, key=lambda p: (p[0] != 4, p[0] == 8, -p[0]))
                              if mask & bit)
        out.append(name)
    return out


def read_mo(data: bytes) -> dict[bytes, bytes]:
    """A GNU message catalog: msgid -> its (first) translation."""
    if len(data) < 20:
        return {}
    for order in ("<", ">"):
        magic, _rev, n, orig, trans = struct.unpack(order + "5I", data[:20])
        if magic == _MO_MAGIC:
            break
    else:
        return {}
    out = {}
    for i in range(n):
        ln, off = struct.unpack(order + "2I", data[orig + 8 * i:orig + 8 * i + 8])
        tl, toff = struct.unpack(order + "2I", data[trans + 8 * i:trans + 8 * i + 8])
        out[data[off:off + ln]] = data[toff:toff + tl].split(b"\0")[0]
    return out


def translator(world: World, env: Mapping[str, str], messages_locale: str) -> Callable[[str], str]:
    """gettext for the script's domain: each language of LANGUAGE (or the locale's own name) in turn,
    the first catalog that has the message."""
    if messages_locale in ("C", "POSIX"):
        return lambda msgid: msgid
    languages = [lang for lang in (env.get("LANGUAGE") or messages_locale).split(":") if lang]
    catalogs = []
    for lang in languages:
        for v in _variants(lang):
            path = f"{_LOCALE_DIR}/{v}/LC_MESSAGES/libc.mo"
            try:
                data = world.read(path, 1 << 24)
            except OSError:
                continue
            catalogs.append(read_mo(data))
            break

    def gettext(msgid: str) -> str:
        key = msgid.encode()
        for cat in catalogs:
            if cat.get(key):
                return cat[key].decode("utf-8", "surrogateescape")
        return msgid
    return gettext


_DQ_ESCAPES = {"\\\\": "\\", "\\`": "`", "\\$": "$", '\\"': '"'}


class Messages:
    """The script's $"MSGID" strings: translated, then expanded as the double-quoted text they are
    (backslash escapes, `$1`); printf's formats have their `\\n` and `%s` done too."""

    def __init__(self, gettext: Callable[[str], str]) -> None:
        self.gettext = gettext

    def say(self, msgid: str, arg: str = "") -> str:
        import re
        text = self.gettext(msgid)
        return re.sub(r"\\[\\`$\"]|\$1", lambda m: arg if m.group() == "$1" else _DQ_ESCAPES[m.group()], text)

    def printf(self, msgid: str, *args: str) -> str:
        """bash's printf with a translated format: only `%s`, `%%`, `\\n` and `\\\\` occur in ldd's."""
        import re
        it = iter(args)

        def one(m) -> str:
            t = m.group()
            if t == "%s":
                return next(it, "")
            return {"%%": "%", "\\n": "\n", "\\\\": "\\"}.get(t) or _unsupported(t)
        return re.sub(r"%.|\\.", one, self.say(msgid))


def _unsupported(directive: str) -> str:
    raise NotImplementedError(f"ldd: a translated message with printf's {directive!r}: not simulated")
