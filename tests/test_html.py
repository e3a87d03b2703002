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
    sections = re.findall(r'<section id="c\d+" data-strategy="([^"]+)" data-boot="([^"]+)">', text)
    assert sorted(sections) == sorted((s, b) for s in STRATEGIES for b in ("cold", "kexec"))
    # Every section shows baseline's map beside the strategy's.
    assert text.count("<svg ") == 2 * len(sections)
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
    assert dom.count("<svg") == 4 * len(STRATEGIES)
    png = tmp_path / "report.png"
    shot = _chromium("--window-size=1280,1400", f"--screenshot={png}", report.as_uri())
    assert shot.returncode == 0 and _console(shot.stderr) == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
