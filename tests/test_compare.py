# SPDX-License-Identifier: GPL-2.0-only
"""``kho-replay TRACE``, ``diff`` and ``fixture``: verdicts derived from the KHO facts, exit codes, formats."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.replay import fixtures
from kho_replay.replay.cli import app, dispatch

TRACES = Path(__file__).resolve().parents[1] / "traces"
A = TRACES / "x86_64-kho-7.2.13-A-8G-nohuge-memfd64M"
B = TRACES / "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"
C = TRACES / "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"
X86 = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"
ARM = TRACES / "arm64-debian-7.2.13-4G" / "console.log.gz"
GIB = 1 << 30
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, dispatch([str(a) for a in args]), env={"COLUMNS": "200"})


def comparisons(stdout: str) -> dict[tuple[str, str], dict]:
    doc = json.loads(stdout)
    assert doc["schema_version"] == 2
    return {(c["strategy"], c["boot"]): c for c in doc["comparisons"]}


def metric(comp: dict, name: str) -> dict | None:
    return next((m for m in comp["metrics"] if m["name"] == name), None)


def gigantic_pages(log: Path) -> int:
    """1 GiB pages the kernel says it pre-allocated on its (first) boot."""
    from kho_replay.parsers import read_text

    m = re.search(r"HugeTLB: registered 1\.00 GiB page size, pre-allocated (\d+) pages", read_text(log))
    return int(m.group(1)) if m else 0


def test_dispatch_inserts_the_hidden_compare_command() -> None:
    assert dispatch(["trace.log", "-s", "merged"]) == ["compare", "trace.log", "-s", "merged"]
    assert dispatch(["validate", "trace.log"]) == ["validate", "trace.log"]
    assert dispatch(["fixture", "check"]) == ["fixture", "check"]
    assert dispatch(["--version"]) == ["--version"]


def test_scratch_failure_of_trace_b_is_gone_under_merged() -> None:
    # B boots with the default 200% scale and 2 GiB of gigantic pages counted in RSRV_KERN: baseline
    # cannot reserve global scratch; merged leaves hugetlb out of the sizing and reserves it.
    r = invoke(B, "--strategy", "merged", "--format", "json")
    assert r.exit_code == 1, r.stderr
    assert r.stderr == ""
    comp = comparisons(r.stdout)[("merged", "cold")]
    assert comp["diverged"] is True
    m = metric(comp, "scratch reserved")
    assert m == {"name": "scratch reserved", "old": "no (failed: global)", "new": "yes", "delta": None,
                 "unit": "", "informational": False}
    assert "KHO: Failed to reserve global scratch buffer" in comp["messages_gone"]
    assert comp["first"]["caller"] == "kho_reserve_scratch" and comp["first"]["kind"] == "now succeeds"
    assert comp["first"]["old_addr"] is None and re.fullmatch(r"0x[0-9a-f]{16}", comp["first"]["new_addr"])


def test_kexec_preserve_hugetlb_on_c_puts_gigantic_pages_in_scratch_only_under_baseline() -> None:
    # C's 3 GiB global scratch holds both 1 GiB pages; on baseline's KHO boot hugetlb allocates while
    # memblock is scratch-only, so every page lands in scratch; merged allocates them outside.
    pages = gigantic_pages(fixtures.trace_files(C)[0])
    assert pages == 2
    r = invoke(C, "-s", "merged", "--kexec", "--preserve", "hugetlb", "-f", "json")
    assert r.exit_code == 1
    comp = comparisons(r.stdout)[("merged", "kexec")]
    assert metric(comp, "gigantic in scratch") == {"name": "gigantic in scratch", "old": pages, "new": 0,
                                                   "delta": -pages, "unit": "count", "informational": False}
    moved = [c for c in comp["changes"] if c["subsystem"] == "hugetlb gigantic pages"]
    assert len(moved) == pages
    assert all(c["old_in_scratch"] and not c["new_in_scratch"] for c in moved)
    assert all(int(c["new_addr"], 16) % GIB == 0 for c in moved)


def test_reservations_that_split_account_for_the_region_count() -> None:
    # merged tags gigantic pages RSRV_HUGETLB, so they no longer merge with their RSRV_KERN neighbours.
    r = invoke(C, "-s", "merged", "-f", "json")
    comp = comparisons(r.stdout)[("merged", "cold")]
    split = [x for x in comp["regions"] if x["kind"] == "split"]
    assert split and all(x["size"] >= GIB for x in split)
    more = sum(x["parts"] - 1 for x in split) - sum(x["parts"] - 1 for x in comp["regions"] if x["kind"] == "merged")
    assert metric(comp, "reserved regions final")["delta"] == more


def test_region_changes_on_two_small_tables() -> None:
    from kho_replay.replay.compare.diff import region_changes

    old = [(0x1000, 0x1000), (0x2000, 0x1000), (0x10000, 0x4000)]
    new = [(0x1000, 0x2000), (0x10000, 0x1000), (0x12000, 0x2000)]
    got = [(r.kind, r.base, r.size, r.parts) for r in region_changes(old, new)]
    assert got == [("merged", 0x1000, 0x2000, 2), ("split", 0x10000, 0x4000, 2)]


def test_a_strategy_against_itself_is_the_same_and_exits_0() -> None:
    r = invoke(C, "-s", "baseline", "--kexec")
    assert r.exit_code == 0, r.stdout
    assert "baseline vs baseline (cold boot): same" in r.stdout
    assert "baseline vs baseline (kexec boot): same" in r.stdout


def _kernel_is_merged(trace: Path) -> bool:
    from kho_replay.parsers import load
    from kho_replay.replay.profile import profile_for

    release = load(fixtures.trace_files(trace)[0]).context.release or ""
    return profile_for(release).kho_boot_extends_scratch


def _bundled() -> list[Path]:
    return [d for d in sorted(TRACES.iterdir()) if (d / "README").exists()]


@pytest.mark.parametrize("trace", _bundled(), ids=lambda p: p.name)
def test_default_command_verdicts_on_every_bundled_boot(trace: Path) -> None:
    # Cold boot facts: without gigantic pages no design changes anything; with N 1 GiB pages placed,
    # ext-scratch stops counting them in RSRV_KERN (-N GiB) and merged tags them RSRV_HUGETLB (+N GiB).
    pages = gigantic_pages(fixtures.trace_files(trace)[0])
    r = invoke(trace, "-f", "json")
    assert r.exit_code in (0, 1), r.stderr
    comps = comparisons(r.stdout)
    assert {s for s, _ in comps} == {"ext-scratch", "hugetlb-alloc", "merged", "reserve-early", "preserve-hugetlb",
                                     "inverted-ext", "scratch-off-early"}
    if pages == 0:
        assert r.exit_code == 0
        assert all(not c["diverged"] for c in comps.values())
        return
    assert r.exit_code == 1
    ext = comps[("ext-scratch", "cold")]
    # Scratch that a design newly reserves is kernel memory (RSRV_KERN), and so is the kho_scratch[]
    # array that kho_reserve_scratch() frees again on failure: 16 bytes (addr, size) per area.
    newly = (metric(ext, "kho_scratch[] total") or {"delta": 0})["delta"]
    if newly:
        newly += 16 * (2 + 1)  # lowmem, global, one node
    assert metric(ext, "RSRV_KERN")["delta"] == -pages * GIB + newly
    if _kernel_is_merged(trace):
        # baseline is the trace's kernel: on a 7.3 boot it already is what 7.3 merged
        assert not comps[("merged", "cold")]["diverged"]
        return
    assert metric(comps[("merged", "cold")], "RSRV_HUGETLB")["delta"] == pages * GIB
    if trace == B:  # the designs that size scratch without hugetlb now reserve it
        for s in ("ext-scratch", "hugetlb-alloc", "merged", "preserve-hugetlb"):
            assert metric(comps[(s, "cold")], "scratch reserved")["new"] == "yes"


@pytest.mark.parametrize("trace", [d for d in _bundled() if (d / "console-kernel2.log.gz").exists()],
                         ids=lambda p: p.name)
def test_kexec_verdicts_on_every_bundled_kho_boot(trace: Path) -> None:
    pages = gigantic_pages(fixtures.trace_files(trace)[0])
    r = invoke(trace, "--kexec", "--preserve", "hugetlb", "-f", "json")
    comps = comparisons(r.stdout)
    assert r.exit_code == 1  # every KHO trace has at least one design whose KHO boot differs
    if _kernel_is_merged(trace):
        # baseline is the trace's 7.3 kernel: merged changes nothing, cold or KHO boot
        assert not comps[("merged", "cold")]["diverged"] and not comps[("merged", "kexec")]["diverged"]
        return
    if pages == 0:
        # preserve-hugetlb only adopts preserved gigantic pages: with none, nothing changes.
        assert not comps[("preserve-hugetlb", "cold")]["diverged"]
        assert not comps[("preserve-hugetlb", "kexec")]["diverged"]
        return
    # merged allocates gigantic pages outside kho_scratch[] on the KHO boot (flagged RSRV_HUGETLB memory
    # is not scratch); where baseline put some inside, the diff says they left.
    m = metric(comps[("merged", "kexec")], "gigantic in scratch")
    assert m is None or (m["new"] == 0 and m["old"] > 0)
    if m is not None:
        assert any(c["subsystem"] == "hugetlb gigantic pages" and c["old_in_scratch"] and not c["new_in_scratch"]
                   for c in comps[("merged", "kexec")]["changes"])


def test_text_report_verdicts_table_and_first_divergence() -> None:
    r = invoke(C, "-s", "merged", "--kexec")
    assert r.exit_code == 1
    out = r.stdout
    assert "\x1b[" not in out  # no colour when not a terminal
    assert re.search(r"merged vs baseline \(kexec boot\): DIVERGED", out)
    row = next(ln for ln in out.splitlines() if ln.startswith("gigantic in scratch"))
    assert row.split() == ["gigantic", "in", "scratch", "2", "0", "-2"]
    first = out[out.index("== merged vs baseline (kexec boot)"):]
    first = first[first.index("first divergence:"):].splitlines()
    assert re.search(r"console-kernel1\.log:\d+: \S+\+0x", first[1])
    assert first[3].startswith("  kernel: [")  # the kernel's own line for that request
    assert "hugetlb gigantic pages (2)" in out


def test_threshold_hides_small_moves_and_deltas() -> None:
    full = comparisons(invoke(B, "-s", "merged", "--kexec", "-f", "json").stdout)[("merged", "kexec")]
    r = invoke(B, "-s", "merged", "--kexec", "-f", "json", "--threshold", "1G")
    cut = comparisons(r.stdout)[("merged", "kexec")]
    assert len(cut["changes"]) < len(full["changes"])
    for c in cut["changes"]:
        if c["kind"] == "moved":
            assert abs(c["distance"]) >= GIB or c["old_in_scratch"] != c["new_in_scratch"]
    for m in cut["metrics"]:
        if m["unit"] == "bytes":
            assert abs(m["delta"]) >= GIB


def test_json_is_stable_and_addresses_are_hex_strings() -> None:
    a = invoke(B, "-s", "ext-scratch", "-f", "json").stdout
    assert a == invoke(B, "-s", "ext-scratch", "-f", "json").stdout
    doc = json.loads(a)
    assert list(doc) == sorted(doc)
    for c in doc["comparisons"][0]["changes"]:
        for k in ("old_addr", "new_addr"):
            assert c[k] is None or re.fullmatch(r"0x[0-9a-f]{16}", c[k])


def test_output_file_and_quiet(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = invoke(B, "-s", "merged", "-f", "json", "-o", out, "--quiet")
    assert r.exit_code == 1
    assert r.stdout == "" and r.stderr == ""
    assert json.loads(out.read_text())["diverged"] is True


# ------------------------------------------------------------------ diff of two real boots

def test_diff_a_boot_with_itself_is_the_same() -> None:
    r = invoke("diff", X86, X86)
    assert r.exit_code == 0
    assert ": same" in r.stdout


def test_diff_first_and_second_kernel_of_c() -> None:
    # The second kernel is a KHO boot: it inherits the first kernel's scratch and runs hugetlb while
    # memblock is scratch-only, so both 1 GiB pages the kernel pre-allocated land inside the 3 GiB
    # global scratch; the first kernel reserved scratch after hugetlb, so none of its pages are in it.
    pages = gigantic_pages(C / "console-kernel2.log.gz")
    assert pages == 2
    r = invoke("diff", C / "console-kernel1.log", C / "console-kernel2.log.gz", "-f", "json")
    assert r.exit_code == 1, r.stderr
    comp = json.loads(r.stdout)["comparisons"][0]
    assert comp["boot"] == "kexec" and comp["diverged"]
    assert metric(comp, "gigantic in scratch")["old"] == 0
    assert metric(comp, "gigantic in scratch")["new"] == pages
    # Every location names its side: A's line and B's line.
    src = comp["first"]["src"]
    assert src.startswith("A console-kernel1.log:") and ", B console-kernel2.log.gz:" in src
    assert comp["first"]["new_in_scratch"] is True


def test_diff_of_a_kho_boot_after_a_boot_without_scratch() -> None:
    # A boot without kho=on reserved no scratch: there is nothing a KHO boot could have inherited.
    _one_line_error(invoke("diff", X86, C / "console-kernel2.log.gz"), "KHO boot", "no scratch")


# ------------------------------------------------------------------ bad input: one line, exit 2

def _one_line_error(r, *words: str) -> None:
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kho-replay: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0]


def test_unknown_strategy_lists_the_known_ones() -> None:
    _one_line_error(invoke(B, "-s", "nosuch"), "nosuch", "known:", "ext-scratch", "merged")


def test_missing_trace(tmp_path: Path) -> None:
    _one_line_error(invoke(tmp_path / "absent.log"), "absent.log")


def test_trace_without_allocation_requests(tmp_path: Path) -> None:
    p = tmp_path / "layout.ops"
    p.write_text("add 0x0000000000000000 0x0000000100000000 nid=0\n")
    _one_line_error(invoke(p), "no allocation requests")


def test_bad_threshold() -> None:
    _one_line_error(invoke(B, "--threshold", "lots"), "not a size", "lots")


def test_bad_preserve_spec() -> None:
    _one_line_error(invoke(B, "--kexec", "--preserve", "memfd:lots"), "--preserve", "memfd:lots")


def test_diff_of_two_architectures() -> None:
    _one_line_error(invoke("diff", X86, ARM), "x86_64", "arm64")


# ------------------------------------------------------------------ fixtures

FIXTURES = fixtures.fixtures(TRACES)


def test_every_bundled_boot_is_a_fixture() -> None:
    assert {d.name for d in FIXTURES} == {d.name for d in _bundled()}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_fixture_check(fixture: Path) -> None:
    # kho-replay fixture check, one bundled boot at a time; on a change the output is the diff.
    r = invoke("fixture", "check", fixture.name, "--fixtures", TRACES)
    assert r.exit_code == 0, r.stdout[:4000]
    assert r.stdout.splitlines() == [f"{fixture.name}: ok", "1/1 fixtures unchanged"]


def test_fixture_check_reports_a_change_and_exits_1(tmp_path: Path) -> None:
    src = TRACES / "x86_64-debian-7.2.13-4G"
    dest = tmp_path / src.name
    shutil.copytree(src, dest)
    doc = json.loads((dest / "expected.json").read_text())
    doc["outcomes"]["merged"]["kexec"]["max_threads"] += 1
    (dest / "expected.json").write_text(fixtures.dumps(doc))
    r = invoke("fixture", "check", "--fixtures", tmp_path)
    assert r.exit_code == 1
    assert f"{src.name}: CHANGED" in r.stdout
    want = doc["outcomes"]["merged"]["kexec"]["max_threads"]
    assert f"merged/kexec: max_threads: {want} -> {want - 1}" in r.stdout


def test_fixture_add_stores_a_single_log(tmp_path: Path) -> None:
    r = invoke("fixture", "add", X86, "--fixtures", tmp_path, "--name", "mine")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "mine" / "console.log").read_text() == X86.read_text()
    doc = json.loads((tmp_path / "mine" / "expected.json").read_text())
    assert doc["outcomes"]["baseline"]["cold"]["requests"]["moved"] == []  # baseline reproduces the boot
    assert invoke("fixture", "check", "--fixtures", tmp_path).exit_code == 0


def test_output_suffix_picks_the_format(tmp_path) -> None:
    from kho_replay.replay.cli import app, dispatch

    log = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"
    for suffix, head in ((".html", "<!DOCTYPE html"), (".json", "{")):
        out = tmp_path / f"report{suffix}"
        r = CliRunner().invoke(app, dispatch([str(log), "-s", "merged", "-o", str(out)]))
        assert r.exit_code == 0, r.stderr
        assert out.read_text().lstrip().startswith(head)
