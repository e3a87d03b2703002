# SPDX-License-Identifier: GPL-2.0-only
"""The HTML report: one self-contained file, and it renders in a real headless Chromium.

The browser tests need Debian's ``chromium`` package; without it they are
skipped with that reason (CI installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.replay.cli import app, dispatch
from kho_replay.replay.strategies import BUILTIN

TRACES = Path(__file__).resolve().parents[1] / "traces"
B = TRACES / "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"
C = TRACES / "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium not installed (Debian: apt-get install -y chromium)")
STRATEGIES = [n for n in BUILTIN if n != "baseline"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "c.html"
    r = CliRunner().invoke(app, dispatch([str(C), "--kexec", "--format", "html", "-o", str(out)]))
    assert r.exit_code == 1, r.stderr  # C diverges under several designs
    return out


def test_html_is_self_contained_with_a_map_pair_per_comparison(report: Path) -> None:
    text = report.read_text()
    assert "<script" not in text and not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", text)
    sections = re.findall(r'<section id="c\d+" data-strategy="([^"]+)" data-boot="([^"]+)"( class="same-line")?>',
                          text)
    assert sorted(s[:2] for s in sections) == sorted((s, b) for s in STRATEGIES for b in ("cold", "kexec"))
    # Every diverging section shows baseline's map and the strategy's, each with its zoom panel;
    # a "same" one is a line without maps.
    diverging = [s for s in sections if not s[2]]
    assert diverging and len(diverging) < len(sections)
    assert text.count("<svg ") == 4 * len(diverging)
    # Hover text names an address range the way the kernel prints it, a size and a caller.
    assert re.search(r"<title>hugetlb gigantic pages: alloc_bootmem\+0x[0-9a-f]+/0x[0-9a-f]+ "
                     r"memblock_alloc_try_nid_raw \[0x[0-9a-f]{16}-0x[0-9a-f]{16}\] 1GiB", text)
    # C's kexec boot under baseline has preserved gigantic pages; 1 GiB each, so a preserved shape exists.
    assert 'class="preserved"' in text and 'class="scratch"' in text and 'class="gigantic"' in text


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
            capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@needs_chromium
def test_console_messages_are_caught(tmp_path: Path) -> None:
    # The check below must be able to fail: a page that logs an error is seen.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("kho-replay-test")</script></body></html>')
    assert any("kho-replay-test" in ln for ln in _console(_chromium("--dump-dom", bad.as_uri()).stderr))


@needs_chromium
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    r = _chromium("--dump-dom", report.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    assert _console(r.stderr) == []
    dom = r.stdout
    for s in STRATEGIES:
        assert f'data-strategy="{s}" data-boot="cold"' in dom and f'data-strategy="{s}" data-boot="kexec"' in dom
    assert dom.count("<svg") == report.read_text().count("<svg ")
    png = tmp_path / "report.png"
    shot = _chromium("--window-size=1280,1400", f"--screenshot={png}", report.as_uri())
    assert shot.returncode == 0 and _console(shot.stderr) == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000


# ---------------------------------------------------------------- issue 13: the maps are right at a glance

A = TRACES / "x86_64-kho-7.2.13-A-8G-nohuge-memfd64M"
NUMA = TRACES / "x86_64-debian-7.2.13-numa2-8G-hugepages1G-pernode"


def _html(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "r.html"
    r = CliRunner().invoke(app, dispatch([*args, "-o", str(out)]))
    assert r.exit_code in (0, 1), r.stderr
    return out.read_text()


def test_legend_colours_are_distinct_and_cover_every_shape(tmp_path: Path) -> None:
    # Before: extended scratch = node 1, scratch = request "KHO scratch", gigantic page = request
    # "hugetlb gigantic pages", preserved = request "KHO preserved".
    from kho_replay.replay.report.html import legend_items

    colours = [c for _, c in legend_items(nodes=8)]
    assert len(colours) == len(set(colours)), sorted(c for c in colours if colours.count(c) > 1)
    text = _html(tmp_path, str(NUMA), "-s", "merged")
    legend = dict(re.findall(r'<i style="background:([^;]+);[^"]*"></i>([^<]+)</span>', text))
    assert len(legend) == len(re.findall(r"<i style=", text))  # one colour per legend entry
    fills = set(re.findall(r'<rect class="[^"]+" [^>]*fill="(#[0-9a-f]{6})"', text))
    assert fills and fills <= set(legend), fills - set(legend)
    assert "node 1 memory" in legend.values()


def test_baseline_kho_boot_draws_no_false_extended_scratch(tmp_path: Path) -> None:
    # Before: two kho_scratch[] areas that touch merge into one KHO_SCRATCH memory region, drawn as
    # "extended scratch [0x20a800000-0x235ffffff] 696MiB" although the boot extended nothing.
    text = _html(tmp_path, str(A), "--kexec", "--preserve", "log", "-s", "merged", "-f", "html")
    section = text[text.index('data-strategy="merged" data-boot="kexec"'):]
    baseline_map = section[:section.index("merged — KHO boot")]
    assert "extended scratch [" not in baseline_map and 'class="scratch"' in baseline_map
    # merged does extend scratch on A's KHO boot: its own map draws the band.
    assert 'class="extended"' in section[section.index("merged — KHO boot"):]


def test_extended_ranges_exclude_touching_areas() -> None:
    from types import SimpleNamespace

    from kho_replay.replay.flags import Flag
    from kho_replay.replay.report.html import extended_ranges

    o = SimpleNamespace(scratch=SimpleNamespace(areas=(("global", 0x1000, 0x1000), ("node0", 0x2000, 0x1000))))
    merged = SimpleNamespace(memory=[SimpleNamespace(base=0x1000, size=0x2000, flags=Flag.MEMBLOCK_KHO_SCRATCH)])
    assert extended_ranges(o, merged) == []  # type: ignore[arg-type]
    grown = SimpleNamespace(memory=[SimpleNamespace(base=0x1000, size=0x3000, flags=Flag.MEMBLOCK_KHO_SCRATCH)])
    assert extended_ranges(o, grown) == [(0x3000, 0x1000)]  # type: ignore[arg-type]


def test_diff_with_a_kho_boot_b_draws_both_maps(tmp_path: Path) -> None:
    # Before: B's boot is "kexec", and the report looked it up by index in A's one-entry list: no maps.
    text = _html(tmp_path, "diff", str(C / "console-kernel1.log"), str(C / "console-kernel2.log.gz"), "-f", "html")
    assert "A — cold boot" in text and "B — KHO boot" in text
    assert text.count("<svg ") >= 2


def test_maps_are_page_wide_with_a_zoom_on_small_requests(tmp_path: Path) -> None:
    from kho_replay.replay.report.html import WIDTH

    text = _html(tmp_path, str(NUMA), "-s", "merged", "-f", "html")
    assert WIDTH >= 1000 and "svg{width:100%" in text
    zoom = re.search(r"zoom: \[0x([0-9a-f]{16})-0x([0-9a-f]{16})\] [^,]+, (\d+) requests", text)
    assert zoom is not None
    lo, hi = int(zoom[1], 16), int(zoom[2], 16) + 1
    assert hi - lo <= (9 << 30) // 8 and int(zoom[3]) >= 8  # a narrow window that holds many requests


def test_same_comparison_is_one_line(tmp_path: Path) -> None:
    text = _html(tmp_path, str(TRACES / "x86_64-debian-7.2.13-4G"), "-s", "merged", "-f", "html")
    assert 'class="same-line"' in text and "<svg " not in text


@needs_chromium
def test_screenshots_of_numa_kho_and_diff(tmp_path: Path) -> None:
    for name, args in (("numa", [str(NUMA), "-s", "merged"]), ("kho", [str(A), "--kexec", "-s", "merged"]),
                       ("diff", ["diff", str(C)])):
        page = tmp_path / f"{name}.html"
        r = CliRunner().invoke(app, dispatch([*args, "-f", "html", "-o", str(page)]))
        assert r.exit_code == 1, r.stderr
        png = tmp_path / f"{name}.png"
        shot = _chromium("--window-size=1400,1600", f"--screenshot={png}", page.as_uri())
        assert shot.returncode == 0 and _console(shot.stderr) == []
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
