# SPDX-License-Identifier: GPL-2.0-only
"""parse_script(format_script(ops)) == ops for random op streams, and for real parsed traces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kho_replay.parsers.console import read_console
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    ALLOC_APIS,
    FAILED,
    PHASES,
    Add,
    Alloc,
    AllowResize,
    Clear,
    Free,
    KhoScratchOnly,
    Mark,
    Phase,
    Remove,
    Reserve,
    ReserveKern,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    TrimMemory,
    format_script,
    parse_script,
)

from .conftest import TRACES

addr = st.integers(0, (1 << 64) - 1)
size = st.integers(0, (1 << 64) - 1)
nid = st.integers(-1, 1023)
one_flag = st.sampled_from([f for f in Flag if f.value])
flags = st.builds(Flag, st.integers(0, 0x1FF))
caller = st.none() | st.from_regex(r"[a-z_][a-z0-9_.]{0,20}\+0x[0-9a-f]{1,4}/0x[0-9a-f]{1,4}", fullmatch=True)
inferred = st.none() | st.from_regex(r"[A-Za-z0-9_(), .:=-]{1,40}", fullmatch=True).map(str.strip).filter(bool)
common = {"caller": caller, "inferred": inferred}


@st.composite
def allocs(draw: st.DrawFn) -> Alloc:
    api = draw(st.sampled_from(sorted(ALLOC_APIS)))
    ok = ALLOC_APIS[api]
    return Alloc(
        api, draw(size),
        align=draw(st.none() | size) if "align" in ok else None,
        nid=draw(st.none() | nid) if "nid" in ok else None,
        min_addr=draw(st.none() | addr) if "min" in ok else None,
        max_addr=draw(st.none() | addr) if "max" in ok else None,
        exact=draw(st.booleans()) if "exact" in ok else False,
        expect=draw(st.none() | st.just(FAILED) | addr),
        caller=draw(caller), inferred=draw(inferred),
    )


ops = st.one_of(
    st.builds(Add, addr, size, st.none() | nid, flags, **common),
    st.builds(Remove, addr, size, **common),
    st.builds(Reserve, addr, size, st.none() | nid, st.none() | flags, **common),
    st.builds(ReserveKern, addr, size, st.none() | nid, **common),
    st.builds(Free, addr, size, **common),
    st.builds(Mark, one_flag, addr, size, **common),
    st.builds(Clear, one_flag, addr, size, **common),
    st.builds(SetNode, addr, size, nid, st.booleans(), **common),
    st.builds(SetCurrentLimit, addr, **common),
    st.builds(SetBottomUp, st.booleans(), **common),
    st.builds(AllowResize, **common),
    st.builds(KhoScratchOnly, st.booleans(), **common),
    st.builds(TrimMemory, size, **common),
    st.builds(Phase, st.sampled_from(sorted(PHASES)), **common),
    allocs(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=30))
def test_roundtrip_random_streams(stream: list) -> None:
    assert parse_script(format_script(stream)) == tuple(stream)


def test_roundtrip_parsed_trace() -> None:
    t = read_console(TRACES / "x86_64-debian-7.2.13-4G" / "console.log")
    assert parse_script(format_script(t.ops)) == t.ops
