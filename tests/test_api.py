# SPDX-License-Identifier: GPL-2.0-only
"""The front door: kho_replay.load/replay/compare return typed results and check names on entry."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kho_replay as kr
from kho_replay.replay.cli import app

B = Path(__file__).resolve().parent.parent / "traces/x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"


@pytest.mark.parametrize("spec", ["merged+exclude-hugetbl", "mergd", "inverted-ext+protect-scratch+bogus"])
def test_misspelt_strategy_is_an_error(spec: str) -> None:
    with pytest.raises(kr.KhoReplayError, match=r"no option|unknown strategy"):
        kr.replay("scenario:trace-b-mirror", spec)


@pytest.mark.parametrize("spec", ["hugetbl", "memfd", "memfd:64M:3K", "memfd:lots"])
def test_bad_preserve_spec_is_an_error_before_any_replay(spec: str) -> None:
    with pytest.raises(kr.KhoReplayError, match="--preserve"):
        kr.PreserveSpec.parse(spec)


def test_strategy_knobs_are_enums_checked_on_construction() -> None:
    from kho_replay.replay.strategies import get
    from kho_replay.replay.strategies.base import Strategy

    assert get("merged").gigantic_api is kr.GiganticApi.HUGETLB
    assert get("inverted-ext").scratch_only_ends is kr.BootPoint.MM_CORE_INIT_EARLY
    with pytest.raises(kr.KhoReplayError, match="extension 'exten' is not one of ext, scratch, reserve_busy"):
        Strategy(name="mine", extension="exten")


def test_run_outcomes_are_the_commands_outcomes() -> None:
    t = kr.load(B)
    r = kr.replay(t, "merged", kexec=True)
    assert r.outcome("cold") is r.cold and r.outcome(kr.Boot.KEXEC) is r.kexec
    assert r.cold.scratch.enabled and r.kexec is not None and r.kexec.kho_boot
    assert all(isinstance(q.subsystem, kr.Subsystem) for q in r.cold.requests)
    doc = json.loads(CliRunner().invoke(app, ["kho", str(B), "-s", "merged", "--kexec", "-f", "json"]).stdout)
    cold, kx = doc["outcomes"]
    assert cold["max_threads"] == r.cold.max_threads and kx["rsrv_kern"] == r.kexec.rsrv_kern
    assert [a["name"] for a in cold["scratch"]["areas"]] == [a.name for a in r.cold.scratch.areas]
    with pytest.raises(kr.KhoReplayError, match="no kexec boot"):
        kr.replay(t, "merged").outcome("kexec")


def test_compare_agrees_with_the_default_command() -> None:
    t = kr.load(B)
    c = kr.compare(kr.replay(t, kexec=True), kr.replay(t, "merged", kexec=True))
    r = CliRunner().invoke(app, ["compare", str(B), "-s", "merged", "--kexec", "-f", "json"])
    doc = json.loads(r.stdout)
    assert [x["verdict"] for x in doc["comparisons"]] == [c.cold.verdict(), c.kexec.verdict()]
    assert c.diverged and c.cold.first is not None and c.cold.first.kind is kr.ChangeKind.now_succeeds
    with pytest.raises(kr.KhoReplayError, match="same boots"):
        kr.compare(kr.replay(t), kr.replay(t, "merged", kexec=True))
