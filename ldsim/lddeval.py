"""What bash makes of ldd's `-u` assignment: the script adds `LD_DEBUG="$LD_DEBUG${LD_DEBUG:+,}unused"` to
`add_env` with the caller's LD_DEBUG pasted in, and try_trace runs `eval $add_env '"$@"'` (elf/ldd.bash.in):
the unquoted $add_env is split on IFS and globbed, then eval parses the text again, so quotes, backslashes
and `$NAME` in the caller's LD_DEBUG act as shell syntax.  The small part of bash that covers plain
values is simulated; anything else (command substitution, special parameters, a word the value adds,
a glob that matches) is reported as not simulated."""

from __future__ import annotations

from collections.abc import Callable, Mapping

_IFS = " \t\n"  # bash resets IFS at startup whatever the environment says
_GLOB = "*?["
_META = ";&|<>()"
# variables bash itself sets in a non-interactive script: their values are not simulated
_BASH_SET = frozenset(
    "BASH BASHOPTS BASHPID BASH_ALIASES BASH_ARGC BASH_ARGV BASH_ARGV0 BASH_CMDS BASH_COMMAND BASH_LINENO "
    "BASH_LOADABLES_PATH BASH_SOURCE BASH_SUBSHELL BASH_VERSINFO BASH_VERSION COMP_WORDBREAKS DIRSTACK "
    "EPOCHREALTIME EPOCHSECONDS EUID FUNCNAME GROUPS HISTCMD HOSTNAME HOSTTYPE LINENO MACHTYPE OPTERR OPTIND "
    "OSTYPE PPID PS4 PWD RANDOM SECONDS SHELLOPTS SHLVL SRANDOM UID _".split())


class EvalSyntaxError(Exception):
    """eval's parser gave up (bash prints `SCRIPT: eval: line N: MESSAGE` and eval returns 2)."""


def debug_assignment(old: str, lookup: Callable[[str], str], positional: list[str],
                     cwd_names: Callable[[], list[str]]) -> str:
    """The LD_DEBUG value `eval` exports for the caller's LD_DEBUG `old`.  `lookup` gives a shell
    variable's value (raising NotImplementedError for one not simulated), `positional` is "$@" (RTLD
    FILE), `cwd_names` the names pathname expansion would match against."""
    fields = _split(f'LD_DEBUG="{old}{"," if old else ""}unused"')
    for f in fields:
        _no_glob_match(f, cwd_names)
    words = _Parser(" ".join(fields) + ' "$@"', lookup, positional).words()
    if len(words) != 1 + len(positional) or words[0][0] != "LD_DEBUG" or any(n for n, _ in words[1:]) \
            or [v for _, v in words[1:]] != positional:
        raise NotImplementedError("ldd -u: an LD_DEBUG that adds words to ldd's eval is not simulated")
    return words[0][1]


def _split(text: str) -> list[str]:
    """Field splitting of an unquoted expansion on the default IFS."""
    out, cur = [], []
    for c in text:
        if c in _IFS:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(c)
    if cur:
        out.append("".join(cur))
    return out


def _no_glob_match(field: str, cwd_names: Callable[[], list[str]]) -> None:
    """Pathname expansion of a field: one that matches nothing stays as it is (bash's default)."""
    if not any(c in field for c in _GLOB):
        return
    if "/" in field:
        raise NotImplementedError("ldd -u: a glob with '/' in LD_DEBUG is not simulated")
    import fnmatch  # imports re: kept off the cold-start path
    names = [n for n in cwd_names() if field.startswith(".") or not n.startswith(".")]
    if any(fnmatch.fnmatchcase(n, field) for n in names):
        raise NotImplementedError("ldd -u: an LD_DEBUG glob that matches files is not simulated")


def _check_quotes(text: str) -> None:
    """bash reads the whole command before it expands anything: a quote left open is a syntax error
    even where an expansion comes first.  Text with `...` or $(...) or ${...} (their own nesting) is
    left to the parser, which does not simulate them."""
    if "`" in text or "$(" in text or "${" in text:
        return
    i, quote = 0, ""
    while i < len(text):
        c = text[i]
        if quote == "'":
            quote = "" if c == "'" else quote
        elif c == "\\":
            i += 1
        elif c == '"':
            quote = "" if quote else '"'
        elif c == "'" and not quote:
            quote = "'"
        i += 1
    if quote:
        raise EvalSyntaxError(f"unexpected EOF while looking for matching `{quote}'")


class _Parser:
    """bash's reading of eval's text, for simple words: quotes, backslashes, `$NAME`, `${NAME}`, "$@"."""

    def __init__(self, text: str, lookup: Callable[[str], str], positional: list[str]) -> None:
        self.text, self.i, self.lookup, self.positional = text, 0, lookup, positional

    def words(self) -> list[tuple[str | None, str]]:
        """(assigned name or None, value) of each word."""
        _check_quotes(self.text)
        out: list[tuple[str | None, str]] = []
        while True:
            while self.i < len(self.text) and self.text[self.i] == " ":
                self.i += 1
            if self.i >= len(self.text):
                return out
            out.extend(self._word())

    def _word(self) -> list[tuple[str | None, str]]:
        t, parts, name, start = self.text, [], None, self.i
        if t[start] in "#~":
            raise NotImplementedError("ldd -u: a comment or tilde in LD_DEBUG is not simulated")
        while self.i < len(t) and t[self.i] != " ":
            c = t[self.i]
            if c == '"':
                if t.startswith('"$@"', self.i) and self.i == start and t[self.i + 4:self.i + 5] in ("", " "):
                    self.i += 4
                    return [(None, p) for p in self.positional]
                parts.append(self._double())
            elif c == "'":
                end = t.find("'", self.i + 1)
                if end < 0:
                    raise EvalSyntaxError("unexpected EOF while looking for matching `''")
                parts.append(t[self.i + 1:end])
                self.i = end + 1
            elif c == "\\":
                parts.append(t[self.i + 1:self.i + 2])
                self.i += 2
            elif c == "$":
                value = self._dollar(quoted=False)
                if name is None and any(ch in _IFS or ch in _GLOB for ch in value):
                    raise NotImplementedError("ldd -u: an unquoted expansion in LD_DEBUG is not simulated")
                parts.append(value)
            elif c in _META or c in _GLOB or c in "{`~":
                raise NotImplementedError(f"ldd -u: {c!r} outside quotes in LD_DEBUG is not simulated")
            elif c == "=" and name is None and self.i > start and t[start:self.i].isidentifier() \
                    and t[start:self.i].isascii():
                name, parts = t[start:self.i], []
                self.i += 1
            else:
                parts.append(c)
                self.i += 1
        return [(name, "".join(parts))]

    def _double(self) -> str:
        """A double-quoted string from its opening quote: `\\` escapes only $ ` " \\ (and newline)."""
        t, out = self.text, []
        self.i += 1
        while self.i < len(t):
            c = t[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\" and t[self.i + 1:self.i + 2] in ("$", "`", '"', "\\", "\n"):
                out.append(t[self.i + 1])
                self.i += 2
            elif c == "$":
                out.append(self._dollar(quoted=True))
            elif c == "`":
                raise NotImplementedError("ldd -u: command substitution in LD_DEBUG is not simulated")
            else:
                out.append(c)
                self.i += 1
        raise EvalSyntaxError("unexpected EOF while looking for matching `\"'")

    def _dollar(self, quoted: bool) -> str:
        """`$` at self.i: a variable's value, or a literal `$` when no name follows."""
        t = self.text
        nxt = t[self.i + 1:self.i + 2]
        if nxt == "{":
            end = t.find("}", self.i)
            name = t[self.i + 2:end] if end > 0 else ""
            if not (name.isidentifier() and name.isascii()):
                raise NotImplementedError("ldd -u: a ${...} expansion in LD_DEBUG is not simulated")
            self.i = end + 1
            return self.lookup(name)
        if nxt.isascii() and (nxt.isalpha() or nxt == "_"):
            j = self.i + 1
            while j < len(t) and t[j].isascii() and (t[j].isalnum() or t[j] == "_"):
                j += 1
            name, self.i = t[self.i + 1:j], j
            return self.lookup(name)
        if nxt and (nxt.isdigit() or nxt in "@*#?-$!(" or (not quoted and nxt in "'\"")):
            raise NotImplementedError(f"ldd -u: ${nxt} in LD_DEBUG is not simulated")
        self.i += 1
        return "$"


def shell_lookup(env: Mapping[str, str], script: Mapping[str, str | None]) -> Callable[[str], str]:
    """A variable of the script at try_trace's eval: the script's own (None: a value not simulated), else
    the imported environment's, else unset (empty); one that bash sets itself is not simulated."""
    def lookup(name: str) -> str:
        if name in script:
            value = script[name]
            if value is None:
                raise NotImplementedError(f"ldd -u: ${name} in LD_DEBUG is not simulated")
            return value
        if name in env:
            return env[name]
        if name in _BASH_SET:
            raise NotImplementedError(f"ldd -u: ${name} in LD_DEBUG (set by bash) is not simulated")
        return ""
    return lookup
