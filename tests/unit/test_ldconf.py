"""ld.so.conf grammar and include expansion (`parse_conf`, elf/ldconfig.c)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ldsim.ldconf import DirLine, HwcapLine, IncludeLine, expand_conf, parse_conf_text
from ldsim.world import RootedWorld


def test_line_kinds_and_numbers():
    text = (
        "include /etc/ld.so.conf.d/*.conf\n"
        "  # comment\n"
        "/usr/lib/  # trailing comment and slash\n"
        " hwcap 1 foo\n"
        "HWCAP\tx\n"
        "include\n"  # no blank after the keyword: a directory named 'include'
        "\tinclude\t a.conf  b/*.conf\t#c\n"
        "/opt/sp ace/ \n"
        "/z/=libc5\t\n"
        "/y = weird\n"
        "/\n"
        "a\0b#c\r\n"
        "/last"
    )
    f = "/etc/ld.so.conf"
    assert parse_conf_text(text, f) == [
        IncludeLine(f, 1, ("/etc/ld.so.conf.d/*.conf",)),
        DirLine(f, 3, "/usr/lib", None),
        HwcapLine(f, 4),
        HwcapLine(f, 5),
        DirLine(f, 6, "include", None),
        IncludeLine(f, 7, ("a.conf", "b/*.conf")),
        DirLine(f, 8, "/opt/sp ace", None),
        DirLine(f, 9, "/z", "libc5\t"),  # the type is compared untrimmed: unknown
        DirLine(f, 10, "/y", " weird"),
        DirLine(f, 11, "", None),
        DirLine(f, 12, "a", None),  # the C string ends at NUL
        DirLine(f, 13, "/last", None),
    ]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\r\n\v\f#=/\0aciludenhwpINCLUDE") + ["é"]), max_size=80))
def test_grammar_is_total(text):
    """glibc never rejects a line: any text parses, one item at most per line."""
    lines = parse_conf_text(text, "f")
    assert len(lines) <= text.count("\n") + 1
    assert [x.line for x in lines] == sorted({x.line for x in lines})


def _tree(tmp_path, files: dict[str, str]) -> RootedWorld:
    for name, body in files.items():
        p = tmp_path / name.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return RootedWorld(str(tmp_path))


def test_includes_globs_relative_and_order(tmp_path):
    w = _tree(tmp_path, {
        "/etc/ld.so.conf": "/first\ninclude conf.d/*.conf /etc/extra.conf\n/last\n",
        "/etc/conf.d/b.conf": "/b\nhwcap x\n",
        "/etc/conf.d/a.conf": "/a=libc6\ninclude sub/*.conf\n",
        "/etc/conf.d/sub/s.conf": "/s\n",
        "/etc/extra.conf": "/extra=oops\n",
    })
    r = expand_conf(w, "/etc/ld.so.conf")
    assert [(d.path, d.file, d.line) for d in r.dirs] == [
        ("/first", "/etc/ld.so.conf", 1),
        ("/a", "/etc/conf.d/a.conf", 1),
        ("/s", "/etc/conf.d/sub/s.conf", 1),
        ("/b", "/etc/conf.d/b.conf", 1),
        ("/extra", "/etc/extra.conf", 1),
        ("/last", "/etc/ld.so.conf", 3),
    ]
    assert [(d.message, d.after) for d in r.diagnostics] == [
        ("/etc/conf.d/b.conf:2: hwcap directive ignored", 4),
        ("oops is not a known library type", 4),
    ]
    assert r.fatal is None


def test_relative_include_fatal_in_path_translation_mode(tmp_path):
    w = _tree(tmp_path, {"/etc/ld.so.conf": "/x\ninclude rel.conf\n", "/etc/rel.conf": "/y\n"})
    assert [d.path for d in expand_conf(w, "/etc/ld.so.conf").dirs] == ["/x", "/y"]
    r = expand_conf(w, "/etc/ld.so.conf", root_mode=True)
    assert r.fatal is not None and "need absolute file name" in r.fatal.message


def test_include_cycle_stops_and_names_the_line(tmp_path):
    w = _tree(tmp_path, {
        "/etc/ld.so.conf": "include c/*.conf\n",
        "/etc/c/x.conf": "include ../ld.so.conf\n/opt/a\ninclude x.conf\n",
    })
    r = expand_conf(w, "/etc/ld.so.conf")
    assert [d.path for d in r.dirs] == ["/opt/a"]
    cyc = [d.message for d in r.diagnostics if d.ldsim_only]
    assert cyc == [
        "/etc/c/x.conf:1: include cycle: /etc/c/../ld.so.conf is already being read",
        "/etc/c/x.conf:3: include cycle: /etc/c/x.conf is already being read",
    ]


def test_missing_and_directory_conf_are_silent(tmp_path):
    (tmp_path / "etc" / "d.conf").mkdir(parents=True)
    w = _tree(tmp_path, {"/etc/ld.so.conf": "include /etc/none.conf /etc/d.conf\n/z\n"})
    r = expand_conf(w, "/etc/ld.so.conf")
    assert [d.path for d in r.dirs] == ["/z"] and r.diagnostics == []
    assert expand_conf(w, "/etc/absent.conf").dirs == []
