# SPDX-License-Identifier: GPL-2.0-only
"""kho-replay retarget / fleet on the command line: outputs other commands read, bad input, resumable fleets."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import DEB72, KHO72, trace_dir
from typer.testing import CliRunner

from kho_replay.parsers import load, read_text
from kho_replay.parsers.plain import strip_debug
from kho_replay.replay.cli import app
from kho_replay.replay.retarget import _cold_log
from kho_replay.replay.retarget.fleet import fleet, read_rows
from kho_replay.replay.retarget.synth import synth_host, write_fleet

runner = CliRunner()


def _plain(tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.dmesg"
    p.write_text(strip_debug(read_text(_cold_log(trace_dir(name)))))
    return p


def test_retarget_writes_a_trace_parse_validate_and_kho_read(tmp_path: Path) -> None:
    host = _plain(tmp_path, KHO72[3])
    out = tmp_path / "host.trace"
    iomem = trace_dir(KHO72[3]) / "kernel1" / "iomem.txt"
    r = runner.invoke(app, ["retarget", str(trace_dir(KHO72[0])), str(host), "--iomem", str(iomem), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "printed facts matched 16/16" in r.stderr
    t = load(out)
    assert "kho_scratch=64M,512M,64M hugepagesz=1G hugepages=2" in t.context.cmdline
    assert t.context.release == "7.2.13-kho" and "memblock=debug" not in t.context.cmdline
    r = runner.invoke(app, ["parse", str(out)])
    assert "retarget: host" in r.stdout and "retarget: formula" in r.stdout and "retarget: template" in r.stdout
    r = runner.invoke(app, ["validate", str(out)])
    assert r.exit_code == 0 and "Memory: totals matched 1/1" in r.stdout
    r = runner.invoke(app, ["kho", str(out), "-f", "json"])
    doc = json.loads(r.stdout)["outcomes"][0]
    assert doc["scratch"]["enabled"] and doc["gigantic"]["allocated"] == 2


def test_another_build_is_refused_in_one_line_unless_forced(tmp_path: Path) -> None:
    host = _plain(tmp_path, DEB72[0])
    r = runner.invoke(app, ["retarget", str(trace_dir(KHO72[0])), str(host)])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "another kernel build" in r.stderr and "--force" in r.stderr
    r = runner.invoke(app, ["retarget", str(trace_dir(KHO72[0])), str(host), "--force", "-o", str(tmp_path / "x")])
    assert r.exit_code == 0
    assert "assumed: " in r.stderr and "build constant" in r.stderr


def test_plain_log_without_memory_map_is_one_line_exit_2(tmp_path: Path) -> None:
    host = tmp_path / "cut.log"
    host.write_text("[    1.0] Memory: 7123976K/8388088K available (19554K kernel code)\n")
    r = runner.invoke(app, ["retarget", str(trace_dir(KHO72[0])), str(host)])
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and "cut.log:1: no memory map" in r.stderr


def test_synthetic_host_reads_back_as_the_machine_asked_for() -> None:
    from kho_replay.parsers.plain import parse_plain

    text = read_text(_cold_log(trace_dir(KHO72[0])))
    b = parse_plain(synth_host(text, mem_gib=16, nodes=2, pages=3))
    assert max(e for _, e, _ in b.ram()) == (16 + 1) << 30
    assert sorted(b.initmem) == [0, 1] and "hugepages=3" in b.cmdline and not b.node_data and b.memory is None


def test_fleet_same_rows_on_one_and_two_processes_and_resumes(tmp_path: Path) -> None:
    hosts = write_fleet(read_text(_cold_log(trace_dir(KHO72[0]))), tmp_path / "hosts", 8, seed=3)
    (tmp_path / "hosts" / "junk.log").write_text("not a boot log\n")
    hosts.append(tmp_path / "hosts" / "junk.log")
    one = fleet(trace_dir(KHO72[0]), hosts, ["baseline", "merged"], jobs=1)
    two = fleet(trace_dir(KHO72[0]), hosts, ["baseline", "merged"], jobs=2)
    assert one == two and len(one) == 18 and {r.boot for r in one} == {"cold"}
    assert [r.outcome for r in one[-2:]] == ["error", "error"] and "no memory map" in one[-1].error
    assert any(r.kho for r in one) and any(r.strategy == "merged" and r.kho for r in one)
    out = tmp_path / "report.csv"
    r = runner.invoke(app, ["fleet", str(tmp_path / "hosts"), "-t", str(trace_dir(KHO72[0])), "-j", "1",
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "merged keeps KHO on" in r.stdout and "baseline keeps KHO on" in r.stdout
    assert [(x.host, x.kho, x.global_mib) for x in read_rows(out)] == [
        (str(h), x.kho, x.global_mib) for h, x in zip([h for h in hosts for _ in (0, 1)], one, strict=True)]
    r = runner.invoke(app, ["fleet", str(tmp_path / "hosts"), "-t", str(trace_dir(KHO72[0])), "-o", str(out)])
    assert "9 host(s) already in" in r.stderr
    for fmt in ("json", "html"):
        o = tmp_path / f"report.{fmt}"
        r = runner.invoke(app, ["fleet", *map(str, hosts[:2]), "-t", str(trace_dir(KHO72[0])), "-j", "1",
                                "-o", str(o)])
        assert r.exit_code == 0 and "keeps KHO on" in o.read_text()


def test_fleet_does_not_resume_from_a_fifo(tmp_path: Path) -> None:
    # `fleet -o report.csv` where report.csv is a FIFO (written in place): what a writer feeds it is no
    # previous report.  Before: read_rows() waited for a writer, then read its bytes as one.
    fifo = tmp_path / "report.csv"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.02)
                continue
            os.write(fd, b"not,a\nfleet,report\n")
            os.close(fd)
            return

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        assert read_rows(fifo) == []
    finally:
        stop.set()
        feeder.join(timeout=10)


def test_fleet_on_a_dask_local_cluster_gives_the_same_rows(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    hosts = write_fleet(read_text(_cold_log(trace_dir(KHO72[0]))), tmp_path, 4, seed=5)
    serial = fleet(trace_dir(KHO72[0]), hosts, ["baseline", "merged"], jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        got = fleet(trace_dir(KHO72[0]), hosts, ["baseline", "merged"], scheduler=cluster.scheduler_address)
    assert got == serial


def test_validate_of_a_retargeted_trace_names_the_failed_assumption(tmp_path: Path) -> None:
    host = _plain(tmp_path, DEB72[2])
    out = tmp_path / "host.trace"
    r = runner.invoke(app, ["retarget", str(trace_dir(KHO72[0])), str(host), "--force", "-o", str(out)])
    assert r.exit_code == 0
    r = runner.invoke(app, ["validate", str(out)])
    assert r.exit_code == 1
    assert "printed facts matched 15/16" in r.stdout
    assert "expected 0x000000023ffd2f80" in r.stdout and "pg_data_t size from the template" in r.stdout


def test_template_plus_plain_is_an_input_form(tmp_path: Path) -> None:
    host = _plain(tmp_path, KHO72[1])
    spec = f"{trace_dir(KHO72[0])}+{host}"
    r = runner.invoke(app, ["kho", spec, "-f", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)["outcomes"][0]
    assert not doc["scratch"]["enabled"] and doc["scratch"]["failed"] == "global"  # B: KHO off, as the kernel said
    r = runner.invoke(app, ["run", f"{tmp_path}/nothing+{host}"])
    assert r.exit_code == 2 and "TEMPLATE+PLAIN" in r.stderr


def test_fleet_kexec_rows_say_whether_the_pages_fit_after_a_kho_kexec(tmp_path: Path) -> None:
    text = read_text(_cold_log(trace_dir(KHO72[0])))
    host = tmp_path / "h.log"
    host.write_text(synth_host(text, mem_gib=12, pages=2).replace("kho=on", "kho=on kho_scratch=64M,3G,128M"))
    rows = fleet(trace_dir(KHO72[0]), [host], ["baseline"], jobs=1, kexec=True)
    assert [r.boot for r in rows] == ["cold", "kexec"]
    cold, ke = rows
    assert cold.kho and cold.global_mib == 3072 and ke.kho and ke.pages_requested == 2
    assert ke.pages_allocated == 2 and ke.pages_in_scratch == 2  # as the real 12 GiB boot C: both fit in scratch


def test_fleet_parquet_report_round_trips_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    hosts = write_fleet(read_text(_cold_log(trace_dir(KHO72[0]))), tmp_path / "hosts", 3, seed=5)
    out = tmp_path / "report.parquet"
    args = ["fleet", *map(str, hosts), "-t", str(trace_dir(KHO72[0])), "-j", "1", "-o", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = read_rows(out)
    assert rows == fleet(trace_dir(KHO72[0]), hosts, ["baseline", "merged"], jobs=1)
    r = runner.invoke(app, args)
    assert "3 host(s) already in" in r.stderr and read_rows(out) == rows

