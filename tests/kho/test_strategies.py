# SPDX-License-Identifier: GPL-2.0-only
"""The strategy registry, third-party entry points, options, and the CLI around them."""

from __future__ import annotations

import importlib.metadata as md
import sys
import types
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from kho_replay.replay import strategies
from kho_replay.replay.cli import app
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.kho.boot import run_kexec
from kho_replay.replay.kho.scenarios import trace_b_mirror
from kho_replay.replay.strategies import BUILTIN, ENTRY_POINT_GROUP, Strategy, get

from .conftest import B, G, trace_dir

EXPECTED = ["baseline", "ext-scratch", "hugetlb-alloc", "merged", "reserve-early", "preserve-hugetlb",
            "inverted-ext", "scratch-off-early"]


def test_builtin_registry():
    assert list(BUILTIN) == EXPECTED
    assert all(s.description and s.source for s in BUILTIN.values())


def _fake_entry_points(monkeypatch, value: str):
    mod = types.ModuleType("kho_fake_strategy")
    mod.STRATEGY = Strategy(name="always-merged-api", description="what-if: 7.3 allocator only",
                            source="test", gigantic_api="hugetlb")
    monkeypatch.setitem(sys.modules, "kho_fake_strategy", mod)
    ep = md.EntryPoint(name="fake", value=value, group=ENTRY_POINT_GROUP)

    def fake(group=None, **kw):
        return md.EntryPoints([ep]) if group == ENTRY_POINT_GROUP else md.EntryPoints([])

    monkeypatch.setattr(strategies, "entry_points", fake)


def test_third_party_strategy_registers_and_runs(monkeypatch):
    _fake_entry_points(monkeypatch, "kho_fake_strategy:STRATEGY")
    assert "always-merged-api" in strategies.available()
    s = get("always-merged-api")
    # A 7.2 first kernel with 7.3's allocator only: sizing still counts hugetlb, so the mirror of B fails.
    cold, _ = run_kexec(trace_b_mirror(), s)
    assert not cold.scratch.enabled and cold.scratch.failed == "global"


def test_third_party_clash_and_garbage(monkeypatch):
    mod = types.ModuleType("kho_bad")
    mod.X = 3
    mod.DUP = replace(BUILTIN["merged"])
    monkeypatch.setitem(sys.modules, "kho_bad", mod)
    for value in ("kho_bad:X", "kho_bad:DUP"):
        ep = md.EntryPoint(name="bad", value=value, group=ENTRY_POINT_GROUP)
        monkeypatch.setattr(strategies, "entry_points", lambda group=None, ep=ep, **kw: md.EntryPoints([ep]))
        with pytest.raises(KhoReplayError):
            strategies.available()


def test_options():
    assert get("inverted-ext", ("protect-scratch",)).gigantic_api == "hugetlb"
    assert get("inverted-ext").gigantic_api == "trace"
    with pytest.raises(KhoReplayError, match="no option"):
        get("merged", ("protect-scratch",))
    with pytest.raises(KhoReplayError, match="unknown strategy"):
        get("nope")


def test_protect_scratch_keeps_pages_out_of_scratch():
    from .conftest import log
    t = log(G, 1)
    _, plain = run_kexec(t, "inverted-ext")
    _, prot = run_kexec(t, "inverted-ext", options=("protect-scratch",))
    assert plain.gigantic.in_scratch > 0
    assert prot.gigantic.in_scratch == 0


runner = CliRunner()


def test_cli_strategies_lists_every_design():
    r = runner.invoke(app, ["strategies"], terminal_width=200)
    assert r.exit_code == 0
    names = [line.split()[0] for line in r.stdout.splitlines() if line and not line.startswith(" ")]
    assert names == EXPECTED


def test_cli_kho_on_b():
    d = trace_dir(B)
    r = runner.invoke(app, ["kho", str(d), "-s", "baseline", "-s", "merged"], terminal_width=200)
    assert r.exit_code == 0
    assert "  | KHO: Failed to reserve global scratch buffer" in r.stdout
    assert "scratch: not reserved (failed: global)" in r.stdout
    assert r.stdout.count("scratch: reserved") == 1


def test_cli_unknown_strategy_is_one_line_exit_2():
    d = trace_dir(B)
    r = runner.invoke(app, ["kho", str(d), "-s", "nope"], terminal_width=200)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("kho-replay: error: unknown strategy 'nope'")


def test_exclude_hugetlb_option_lets_alternatives_reserve_scratch_on_b():
    t = trace_b_mirror()
    for name in ("reserve-early", "inverted-ext", "scratch-off-early"):
        assert not run_kexec(t, name)[0].scratch.enabled          # the proposal alone keeps A0
        cold, kx = run_kexec(t, name, options=("exclude-hugetlb",))
        assert cold.scratch.enabled and kx.kho_boot
        assert kx.gigantic.allocated == 2


def test_cli_strategy_plus_option_in_matrix():
    d = trace_dir(B)
    r = runner.invoke(app, ["matrix", str(d), "-s", "baseline", "-s", "reserve-early+exclude-hugetlb"],
                      terminal_width=250)
    assert r.exit_code == 0
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert rows[0][1:3] == ["baseline", "FAIL"] and rows[1][1:3] == ["reserve-early+exclude-hugetlb", "yes"]


def test_cli_kho_json_and_scenarios():
    import json

    r = runner.invoke(app, ["kho", "scenario:trace-b-mirror", "-s", "merged", "--kexec", "-f", "json"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    cold, kx = doc["outcomes"]
    assert doc["schema_version"] == 2 and (cold["boot"], kx["boot"]) == ("cold", "kexec")
    assert [a["name"] for a in cold["scratch"]["areas"]] == ["lowmem", "global", "node0"]
    assert all(a.startswith("0x") for a in kx["gigantic"]["addrs"]) and kx["gigantic"]["in_scratch"] == 0
    bad = runner.invoke(app, ["kho", "scenario:nope"])
    assert bad.exit_code == 2 and "unknown scenario 'nope'" in bad.stderr
