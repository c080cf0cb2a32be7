"""Properties of `why` and `tree` over generated worlds (virtual filesystem, fast).

* tree: its loaded / not-found edges are exactly the objects of the trace-mode listing.
* why: the object reported found is the one loaded; and "shadowed alternatives" mean what they say —
  with the winning file removed, the same request loads the first alternative marked "would load".
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from ldsim.config import Invocation
from ldsim.glibc import DEBIAN_X86_64
from ldsim.hwcaps import cpu_for_level
from ldsim.linkmap import FileCache, Kind
from ldsim.render import tree
from ldsim.scenario import VROOT, fmt, virtual_world
from ldsim.testing import worlds
from ldsim.why import explain, simulate

pytestmark = pytest.mark.property
WORLDS = int(os.environ.get("LDSIM_PROPERTY_EXAMPLES", "200"))
SETTINGS = settings(max_examples=WORLDS, deadline=None, suppress_health_check=list(HealthCheck))


def _run(sc, world=None):
    w = world or virtual_world(sc)
    inv = Invocation(env=tuple((k, fmt(v, VROOT)) for k, v in sc.env.items()), cwd=w.cwd, pid=1,
                     cpu=cpu_for_level("x86-64-v3"), profile=DEBIAN_X86_64)
    return w, simulate(w, inv, FileCache(), f"{VROOT}/bin/prog", direct=True)


def _edges(node) -> Counter:
    c: Counter = Counter()
    for ch in node.children:
        if ch.status in ("loaded", "not found"):
            c[(ch.name, ch.path)] += 1
        c += _edges(ch)
    return c


@SETTINGS
@given(worlds())
def test_tree_edges_are_the_listing(sc) -> None:
    _, proc = _run(sc)
    listing = Counter((m.names[0], None if m.faked else m.name) for m in proc.objects
                      if m.kind is Kind.LIB)
    assert _edges(tree.build(proc)) == listing


@SETTINGS
@given(worlds())
def test_removing_the_winner_loads_the_first_shadowed_alternative(sc) -> None:
    world, proc = _run(sc)
    for m in [o for o in proc.objects if o.kind is Kind.LIB and not o.faked]:
        rep = explain(proc, m.names[0])
        found = next((f for f in rep.found if f.target is m), None)
        assert found is not None, m.names[0]
        alts = [t.path for t in found.shadowed if t.outcome.endswith("would load")]
        if not alts or found.request.search is None or found.request.reused:
            continue
        w2 = virtual_world(sc)
        del w2.files[w2.realpath(m.name)]
        _, proc2 = _run(sc, w2)
        again = next(r for r in proc2.result.requests
                     if r.name == found.request.name and r.loader is not None
                     and (r.loader.name or "") == (found.request.loader.name or ""))
        if again.result is not None and again.reused is None and not again.result.faked:
            assert again.result.name == alts[0], (m.name, alts)
