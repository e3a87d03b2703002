# SPDX-License-Identifier: GPL-2.0-only
"""extract._merge(): console ops, probe ops and function hits interleaved as a sort by (time, console
first, index) puts them, whichever path it takes (runs in order, two ascending runs, a run out of order)."""

from __future__ import annotations

import bisect
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from kho_replay.parsers.tracedat.extract import _merge
from kho_replay.replay.ops import Context, KernelMessage, Reserve, Src, Trace

#: Few distinct times, so that ties between console and probe ops are common.
TIMES = st.one_of(st.none(), st.integers(0, 6).map(lambda t: t * 0.25))


def _reference(t: Trace, probe_ops: list, probe_ts: array, probe_obs: list) -> tuple[list, list]:
    """The ordering _merge() keeps, written as the plain sort it replaced."""
    if not probe_ops and not probe_obs:
        return list(t.ops), [(o.at, o.text) for o in t.observations]  # nothing to interleave: as they are
    keyed = []
    last = 0.0
    for i, op in enumerate(t.ops):
        s = op.src
        last = s.timestamp if s is not None and s.timestamp is not None else last
        keyed.append((last, 0, i, op))
    keyed += [(ts / 1e9, 1, k, op) for k, (ts, op) in enumerate(zip(probe_ts, probe_ops, strict=True))]
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    new_index = {k[2]: n for n, k in enumerate(keyed) if k[1] == 0}
    new_index[len(t.ops)] = len(keyed)
    times = [k[0] for k in keyed]
    ats = [new_index.get(o.at, len(keyed)) for o in t.observations]
    ats += [bisect.bisect_right(times, ts / 1e9) for ts, _, _ in probe_obs]
    texts = [*(o.text for o in t.observations), *(m.text for _, _, m in probe_obs)]
    # Observations sorted by their new index, stably: console ones first, then the hits.
    return [k[3] for k in keyed], sorted(zip(ats, texts, strict=True), key=lambda a: a[0])


@settings(max_examples=300, deadline=None)
@given(console=st.lists(TIMES, max_size=12), probes=st.lists(st.integers(0, 6), max_size=12),
       sort_probes=st.booleans(), sort_console=st.booleans(), hits=st.lists(st.integers(0, 7), max_size=5),
       console_obs=st.lists(st.integers(0, 12), max_size=4))
def test_merge_matches_the_sort(console: list, probes: list, sort_probes: bool, sort_console: bool,
                                hits: list, console_obs: list) -> None:
    if sort_console:
        known = sorted(c for c in console if c is not None)
        console = [None if c is None else known.pop(0) for c in console]
    if sort_probes:
        probes = sorted(probes)
    c_ops = tuple(Reserve(i, 1, src=Src("c", timestamp=ts)) for i, ts in enumerate(console))
    obs = tuple(KernelMessage(at=min(a, len(c_ops)), kind="x", text=str(k)) for k, a in enumerate(console_obs))
    t = Trace(Context(source="c"), c_ops, obs)
    p_ops = [Reserve(100 + k, 1, src=Src("p")) for k in range(len(probes))]
    p_ts = array("q", [p * 250_000_000 for p in probes])
    p_obs = [(h * 125_000_000, k, KernelMessage(at=0, kind="function", text=f"hit {k}")) for k, h in enumerate(hits)]
    want_ops, want_obs = _reference(t, p_ops, p_ts, p_obs)
    ops, got_obs = _merge(t, p_ops, p_ts, p_obs)
    assert [op.base for op in ops] == [op.base for op in want_ops]
    assert [(o.at, o.text) for o in got_obs] == want_obs
