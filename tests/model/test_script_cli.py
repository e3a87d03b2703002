# SPDX-License-Identifier: GPL-2.0-only
"""The op-script format round-trips, and ``kho-replay run`` behaves as an interface."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kho_replay.replay.cli import app
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    ALLOC_APIS,
    FAILED,
    OP_TYPES,
    PHASES,
    Add,
    Alloc,
    AllowResize,
    CapMemoryRange,
    Clear,
    EnforceMemoryLimit,
    Free,
    KhoExtendScratch,
    KhoScratchArea,
    KhoScratchOnly,
    Mark,
    MirroredKernelcore,
    MovableNode,
    Phase,
    Remove,
    Reserve,
    ReserveKern,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    TrimMemory,
    format_op,
    format_script,
    parse_script,
)

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------ round trip

u64 = st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 1 << 34).map(lambda x: x << 10),
                st.sampled_from([0, 1, 4096, 2**64 - 1, 1 << 30]))
nids = st.one_of(st.none(), st.integers(-1, 1023))
single_flags = st.sampled_from([f for f in Flag if f.value])
any_flags = st.builds(lambda bits: Flag(bits), st.integers(0, 0x7FF))  # unknown bits print as hex
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789+/.x", min_size=1, max_size=20)
callers = st.one_of(st.none(), word, st.builds(lambda a, b: f"{a} {b}", word, word))
inferred = st.one_of(st.none(), st.just(""), word, st.builds(lambda a, b: f"{a} # {b}", word, word))


def _common(draw):
    return {"caller": draw(callers), "inferred": draw(inferred)}


@st.composite
def alloc_ops(draw):
    api = draw(st.sampled_from(sorted(ALLOC_APIS)))
    ok = ALLOC_APIS[api]
    kw = {}
    if "align" in ok:
        kw["align"] = draw(st.one_of(st.none(), u64))
    if "nid" in ok:
        kw["nid"] = draw(nids)
    if "min" in ok:
        kw["min_addr"] = draw(st.one_of(st.none(), u64))
    if "max" in ok:
        kw["max_addr"] = draw(st.one_of(st.none(), u64))
    if "exact" in ok:
        kw["exact"] = draw(st.booleans())
    kw["expect"] = draw(st.one_of(st.none(), st.just(FAILED), u64))
    kw["res_nid"] = draw(st.one_of(st.none(), st.integers(-1, 1023)))
    kw["res_flags"] = draw(st.one_of(st.none(), any_flags))
    return Alloc(api, draw(u64), **kw, **_common(draw))


@st.composite
def ops(draw):
    kind = draw(st.sampled_from(sorted(OP_TYPES)))
    c = _common(draw)
    cls = OP_TYPES[kind]
    if cls is Add:
        return Add(draw(u64), draw(u64), draw(nids), draw(any_flags), **c)
    if cls is Reserve:
        return Reserve(draw(u64), draw(u64), draw(nids), draw(st.one_of(st.none(), any_flags)), **c)
    if cls is ReserveKern:
        return ReserveKern(draw(u64), draw(u64), draw(nids), **c)
    if cls in (Remove, Free, CapMemoryRange, KhoScratchArea):
        return cls(draw(u64), draw(u64), **c)
    if cls is KhoExtendScratch:
        return KhoExtendScratch(tuple(draw(st.lists(u64, max_size=4))), **c)
    if cls in (Mark, Clear):
        return cls(draw(single_flags), draw(u64), draw(u64), **c)
    if cls is SetNode:
        return SetNode(draw(u64), draw(u64), draw(st.integers(-1, 1023)), draw(st.booleans()), **c)
    if cls in (SetCurrentLimit,):
        return cls(draw(u64), **c)
    if cls in (TrimMemory, EnforceMemoryLimit):
        return cls(draw(u64), **c)
    if cls in (SetBottomUp, KhoScratchOnly, MovableNode, MirroredKernelcore):
        return cls(draw(st.booleans()), **c)
    if cls is AllowResize:
        return AllowResize(**c)
    if cls is Phase:
        return Phase(draw(st.sampled_from(sorted(PHASES))), **c)
    assert cls is Alloc
    return draw(alloc_ops())


def test_every_op_kind_is_generated():
    assert set(OP_TYPES) == {
        "add", "remove", "reserve", "reserve_kern", "free", "mark", "clear", "set_node",
        "set_current_limit", "set_bottom_up", "allow_resize", "kho_scratch_only", "movable_node",
        "mirrored_kernelcore", "trim_memory", "enforce_memory_limit", "cap_memory_range", "phase", "alloc",
        "kho_scratch_area", "kho_extend_scratch",
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(ops(), max_size=12))
def test_script_round_trip(stream):
    text = format_script(stream)
    assert parse_script(text) == tuple(stream)
    # and formatting is a fixed point
    assert format_script(parse_script(text)) == text


def _read_both_ways(line: str) -> tuple[object, object]:
    """parse_op() on *line* with its fast path and without: the op, or the error's text."""
    from kho_replay.replay import ops as ops_module

    def read() -> object:
        try:
            op = ops_module.parse_op(line)
        except (ValueError, KeyError) as e:
            return f"{type(e).__name__}: {e}"
        return op if op is None else (op, op.caller, op.inferred)

    fast = read()
    saved = ops_module._alloc_fast
    ops_module._alloc_fast = lambda *args: None
    try:
        return fast, read()
    finally:
        ops_module._alloc_fast = saved


def _mutated_line(op, rng, how: str) -> str:
    """*op*'s line, its words shuffled, repeated, replaced by garbage, ... as *how* says."""
    words = format_op(op).split("  # ")[0].split()
    head = 2 if words[0] == "alloc" else 1
    rest = words[head:]
    if how == "shuffle":
        rng.shuffle(rest)
    elif how == "twice" and rest:
        rest.insert(rng.randrange(len(rest) + 1), rng.choice(rest))
    elif how == "garbage" and rest:
        rest[rng.randrange(len(rest))] = rng.choice(["", "=", "x=1", "size=", "0x", "12Q", "exact", "reserved",
                                                     "nid=zz", "flags=bogus", "-1", "fail", "rsrv_kern"])
    elif how == "bare":
        rest.insert(rng.randrange(len(rest) + 1), rng.choice(["exact", "reserved"]))
    elif how == "drop" and rest:
        del rest[rng.randrange(len(rest))]
    sep = rng.choice([" ", "  ", "\t"]) if how == "spaces" else " "
    line = sep.join(words[:head] + rest)
    if op.caller:
        line += f" caller={op.caller}"
    return line


HOW = st.sampled_from(["as is", "shuffle", "twice", "garbage", "bare", "drop", "spaces"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(alloc_ops(), ops()), st.randoms(use_true_random=False), HOW)
def test_fast_path_reads_every_line_as_the_general_way(op, rng, how):
    line = _mutated_line(op, rng, how)
    fast, general = _read_both_ways(line)
    assert fast == general, line


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(alloc_ops(), ops()), HOW), max_size=6), st.randoms(use_true_random=False))
def test_script_reader_reads_every_line_as_parse_op(lines, rng):
    """parse_script()'s inline reading of common lines gives what iter_script() (parse_op per line) gives:
    the same ops from the same lines, or the same error on the same line."""
    from kho_replay.replay.errors import FormatError
    from kho_replay.replay.ops import iter_script

    body = "\n".join(_mutated_line(op, rng, how) for op, how in lines)
    # Every line twice: the second reading of an alloc line is the one the reader remembered.
    text = f"{body}\n{body}\n\n  # end\n"

    def read(parse):
        try:
            got = parse()
        except FormatError as e:
            return str(e)
        return [(op, op.caller, op.inferred, op.src) for op in got]

    assert read(lambda: parse_script(text, "s.ops")) == read(lambda: tuple(iter_script(text.splitlines(), "s.ops")))


def test_parsed_real_trace_round_trips():
    from kho_replay.parsers import load

    t = load(REPO / "traces" / "x86_64-debian-7.2.13-4G" / "console.log")
    assert any(op.inferred for op in t.ops) and any("." in (op.caller or "") for op in t.ops)
    assert parse_script(format_script(t.ops)) == t.ops


def test_round_trip_keeps_src_out_of_equality():
    (op,) = parse_script("reserve 0x1000 4K flags=rsrv_kern", "x.ops")
    assert str(op.src) == "x.ops:1"
    assert op == Reserve(0x1000, 4096, None, Flag.MEMBLOCK_RSRV_KERN)


# ------------------------------------------------------------------ kho-replay run

runner = CliRunner()

SMALL = """\
add 0x100000 0x3ff00000
reserve 0x1000000 16M
alloc memblock_alloc size=4K align=4K
alloc memblock_alloc size=2G align=4K
"""


def _write(tmp_path, text, name="s.ops"):
    p = tmp_path / name
    p.write_text(text) if isinstance(text, str) else p.write_bytes(text)
    return str(p)


def test_run_json_shape_and_values(tmp_path):
    r = runner.invoke(app, ["run", _write(tmp_path, SMALL), "--kernel", "7.3", "--arch", "harness",
                            "--format", "json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"schema_version", "allocations", "memory", "reserved", "messages", "panic"}
    # top-down, page aligned, at the top of memory; the 2 GiB request cannot fit in 1 GiB
    assert [a["addr"] for a in doc["allocations"]] == ["0x000000003ffff000", None]
    assert doc["memory"] == [{"base": "0x0000000000100000", "size": 0x3ff00000, "flags": [], "nid": 16}]
    assert doc["reserved"] == [
        {"base": "0x0000000001000000", "size": 0x1000000, "flags": [], "nid": -1},
        {"base": "0x000000003ffff000", "size": 0x1000, "flags": ["MEMBLOCK_RSRV_KERN"], "nid": -1},
    ]
    assert isinstance(doc["messages"], list)


def test_run_example_doubling_script():
    """traces/examples/doubling.ops on x86_64 7.3, each address derived by hand:

    * 200 reservations double the reserved array when the 129th region arrives;
      top-down above the pending range under current_limit 0x140000000 -> 0x13fffe000;
    * alloc_try_nid(64, 64, nid 0) (ACCESSIBLE -> current_limit): just below it;
    * phys_alloc_range(2M, 2M, max=ANYWHERE): not limited by current_limit, top 2M of
      RAM is taken by the array, so the next 2M block down;
    * alloc_low(28K): top of the memory below 4 GiB, [0x100000, 0xbffe0000);
    * alloc(1G, 1G): the only free 1 GiB-aligned GiB under the limit.
    """
    r = runner.invoke(app, ["run", str(REPO / "traces/examples/doubling.ops"), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [int(a["addr"], 16) for a in doc["allocations"]] == [0x13fffdfc0, 0x13fc00000, 0xbffd9000, 0x40000000]
    arr = [x for x in doc["reserved"] if x["base"] == "0x000000013fffe000"]
    assert arr == [{"base": "0x000000013fffe000", "size": 0x2000, "flags": ["MEMBLOCK_RSRV_KERN"], "nid": -1}]
    assert "memblock: reserved is doubled to 256 at [0x000000013fffe000-0x000000013ffff7ff]" in doc["messages"]


def test_run_text_format_and_output_file(tmp_path):
    out = tmp_path / "out.txt"
    r = runner.invoke(app, ["run", _write(tmp_path, SMALL), "--arch", "harness", "-o", str(out)])
    assert r.exit_code == 0 and r.stdout == ""
    text = out.read_text()
    assert "alloc memblock_alloc size=4K align=4K  -> 0x000000003ffff000" in text
    assert "alloc memblock_alloc size=2G align=4K  -> failed" in text
    assert "MEMBLOCK configuration:" in text
    assert " reserved.cnt  = 0x2" in text


def test_run_panic_is_reported(tmp_path):
    script = "".join(f"reserve {0x10000000 + i * 0x2000:#x} 4K\n" for i in range(130))
    r = runner.invoke(app, ["run", _write(tmp_path, script), "--arch", "harness", "--format", "json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["panic"] == "memblock: cannot resize reserved array"
    assert len(doc["reserved"]) == 128
    r = runner.invoke(app, ["run", _write(tmp_path, script), "--arch", "harness"])
    assert "Kernel panic - not syncing: memblock: cannot resize reserved array" in r.stdout


def _one_line_error(r):
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("kho-replay: error: ")
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("add 0x1000 4K\nbogus 1 2\n", ":2:", "unknown op 'bogus'"),
        ("reserve 0x1000\n", ":1:", "reserve takes 2 positional argument(s), got 1"),
        ("reserve 0xZZ 4K\n", ":1:", "not a number: '0xZZ'"),
        ("\n\nmark nomap|mirror 0 4K\n", ":3:", "mark takes exactly one flag"),
        ("alloc memblock_alloc align=4K\n", ":1:", "alloc needs size="),
        ("add 0 1G\nalloc memblock_alloc\n", ":2:", "alloc needs size="),
        ("alloc memblock_alloc size=4K size=8K\n", ":1:", "size= given twice"),
        ("alloc memblock_alloc size=4K nid=0\n", ":1:", "unexpected nid="),
        ("alloc memblock_frob size=4K\n", ":1:", "unknown allocation API 'memblock_frob'"),
        ("add 0 4K flags=sparkly\n", ":1:", "unknown memblock flag 'sparkly'"),
        ("phase lunch\n", ":1:", "unknown phase 'lunch'"),
    ],
)
def test_run_bad_script(tmp_path, text, where, what):
    path = _write(tmp_path, text)
    line = _one_line_error(runner.invoke(app, ["run", path]))
    assert f"{path}{where}" in line
    assert what in line


def test_run_missing_file(tmp_path):
    line = _one_line_error(runner.invoke(app, ["run", str(tmp_path / "nope.ops")]))
    assert "nope.ops" in line


def test_run_binary_file(tmp_path):
    path = _write(tmp_path, b"add 0 4K\n\xff\xfe\n", "bin.ops")
    line = _one_line_error(runner.invoke(app, ["run", path]))
    assert f"{path}:2: not valid UTF-8 text" in line


@pytest.mark.parametrize(("opt", "value", "what"), [
    ("--kernel", "4.19", "kernel 4.19 is older than every profile: replayed with 5.4's behaviours"),
    ("--arch", "sparc", "sparc replays on a generic arch profile: PAGE_SIZE 4096, SMP_CACHE_BYTES 32, bottom-up"),
    ("--arch", "frob", "frob replays on a generic arch profile: PAGE_SIZE 4096, SMP_CACHE_BYTES 64, top-down")])
def test_run_old_kernel_or_other_arch_is_one_warning(tmp_path, opt, value, what):
    """Issue 12: an unknown release or arch is one warning naming the assumption, not a refusal."""
    r = runner.invoke(app, ["run", _write(tmp_path, SMALL), opt, value])
    assert r.exit_code == 0
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("kho-replay: warning: ")]
    assert len(warnings) == 1 and what in warnings[0]


def test_run_bad_arch_override_is_an_error(tmp_path):
    line = _one_line_error(runner.invoke(app, ["run", _write(tmp_path, SMALL), "--arch", "mips,page=huge"]))
    assert "'huge' is not a size" in line


def test_run_hugetlb_on_7_2_is_an_error(tmp_path):
    path = _write(tmp_path, "add 0x40000000 1G\nalloc memblock_alloc_hugetlb size=2M\n")
    line = _one_line_error(runner.invoke(app, ["run", path, "--kernel", "7.2"]))
    assert "op 1" in line and "does not exist in 7.2" in line


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("kho-replay ")


@pytest.mark.parametrize(("arch", "smp"), [("x86_64", 64), ("amd64", 64), ("x86-64", 64), ("arm64", 64),
                                           ("aarch64", 64), ("harness", 32)])
def test_run_arch_names_and_smp_cache_bytes(tmp_path, arch, smp):
    """align 0 means SMP_CACHE_BYTES of the arch (64 on x86/arm64, 32 in tools/testing/memblock)."""
    path = _write(tmp_path, "add 0x100000 1M\nalloc memblock_alloc size=24 align=0\n")
    r = runner.invoke(app, ["run", path, "--arch", arch, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert [a["addr"] for a in json.loads(r.stdout)["allocations"]] == [f"{0x200000 - smp:#018x}"]


_NUMBERISH = st.text(alphabet="0123456789abcdefABCDEFxXkKmMgGtT_-+ bo\u0663", max_size=14)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_NUMBERISH, _NUMBERISH.map(lambda t: "0x" + t),
                 st.integers(0, (1 << 64) - 1).map(hex)))
def test_address_reader_reads_as_parse_number(text):
    """The op script's address fast path (``0x`` hex by one int()) takes and refuses what parse_number() does."""
    from kho_replay.replay.ops import _parse_addr, parse_number

    def read(parse):
        try:
            return parse(text)
        except ValueError as e:
            return str(e)

    assert read(_parse_addr) == read(parse_number)
