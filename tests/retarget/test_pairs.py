# SPDX-License-Identifier: GPL-2.0-only
"""The measure of issue 16: every ordered pair of boots of one build, target stripped, retargeted from the other.

With the target's /proc/iomem: KHO scratch on/off exact, scratch sizes exact,
gigantic pages at the kernel's addresses, every printed address matched.
Without it: KHO on/off exact (sizes move with the unknown KASLR slot).
"""

from __future__ import annotations

import itertools

import pytest
from conftest import DEB72, KHO72, KHO73, trace_dir

from kho_replay.parsers import read_text
from kho_replay.parsers.plain import strip_debug
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.ops import format_script
from kho_replay.replay.retarget import _cold_log, load_template, retarget_files
from kho_replay.replay.retarget.pairs import measure_pair

PAIRS = [(t, h, None) for t, h in itertools.permutations(KHO72, 2)] + [
    (t, h, True) for t, h in itertools.permutations(DEB72, 2)]
PAIRS73 = [(t, h, None) for t, h in itertools.permutations(KHO73, 2)]


def _short(name: str) -> str:
    return name.split("-")[1] + "-" + name.split("-", 3)[-1][:14]


@pytest.mark.parametrize(("template", "target", "kho"), PAIRS + PAIRS73,
                         ids=[f"{_short(p[0])}->{_short(p[1])}" for p in PAIRS] +
                             [f"{_short(p[0])}->{_short(p[1])}" for p in PAIRS73])
def test_pair_exact_with_iomem(template: str, target: str, kho: bool | None, tmp_path) -> None:
    r = measure_pair(trace_dir(template), trace_dir(target), iomem=True, kho=kho, workdir=tmp_path)
    assert r.kho_ok, (r.kho_pred, r.kho_real)
    assert r.scratch_delta == 0
    assert r.pages_ok, ([hex(a) for a in r.pages_pred], [hex(a) for a in r.pages_real])
    assert r.printed_matched == r.printed_total > 10


@pytest.mark.parametrize(("template", "target"), [p[:2] for p in PAIRS[:12]])
def test_pair_kho_on_off_without_iomem(template: str, target: str, tmp_path) -> None:
    r = measure_pair(trace_dir(template), trace_dir(target), iomem=False, workdir=tmp_path)
    assert r.kho_ok
    assert any("KASLR" in a for a in r.assumptions)


@pytest.mark.parametrize("name", [KHO72[1], DEB72[2], DEB72[4]])
def test_retarget_onto_itself_reproduces_the_template(name: str, tmp_path) -> None:
    """The template's own plain log and iomem give back the template's ops, op for op."""
    d = trace_dir(name)
    plain = tmp_path / "dmesg.txt"
    plain.write_text(strip_debug(read_text(_cold_log(d))))
    t = load_template(d)
    r = retarget_files(t, plain, iomem="auto")

    def bare(ops):
        return [line.split("  #")[0].split(" expect=")[0].split(" caller=")[0]
                for line in format_script(ops).splitlines()]

    assert sorted(bare(r.trace.ops)) == sorted(bare(t.trace.ops))
    v = validate(r.trace)
    assert v.ok and v.allocations >= 2


def test_every_op_names_its_origin(tmp_path) -> None:
    d = trace_dir(KHO72[0])
    plain = tmp_path / "dmesg.txt"
    plain.write_text(strip_debug(read_text(_cold_log(trace_dir(KHO72[2])))))
    r = retarget_files(d, plain)
    assert all("retarget: " in (op.inferred or "") for op in r.trace.ops)
    kinds = dict(r.origins)
    assert kinds["host"] >= 10 and kinds["formula"] >= 64 and kinds["template"] >= 50
    e820 = [op for op in r.trace.ops if op.keyword == "add"]
    assert e820[-1].base + e820[-1].size == 0x340000000 and "e820 RAM" in e820[-1].inferred


def test_retargeted_script_reads_back_op_for_op(tmp_path) -> None:
    from kho_replay.parsers import load
    from kho_replay.parsers.retargeted import format_retargeted

    plain = tmp_path / "dmesg.txt"
    plain.write_text(strip_debug(read_text(_cold_log(trace_dir(DEB72[4])))))
    r = retarget_files(trace_dir(DEB72[0]), plain, iomem=trace_dir(DEB72[4]) / "iomem.txt")
    out = tmp_path / "host.trace"
    out.write_text(format_retargeted(r.trace))
    back = load(out)
    assert back.ops == r.trace.ops and back.observations == r.trace.observations
    assert back.context.nodes == r.trace.context.nodes == ((0, 0x1000, 0x140000000), (1, 0x140000000, 0x240000000))
