# SPDX-License-Identifier: GPL-2.0-only
"""Every design runs on every real boot we have, cold and as the KHO boot after it."""

from __future__ import annotations

import itertools

import pytest

from kho_replay.parsers import load
from kho_replay.replay.kho.boot import run_kexec
from kho_replay.replay.strategies import BUILTIN

from .conftest import BUNDLED, SHARED

_LOGS = ("console-kernel1.log", "console-kernel1.log.gz", "console.log", "console.log.gz")


def _boots() -> list[str]:
    found = {}
    for root in (SHARED, BUNDLED):
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            log = next((d / n for n in _LOGS if (d / n).exists()), None)
            if log is not None and d.name not in found:
                found[d.name] = str(log)
    return list(found.values())


BOOTS = _boots()
_cache: dict[str, object] = {}


def _trace(path: str):  # type: ignore[no-untyped-def]
    if path not in _cache:
        _cache[path] = load(path)
    return _cache[path]


@pytest.mark.skipif(not BOOTS, reason="no real traces available")
@pytest.mark.parametrize("path", BOOTS, ids=lambda p: p.split("/")[-2])
@pytest.mark.parametrize("name", list(BUILTIN))
def test_design_runs_cold_and_kexec(path, name):
    cold, kx = run_kexec(_trace(path), name)
    for o in (cold, kx):
        assert o.panic is None
        g = o.gigantic
        assert g.in_scratch <= g.allocated <= max(g.requested, g.allocated - g.adopted)
        assert len(g.addrs) == g.allocated == sum(c for _, c in g.per_node)
        assert all(a % (1 << 30) == 0 for a in g.addrs)
    # A KHO boot follows exactly the cold boots that reserved scratch, and inherits their areas.
    assert kx.kho_boot == cold.scratch.enabled
    if kx.kho_boot:
        assert kx.scratch.areas == cold.scratch.areas
        spans = sorted((b, b + s) for _, b, s in cold.scratch.areas)
        assert all(e0 <= b1 for (_, e0), (b1, _) in itertools.pairwise(spans))
        # Only designs that keep gigantic pages out of kho_scratch[] by construction are checked here.
        if name in ("merged", "reserve-early", "preserve-hugetlb"):
            assert kx.gigantic.in_scratch == 0
