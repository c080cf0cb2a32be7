"""materialize's symbol entries: `[attrs:]name[@@V|@V]`, attrs among data, weak, protected."""

from __future__ import annotations

import pytest

from ldsim.materialize import c_source, parse_symbol, symbol_attrs, version_script


def test_an_attribute_prefix_leaves_name_and_version_alone() -> None:
    assert parse_symbol("weak,data:var@@V2") == ("var", "V2", True)
    assert parse_symbol("protected:f") == ("f", None, False)
    assert symbol_attrs("weak,data:var@V1") == {"weak", "data"}
    assert symbol_attrs("f@V1") == frozenset()


def test_an_unknown_attribute_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_symbol("static:f")


def test_data_weak_and_protected_definitions_and_references() -> None:
    src = c_source(["weak,data:v@@V1", "protected:g"], ["data:x@V2", "weak:y"], "lib")
    assert '__asm__(".symver __ldsim_v_V1, v@@V1");\n__attribute__((weak)) int __ldsim_v_V1 = 1;' in src
    assert '__attribute__((visibility("protected"))) void g(void) {}' in src
    assert 'extern int x;\n__asm__(".symver x, x@V2");' in src
    assert "__attribute__((weak)) extern void y(void);" in src
    assert "__ldsim_sink += x; y();" in src
    assert version_script(["data:v@@V1"], ()) == "V1 { local: __ldsim_*; };\n"


def test_thread_local_and_wide_objects() -> None:
    src = c_source(["tls:t", "wide,data:w"], ["tls:u", "wide,data:x"], "lib")
    assert "__thread int t = 1;" in src and "long w[4] = {1};" in src
    assert "extern __thread int u;" in src and "extern long x[4];" in src
    assert "__ldsim_sink += u; __ldsim_sink += x[0];" in src
