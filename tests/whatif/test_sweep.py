# SPDX-License-Identifier: GPL-2.0-only
"""Sweeps: rows equal one-off replays, same bytes whatever the parallelism, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.replay.cli import app, dispatch
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.kho.boot import run_cold
from kho_replay.replay.whatif import move_image, sweep, trace_slots
from kho_replay.replay.whatif.kaslr import sample_slots
from kho_replay.replay.whatif.report import sweep_csv, sweep_json
from kho_replay.replay.whatif.sweep import GRID_LIMIT, points

from .conftest import A72, B72, B73, log, trace_dir

runner = CliRunner()


def _cli(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, dispatch([str(a) for a in args]), env={"COLUMNS": "200"})


def test_rows_are_the_one_off_replays() -> None:
    t = log(B72)
    res = sweep(t, strategies=["baseline", "merged"], kaslr=6, seed=2, jobs=1)
    slots = sample_slots(trace_slots(t), 6, seed=2)
    assert [r.image_at for r in res.rows] == [a for a in slots for _ in range(2)]
    for r in res.rows:
        o = run_cold(move_image(t, r.image_at), r.strategy)
        assert (r.scratch_reserved, r.lowmem, r.global_, r.gigantic_addrs, r.max_threads) == (
            o.scratch.enabled, o.scratch.lowmem, o.scratch.global_, tuple(o.gigantic.addrs), o.max_threads)


def test_same_bytes_for_jobs_1_2_and_a_dask_local_cluster() -> None:
    t = log(B72)
    kw = {"strategies": ["baseline", "merged"], "kaslr": 8, "seed": 1, "sets": {"hugepages": ["1", "2"]},
          "kexec": True}
    one = sweep(t, jobs=1, **kw)
    assert len(one.rows) == 2 * 8 * 2 * 2
    text = sweep_json(one)
    assert sweep_json(sweep(t, jobs=2, **kw)) == text
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert sweep_json(sweep(t, scheduler=cluster.scheduler_address, **kw)) == text
    assert sweep_csv(one).count("\n") == len(one.rows) + 1


def test_slots_follow_hugepages_in_the_grid() -> None:
    # hugepages= changes the blocks the decompressor keeps free, so each value has its own slot set.
    t = log(B72)
    grid = points(t, strategies=["merged"], kaslr="all", sets={"hugepages": ["0", "4"]})
    by = {v: {p.image_at for p in grid if p.sets == (("hugepages", v),)} for v in ("0", "4")}
    assert len(by["0"]) > len(by["4"]) and 0x141000000 in by["0"] - by["4"]


def test_grid_limit_needs_yes() -> None:
    t = log(A72)
    many = {"kho_scratch": [f"{n}%" for n in range(1, 60)]}
    with pytest.raises(KhoReplayError, match=f"more than {GRID_LIMIT:,}"):
        sweep(t, kaslr="all", sets=many, jobs=1)


def test_cli_sweep_summary_table_and_files(tmp_path: Path) -> None:
    d = trace_dir(B72)
    r = _cli("sweep", d, "--kaslr", "4:7", "--jobs", "1")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "cold boot: baseline: KHO scratch reserved in 0/4 slots, fewer gigantic pages than asked in " \
                       "0/4; merged: KHO scratch reserved in 4/4 slots, fewer gigantic pages than asked in 0/4"
    assert sum(1 for x in lines if x.startswith("0x")) == 8
    for suffix in (".json", ".csv", ".html"):
        out = tmp_path / f"s{suffix}"
        r = _cli("sweep", d, "--kaslr", "4:7", "--jobs", "1", "-o", out)
        assert r.exit_code == 0 and out.stat().st_size > 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["schema_version"] == 1 and len(doc["rows"]) == 8 and doc["swept"] == ["image_at"]
    html = (tmp_path / "s.html").read_text()
    assert "<svg" in html and "<script" not in html and "KHO scratch reserved" in html


def test_cli_heat_map_over_two_parameters(tmp_path: Path) -> None:
    out = tmp_path / "h.html"
    r = _cli("sweep", trace_dir(B72), "--set", "hugepages=0,2", "--set", "kho_scratch=50%,200%", "--jobs", "1",
             "-o", out)
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "share of points keeping KHO scratch" in page and "hugepages=0 kho_scratch=50%" in page


@pytest.mark.parametrize(("args", "match"), [
    (["--kaslr", "some"], "expected all, N or N:SEED"),
    (["--set", "nope=1"], "unknown parameter"),
    (["--set", "hugepages=x"], "expected a count"),
    (["--image-at", "0x141100000"], "not a slot"),
    (["-o", "x.xlsx"], "unknown output format"),
    (["-s", "nosuch"], "nosuch"),
])
def test_cli_sweep_bad_input_is_one_line_exit_2(args: list[str], match: str) -> None:
    r = _cli("sweep", trace_dir(B72), *args, "--jobs", "1")
    assert r.exit_code == 2 and match in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_parquet_table_equals_the_json_rows(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    r = _cli("sweep", trace_dir(B72), "--kaslr", "3:1", "--jobs", "1", "-o", tmp_path / "x.parquet")
    assert r.exit_code == 0, r.output
    r = _cli("sweep", trace_dir(B72), "--kaslr", "3:1", "--jobs", "1", "-o", tmp_path / "x.json")
    want = json.loads((tmp_path / "x.json").read_text())["rows"]
    got = pq.read_table(tmp_path / "x.parquet").to_pylist()
    assert len(got) == len(want) == 6 and [g["image_at"] for g in got] == [w["image_at"] for w in want]


def test_cli_image_at_and_set_on_replaying_commands() -> None:
    d = trace_dir(A72)
    r = _cli("kho", d, "-s", "merged", "--image-at", "0x141000000", "-f", "json")
    assert r.exit_code == 0, r.output
    (o,) = json.loads(r.stdout)["outcomes"]
    assert [(a["name"], a["base"]) for a in o["scratch"]["areas"]] == [
        ("lowmem", "0x00000000b0800000"), ("global", "0x000000021cc00000"), ("node0", "0x0000000205000000")]
    r = _cli(d, "-s", "merged", "--set", "hugepages=1", "--set", "kho=on", "-q")
    assert r.exit_code in (0, 1)
    for cmd in (["kho"], ["matrix"], []):
        r = _cli(*cmd, d, "--image-at", "0x1000")
        assert r.exit_code == 2 and "not a slot" in r.stderr
    r = _cli("kho", "scenario:scenario-a", "--set", "hugepages=2")
    assert r.exit_code == 2 and "a scenario is synthesized" in r.stderr
    r = _cli("diff", d, trace_dir(B72), "--set", "bogus=1")
    assert r.exit_code == 2 and "unknown parameter" in r.stderr


def test_cli_whatif_leaves_the_second_kernel_of_a_combined_capture_alone() -> None:
    # The second kernel booted where kexec put it, whether its log is console-kernel2.log or boot 2 of one
    # console.log: both spellings of the same kexec give the same outcome under a what-if.
    d = trace_dir(B73)
    one_log = _cli("kho", d / "console.log.gz", "-s", "merged", "--kexec", "--image-at", "0x1ecc00000", "-f", "json")
    two_logs = _cli("kho", d, "-s", "merged", "--kexec", "--image-at", "0x1ecc00000", "-f", "json")
    assert one_log.exit_code == two_logs.exit_code == 0, one_log.stderr
    def outcomes(r):  # type: ignore[no-untyped-def]
        return [{k: v for k, v in o.items() if k != "source"} for o in json.loads(r.stdout)["outcomes"]]

    assert outcomes(one_log) == outcomes(two_logs)
