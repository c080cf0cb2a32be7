"""ld.so.conf: a total lark grammar (ldconf.lark) and the include expansion of ldconfig 2.36.

`parse_conf_text` is pure (text -> typed lines); `expand_conf` follows `include` through a World.
Mirrors `parse_conf`, `parse_conf_include` and the text handling of `add_dir_1` (elf/ldconfig.c).
This is the only module that imports lark.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Union

if TYPE_CHECKING:
    from lark import Lark

    from ldsim.world import World

C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
LIB_TYPES = ("libc4", "libc5", "libc6", "glibc2")  # lib_types[] in elf/ldconfig.c


@dataclass(frozen=True)
class IncludeLine:
    """`include PATTERN...`: glob patterns, each word on its own."""

    file: str
    line: int
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class HwcapLine:
    """`hwcap ...` (any case): ignored by 2.36 with a message."""

    file: str
    line: int


@dataclass(frozen=True)
class DirLine:
    """A directory line after `add_dir_1`'s canonification; `path` may be '' (then ignored)."""

    file: str
    line: int
    path: str
    lib_type: str | None  # the text after the first '=', if any

    @property
    def type_known(self) -> bool:
        return self.lib_type is None or self.lib_type in LIB_TYPES


ConfLine = Union[IncludeLine, HwcapLine, DirLine]


@dataclass(frozen=True)
class ConfDir:
    """A directory line in expansion order, with where it came from (`FILE:LINE`)."""

    path: str
    lib_type: str | None
    file: str
    line: int


@dataclass(frozen=True)
class Diagnostic:
    """A message ldconfig prints (`ldconfig: ` prefix not included).

    `after` is how many directories had been produced when it was printed, so that a caller can
    interleave it with its own per-directory messages in ldconfig's order.  `verbose_only` messages
    are printed by ldconfig only with -v.  `fatal` ends ldconfig (exit 1)."""

    message: str
    after: int
    verbose_only: bool = False
    fatal: bool = False
    ldsim_only: bool = False  # no ldconfig counterpart (cycle detection)


@dataclass
class ConfResult:
    dirs: list[ConfDir] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # configuration files read, in order

    @property
    def fatal(self) -> Diagnostic | None:
        return next((d for d in self.diagnostics if d.fatal), None)


# ------------------------------------------------------------------------------------------- parsing

_parser: Lark | None = None  # built on first use: grammar analysis is the expensive part


def _get_parser() -> Lark:
    global _parser
    if _parser is None:
        from lark import Lark

        grammar = os.path.join(os.path.dirname(__file__), "ldconf.lark")
        with open(grammar, encoding="utf-8") as f:
            _parser = Lark(f.read(), parser="lalr", lexer="contextual", maybe_placeholders=False,
                           cache=True)  # analysis cached under the temp dir, keyed by grammar hash
    return _parser


def _dir_line(file: str, line: int, text: str) -> DirLine:
    """Mirrors the text part of `add_dir_1`: split at the first '=', trim trailing space, then '/'."""
    text = text.lstrip(C_SPACE)
    lib_type = None
    if "=" in text:
        text, lib_type = text.split("=", 1)
    return DirLine(file, line, text.rstrip(C_SPACE).rstrip("/"), lib_type)


def parse_conf_text(text: str, filename: str) -> list[ConfLine]:
    """Parse one ld.so.conf text.  Never fails: glibc treats any other line as a directory."""
    tree = _get_parser().parse(text)
    out: list[ConfLine] = []
    for stmt in tree.children:
        tok = stmt.children[0]
        if stmt.data == "include":
            words = tuple(w for w in stmt.children[1].replace("\t", " ").split(" ") if w)
            out.append(IncludeLine(filename, tok.line, words))
        elif stmt.data == "hwcap":
            out.append(HwcapLine(filename, tok.line))
        else:
            out.append(_dir_line(filename, tok.line, str(tok)))
    return out


# ------------------------------------------------------------------------------------------ expansion


def _read_conf(world: World, path: str, res: ConfResult) -> str | None:
    """`fopen` + `getline`: ENOENT is silent, a directory reads as empty, other errors warn."""
    try:
        data = world.read(path)
    except OSError as e:
        if e.errno == errno.EISDIR:
            return ""
        if e.errno != errno.ENOENT:
            res.diagnostics.append(Diagnostic(
                f"Warning: ignoring configuration file that cannot be opened: {path}: "
                f"{os.strerror(e.errno or 0)}", len(res.dirs)))
        return None
    return data.decode("utf-8", "surrogateescape")


def c_dirname(path: str) -> str:
    """Mirrors glibc's `dirname` (misc/dirname.c): trailing slashes ignored, a leading "//" kept."""
    last = path.rfind("/")
    if last > 0 and last == len(path) - 1:  # trailing slashes: the slash before the last component
        run = last
        while run > 0 and path[run - 1] == "/":
            run -= 1
        if run > 0:
            last = path.rfind("/", 0, run)
    if last < 0:
        return "."
    run = last
    while run > 0 and path[run - 1] == "/":
        run -= 1
    if run == 0:
        return "//" if last == 1 else "/"
    return path[:run]


def _include_pattern(config_file: str, pattern: str) -> str:
    """Mirrors `parse_conf_include`: relative to the including file's directory when it has one, else
    left relative (glob resolves it against the cwd and its matches stay relative)."""
    if not pattern.startswith("/") and "/" in config_file:
        pattern = c_dirname(config_file) + "/" + pattern
    return pattern


class _NoFreeFd:
    """The World as a process seen with no descriptor left: `opendir` fails with EMFILE (glob then
    matches nothing there, silently); stat and lstat still work."""

    def __init__(self, world: World) -> None:
        self._world = world

    def listdir(self, path: str) -> list[str]:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), path)

    def __getattr__(self, name: str) -> object:
        return getattr(self._world, name)


_FATAL = None  # what a file's walk yields to stop the whole expansion


def expand_conf(world: World, path: str, *, root_mode: bool = False, free_fds: int | None = None) -> ConfResult:
    """Mirrors `parse_conf` with includes expanded in place.

    root_mode: ldconfig -r without the privilege to chroot (path translation), where a relative
    include is fatal.  As root, ldconfig -r chroots and relative includes work.
    free_fds: the descriptors ldconfig has free below RLIMIT_NOFILE.  Each file being read holds
    one (its FILE stays open while its includes are read), so an include cycle is followed until
    fopen fails with EMFILE ("Too many open files", a warning) and a glob that must open a directory
    matches nothing; then every level goes on after its include line.  None: cycles stop at the
    first repeated file with an ldsim diagnostic naming FILE:LINE instead."""
    from ldsim.cglob import glob

    res = ConfResult()
    stack: list[tuple[str, Iterator[str | None]]] = []  # the files open, innermost last
    # a cycle reads the same files and globs thousands of times: parse and match each once
    parsed: dict[tuple[str, str], list[ConfLine]] = {}
    globbed: dict[tuple[str, bool], list[str]] = {}

    def matches(pattern: str, fds_left: bool) -> list[str]:
        hit = globbed.get((pattern, fds_left))
        if hit is None:
            hit = globbed[pattern, fds_left] = glob(world if fds_left else _NoFreeFd(world), pattern)
        return hit

    def key(p: str) -> str:
        try:
            return world.realpath(p)
        except OSError:
            return p

    def includes(filename: str, text: str) -> Iterator[str | None]:
        """Takes in the lines of one file; yields each file to read in its place (_FATAL: stop)."""
        lines = parsed.get((filename, text))
        if lines is None:
            lines = parsed[filename, text] = parse_conf_text(text, filename)
        for item in lines:
            if isinstance(item, DirLine):
                if not item.type_known:
                    res.diagnostics.append(Diagnostic(f"{item.lib_type} is not a known library type",
                                                      len(res.dirs)))
                if item.path:
                    res.dirs.append(ConfDir(item.path, item.lib_type, filename, item.line))
            elif isinstance(item, HwcapLine):
                res.diagnostics.append(Diagnostic(f"{filename}:{item.line}: hwcap directive ignored",
                                                  len(res.dirs)))
            else:
                for pattern in item.patterns:
                    if root_mode and not pattern.startswith("/"):
                        res.diagnostics.append(Diagnostic(
                            "need absolute file name for configuration file when using -r",
                            len(res.dirs), fatal=True))
                        yield _FATAL
                        return
                    fds_left = free_fds is None or len(stack) < free_fds
                    for match in matches(_include_pattern(filename, pattern), fds_left):
                        if free_fds is None and key(match) in (key(f) for f, _ in stack):
                            res.diagnostics.append(Diagnostic(
                                f"{filename}:{item.line}: include cycle: {match} is already being read",
                                len(res.dirs), ldsim_only=True))
                            continue
                        yield match

    def open_conf(filename: str) -> None:
        if free_fds is not None and len(stack) >= free_fds:  # open(2) takes a descriptor first
            res.diagnostics.append(Diagnostic(
                f"Warning: ignoring configuration file that cannot be opened: {filename}: "
                f"{os.strerror(errno.EMFILE)}", len(res.dirs)))
            return
        text = _read_conf(world, filename, res)
        if text is not None:
            res.files.append(filename)
            stack.append((filename, includes(filename, text)))

    open_conf(path)
    while stack:  # a loop, not recursion: a cycle nests as deep as the descriptors allow
        nxt = next(stack[-1][1], False)
        if nxt is False:
            stack.pop()
        elif nxt is _FATAL:
            break
        else:
            open_conf(nxt)
    return res
