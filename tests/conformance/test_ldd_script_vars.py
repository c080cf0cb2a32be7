"""The ldd script's own variables and its `eval`, against the real ldd: what the caller's environment
does to them.  The script never sets `unused=` (only warn=, bind_now=, verbose=), and `-u` adds
LD_DEBUG="$LD_DEBUG,unused" to a string it then word-splits and `eval`s (elf/ldd.bash.in, try_trace)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.oracle import ldsim_ldd, real_ldd
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance


def _cc(root: str, out: str, src: str, *args: str) -> str:
    path = os.path.join(root, out)
    with open(path + ".c", "w") as f:
        f.write(src)
    subprocess.run(["gcc", "-o", path, path + ".c", *args], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> str:
    """prog needs libused.so (calls it) and libspare.so (linked --no-as-needed, never used)."""
    root = str(tmp_path_factory.mktemp("lddvars"))
    for name in ("used", "spare"):
        _cc(root, f"lib{name}.so", f"int {name}(void) {{ return 1; }}\n", "-shared", "-fPIC",
            f"-Wl,-soname,lib{name}.so")
    _cc(root, "prog", "int used(void);\nint main(void) { return used(); }\n", f"-L{root}",
        f"-Wl,-rpath,{root}", "-Wl,--no-as-needed", "-lused", "-lspare")
    return root


@pytest.mark.parametrize("env", [{"unused": "yes"}, {"unused": "yes", "LD_DEBUG": "files"},
                                 {"unused": "yes "}, {"unused": "no"}],
                         ids=["yes", "yes-with-debug", "yes-space", "no"])
def test_unused_from_the_environment(world: str, env: dict[str, str]) -> None:
    for args in ([f"{world}/prog"], ["-v", f"{world}/prog", f"{world}/libused.so"]):
        assert_same(real_ldd(args, env, world), ldsim_ldd(args, env, world))


# -u's LD_DEBUG="$LD_DEBUG,unused" goes through `eval $add_env`: word splitting, then the caller's value
# is read as shell text inside double quotes (variables expanded, backslashes and quotes acting)
EVAL_CASES = {
    "plain": "files",
    "variable": "files,$PATH",
    "braced": "${PATH}x",
    "script-variables": "$file:$RTLD:$rtld:$ret:$single_file:$TEXTDOMAIN:$warn:$bind_now:$verbose:$unused",
    "add-env": "$add_env",
    "unset-variable": "$HOME$nothing",
    "lone-dollar": "a$,$",
    "backslashes": "\\$PATH,\\\\,\\x",
    "escaped-quote": 'a\\"b',
    "quotes-that-close": 'a""b',
    "single-quotes-inside": "a''b",
    "whitespace": " libs \t files  ",
    "open-double-quote": '"',
    "open-quote-mid": 'files"x',
    "open-single-quote": "a\"'",
    "glob-matching-nothing": "*",
}


@pytest.mark.parametrize("value", list(EVAL_CASES.values()), ids=list(EVAL_CASES))
def test_unused_evaluates_ld_debug(world: str, value: str) -> None:
    env = {"LD_DEBUG": value}
    for args in (["-u", "prog"], ["-u", "-r", f"{world}/prog", "libused.so"]):
        assert_same(real_ldd(args, env, world), ldsim_ldd(args, env, world))


@pytest.mark.parametrize("value", ["$(echo files)", "`echo files`", "${X:-files}", "$1", 'a" X=1 "', "x * y"])
def test_shell_code_in_ld_debug_is_not_simulated(world: str, value: str) -> None:
    """Command substitution, operators, positional parameters, words the value adds to the command and
    globs that match files are beyond the simulated part of bash: one line, exit 3."""
    sim = ldsim_ldd(["-u", "prog"], {"LD_DEBUG": value}, world)
    assert sim.status == 3 and sim.stdout == b"" and sim.stderr.count(b"\n") == 1
    assert b"not simulated" in sim.stderr


# bash's start before the script's first line: BASH_ENV is sourced (a directory reported, a missing or
# empty file skipped; not in POSIX mode), SHELLOPTS/BASHOPTS at their defaults change nothing
STARTUP_CASES = {
    "bash-env-directory": {"BASH_ENV": "{root}"},
    "bash-env-directory-slash": {"BASH_ENV": "{root}/"},
    "bash-env-relative-directory": {"BASH_ENV": "."},
    "bash-env-missing": {"BASH_ENV": "{root}/missing"},
    "bash-env-empty-file": {"BASH_ENV": "{root}/empty"},
    "bash-env-posix": {"BASH_ENV": "{root}", "POSIXLY_CORRECT": "1"},
    "bash-env-with-ld-debug": {"BASH_ENV": "{root}", "LD_DEBUG": "nothing"},
    "default-options": {"SHELLOPTS": "braceexpand:hashall", "BASHOPTS": "sourcepath:cmdhist"},
}


@pytest.mark.parametrize("env", list(STARTUP_CASES.values()), ids=list(STARTUP_CASES))
def test_bash_startup_environment(world: str, env: dict[str, str]) -> None:
    open(os.path.join(world, "empty"), "w").close()
    env = {k: v.replace("{root}", world) for k, v in env.items()}
    for args in (["prog"], ["-u", "prog", "libused.so"], ["--help"]):
        assert_same(real_ldd(args, env, world), ldsim_ldd(args, env, world))


@pytest.mark.parametrize("env", [{"SHELLOPTS": "xtrace"}, {"BASHOPTS": "xpg_echo"},
                                 {"BASH_FUNC_test%%": "() { return 1; }"}, {"BASH_ENV": "{root}/prog.c"}],
                         ids=["xtrace", "xpg_echo", "function", "bash-env-file"])
def test_shell_changes_from_the_environment_are_not_simulated(world: str, env: dict[str, str]) -> None:
    """Options, imported functions and a BASH_ENV file change how bash runs the script: one line, exit 3."""
    env = {k: v.replace("{root}", world) for k, v in env.items()}
    sim = ldsim_ldd(["prog"], env, world)
    assert sim.status == 3 and sim.stdout == b"" and sim.stderr.count(b"\n") == 1
    assert b"not simulated" in sim.stderr


@pytest.mark.parametrize("value", ["0", "", "1", "2"])
def test_a_traced_shell_never_runs_the_script(world: str, value: str) -> None:
    """LD_TRACE_LOADED_OBJECTS in ldd's own environment (whatever its value) makes the loader of ldd's
    bash list bash's libraries and exit 0: the script never runs."""
    env = {"LD_TRACE_LOADED_OBJECTS": value}
    for args in (["prog"], ["-u", "prog", "missing"], ["--help"]):
        assert_same(real_ldd(args, env, world), ldsim_ldd(args, env, world))


# the script's $"..." messages: translated by bash's gettext once its setlocale(LC_ALL, "") succeeded
# with a locale other than C (C.UTF-8 is always there); LANGUAGE picks the catalogs, the first that
# has a message wins; an unknown LC_ALL makes bash warn and stay in C
LOCALE_CASES = {
    "german": {"LC_ALL": "C.UTF-8", "LANGUAGE": "de"},
    "fallbacks": {"LANG": "C.utf8", "LANGUAGE": "xx:fr_FR.UTF-8:de"},
    "territory": {"LC_MESSAGES": "C.UTF-8", "LANG": "C.UTF-8", "LANGUAGE": "de_AT"},
    "modifier": {"LC_ALL": "C.UTF-8@x", "LANGUAGE": "ja"},
    "language-ignored-in-c": {"LANGUAGE": "de"},
    "unknown-lc-all": {"LC_ALL": "xx", "LANGUAGE": "de"},
    "unknown-lang": {"LANG": "xx", "LC_MESSAGES": "C.UTF-8", "LANGUAGE": "de"},
    "lower-case-c": {"LC_ALL": "c.utf8", "LANGUAGE": "de"},
}


@pytest.mark.parametrize("env", list(LOCALE_CASES.values()), ids=list(LOCALE_CASES))
def test_translated_messages(world: str, env: dict[str, str]) -> None:
    for args in (["--help"], ["--version"], ["--ver"], ["-x"], [], ["missing", ".", "prog.c", "prog"]):
        assert_same(real_ldd(args, env, world), ldsim_ldd(args, env, world))
