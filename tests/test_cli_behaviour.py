# SPDX-License-Identifier: GPL-2.0-only
"""Every command behaves (issue 13): outputs written safely, options that mean what they say, one meaning
of a trace directory, a diff that says which side, text that says what it means.

One test per defect the issue lists; each failed before the fix.  Commands run through
:func:`kho_replay.replay.cli.run_cli`, the console script's own entry point, so that a bad option is
seen as a user sees it (one line, exit 2).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kho_replay.replay.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "traces"
X86 = TRACES / "x86_64-debian-7.2.13-4G"
X86_61 = TRACES / "x86_64-debian-6.1.192-4G"
B = TRACES / "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"
C = TRACES / "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"
OPS = TRACES / "examples" / "doubling.ops"
README = (ROOT / "README.md").read_text()


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kho-replay: error: "), err
    assert "Traceback" not in err and "Usage" not in err and "compare" not in err
    return lines[0]


def log_copy(tmp_path: Path, src: Path = X86 / "console.log") -> Path:
    dst = tmp_path / "in.log"
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture(scope="module")
def dat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dat") / "boot.dat"
    assert run_cli(["record", str(X86 / "console.log"), "-o", str(out)]) == 0
    return out


# ---------------------------------------------------------------- outputs

COMMANDS = {
    "validate": ["validate", X86],
    "parse": ["parse", OPS],
    "run": ["run", OPS],
    "kho": ["kho", OPS],
    "matrix": ["matrix", "scenario:scenario-a", "-s", "baseline"],
    "diff": ["diff", X86, X86],
    "default": [X86, "-s", "merged"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("where", ["missing-dir", "directory", "unwritable"])
def test_bad_output_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str,
                                           where: str) -> None:
    # Before: a traceback after all the work was done, exit 1 (the code for "diverged").
    target = {"missing-dir": tmp_path / "no" / "such" / "r.txt", "directory": tmp_path,
              "unwritable": Path("/proc/kho-replay-test.txt")}[where]
    code, out, err = cli(capsys, *COMMANDS[name], "-o", target)
    assert code == 2
    assert one_error_line(err).startswith(f"kho-replay: error: {target}: ")
    assert out == ""


def test_events_to_a_directory_blames_the_output(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 dat: Path) -> None:
    # Before: "boot.dat: Is a directory" — the input blamed for the output's problem.
    code, _, err = cli(capsys, "parse", dat, "--events", "-o", tmp_path)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"kho-replay: error: {tmp_path}: ") and "boot.dat" not in line


def test_record_refuses_to_overwrite_its_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = log_copy(tmp_path)
    before = log.read_bytes()
    code, _, err = cli(capsys, "record", log, "-o", log)
    assert code == 2 and "refusing to overwrite" in one_error_line(err)
    assert log.read_bytes() == before


@pytest.mark.parametrize("cmd", [["parse"], ["run"], ["validate"], ["kho"]])
def test_no_output_overwrites_an_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, cmd: list[str]) -> None:
    log = log_copy(tmp_path)
    before = log.read_bytes()
    code, _, err = cli(capsys, *cmd, log, "-o", log)
    assert code == 2 and "refusing to overwrite" in one_error_line(err)
    assert log.read_bytes() == before


def test_truncated_input_leaves_no_partial_output(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  dat: Path) -> None:
    # Before: the events before the cut were left in out.txt.
    cut = tmp_path / "cut.dat"
    data = dat.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 4])
    out = tmp_path / "out.txt"
    code, _, err = cli(capsys, "parse", cut, "--events", "-o", out)
    assert code == 2 and one_error_line(err).startswith(f"kho-replay: error: {cut}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.dat"]
    # An existing output stays as it was.
    out.write_text("old\n")
    assert cli(capsys, "parse", cut, "--events", "-o", out)[0] == 2
    assert out.read_text() == "old\n"


def test_events_into_a_closed_pipe_is_quiet(dat: Path) -> None:
    # Before: "boot.dat: Broken pipe" on stderr and exit 2.
    p = subprocess.Popen([sys.executable, "-c", "from kho_replay.replay.cli import main; main()",
                          "parse", str(dat), "--events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0
    assert first.startswith(b"cpus=") and err == ""


@pytest.mark.parametrize("args", [["-h"], ["kho", "--help"]])
def test_help_into_a_closed_pipe_is_quiet(args: list[str]) -> None:
    # Before: `kho-replay -h | head -1` exited 1 (rich's help printer on a closed pipe).
    p = subprocess.Popen([sys.executable, "-c", "from kho_replay.replay.cli import main; main()", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "80"})
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0 and err == ""


# ---------------------------------------------------------------- outputs that are not regular files

# Commands whose -o goes through each writer: text (write_output) and trace.dat (record's atomic_path).
IN_PLACE = {"run": ["run", OPS], "parse-json": ["parse", OPS, "-f", "json"], "record": ["record", X86 / "console.log"]}


def regular_output(capsys: pytest.CaptureFixture[str], tmp_path: Path, cmd: str) -> bytes:
    out = tmp_path / "regular.out"
    assert cli(capsys, *IN_PLACE[cmd], "-o", out)[0] == 0
    return out.read_bytes()


@pytest.mark.parametrize("cmd", sorted(IN_PLACE))
def test_a_fifo_output_is_written_into_the_fifo(capsys: pytest.CaptureFixture[str], tmp_path: Path, cmd: str) -> None:
    # Before: the FIFO was renamed over by a regular file; its reader never saw a byte.
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    # A reader from the start, so the command's open() does not wait; a thread drains it, so no write blocks.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got: list[bytes] = []
    finished = threading.Event()

    def drain() -> None:
        while True:
            if select.select([rfd], [], [], 0.05)[0]:
                chunk = os.read(rfd, 1 << 16)
                if not chunk:
                    return  # the writer came and closed: end of file
                got.append(chunk)
            elif finished.is_set():
                return  # the command ended without ever opening the FIFO

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        code, _, err = cli(capsys, *IN_PLACE[cmd], "-o", fifo)
    finally:
        finished.set()
        reader.join(timeout=60)
        os.close(rfd)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert b"".join(got) == regular_output(capsys, tmp_path, cmd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo", "regular.out"]  # no temporary left


@pytest.fixture
def null_device(tmp_path: Path) -> Path:
    """A character device like /dev/null (1, 3) in *tmp_path*: the real one must not be put at risk."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.close(os.open(dev, os.O_WRONLY))
    except OSError as e:  # not root, or a nodev mount
        pytest.skip(f"cannot make and open a character device here: {e}")
    return dev


@pytest.mark.parametrize("cmd", sorted(IN_PLACE))
def test_a_device_output_stays_a_device(capsys: pytest.CaptureFixture[str], tmp_path: Path, null_device: Path,
                                        cmd: str) -> None:
    # Before: `-o /dev/null` replaced the device node with a regular file holding the report.
    code, _, err = cli(capsys, *IN_PLACE[cmd], "-o", null_device)
    assert code == 0, err
    st_ = os.lstat(null_device)
    assert stat.S_ISCHR(st_.st_mode) and st_.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_device_output_survives_a_failed_command(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   null_device: Path, dat: Path) -> None:
    cut = tmp_path / "cut.dat"
    cut.write_bytes(dat.read_bytes()[: dat.stat().st_size * 3 // 4])
    code, _, err = cli(capsys, "parse", cut, "--events", "-o", null_device)
    assert code == 2 and one_error_line(err).startswith(f"kho-replay: error: {cut}")
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)


@pytest.mark.parametrize("cmd", sorted(IN_PLACE))
def test_a_symlink_output_is_written_through(capsys: pytest.CaptureFixture[str], tmp_path: Path, cmd: str) -> None:
    # /dev/stdout is a link to /proc/self/fd/1: replacing it, even when fd 1 is a regular file, breaks the system.
    target = tmp_path / "target.out"
    target.write_text("old\n")
    link = tmp_path / "link.out"
    link.symlink_to(target)
    code, _, err = cli(capsys, *IN_PLACE[cmd], "-o", link)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes() == regular_output(capsys, tmp_path, cmd)


# ---------------------------------------------------------------- options

@pytest.mark.parametrize("cmd", [["validate", X86], ["parse", OPS], ["run", OPS], ["kho", OPS]])
def test_html_where_there_is_none_is_refused(capsys: pytest.CaptureFixture[str], cmd: list[object]) -> None:
    # Before: -f html printed text.
    code, out, err = cli(capsys, *cmd, "-f", "html")
    assert code == 2 and out == "" and "'html' is not one of 'text', 'json'" in one_error_line(err)


def test_format_text_to_an_html_name_writes_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Before: -f text -o x.html wrote HTML.
    out = tmp_path / "x.html"
    assert cli(capsys, X86, "-s", "merged", "-f", "text", "-o", out)[0] == 0
    assert not out.read_text().startswith("<!DOCTYPE") and "merged vs baseline" in out.read_text()
    # Without -f the suffix still chooses.
    assert cli(capsys, X86, "-s", "merged", "-o", out)[0] == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_v6_with_compression_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Before: --version 6 --compression zstd wrote an uncompressed file without a word.
    out = tmp_path / "b.dat"
    code, _, err = cli(capsys, "record", X86 / "console.log", "-o", out, "--version", "6", "--compression", "zstd")
    assert code == 2 and "version 6 trace.dat has no compression" in one_error_line(err)
    assert not out.exists()
    assert cli(capsys, "record", X86 / "console.log", "-o", out, "--version", "6")[0] == 0


@pytest.mark.parametrize("opt", [["--preserve", "log"], ["--scratch-from", "merged"], ["--seed", "3"],
                                 ["--second", str(C / "console-kernel2.log.gz")]])
def test_kexec_options_without_kexec_are_refused(capsys: pytest.CaptureFixture[str], opt: list[str]) -> None:
    # Before: ignored.
    code, _, err = cli(capsys, "kho", C, *opt)
    assert code == 2 and f"{opt[0]} only means something with --kexec" in one_error_line(err)
    if opt[0] != "--scratch-from":
        code, _, err = cli(capsys, C, "-s", "merged", *opt)
        assert code == 2 and "--kexec" in one_error_line(err)


def test_threshold_takes_sizes_as_the_tool_prints_them(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "--threshold 2MiB" was refused.
    a = cli(capsys, B, "-s", "merged", "--threshold", "2MiB", "-f", "json")
    b = cli(capsys, B, "-s", "merged", "--threshold", "2M", "-f", "json")
    assert a[0] == b[0] == 1 and a[1] == b[1] and '"threshold": 2097152' in a[1]
    code, _, err = cli(capsys, B, "--threshold", "2 parsecs")
    assert code == 2 and "--threshold" in one_error_line(err)


@pytest.mark.parametrize("args", [["-h"], ["kho", "-h"], ["fixture", "add", "-h"], [str(X86), "-h"]])
def test_dash_h_is_help(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "Usage:" in out
    assert "kho-replay compare" not in out  # the default command's help names no hidden command


@pytest.mark.parametrize("args", [[str(X86), "-f", "xml"], [str(X86), "--bogus"], ["kho", OPS, "--seed", "x"],
                                  ["run"], ["record", str(OPS), "-o", "x", "--version", "seven"]])
def test_bad_option_value_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[object]) -> None:
    # Before: a multi-line box whose usage line named the hidden "compare" command.
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    one_error_line(err)


# ---------------------------------------------------------------- one meaning of a trace directory

def test_a_directory_holding_only_trace_dat(capsys: pytest.CaptureFixture[str], tmp_path: Path, dat: Path) -> None:
    # Before: the default command read it; kho and validate said "no console log".
    shutil.copyfile(dat, tmp_path / "trace.dat")
    for cmd in (["validate"], ["kho"], ["run"], ["parse"]):
        code, _, err = cli(capsys, *cmd, tmp_path)
        assert code == 0, (cmd, err)
    assert cli(capsys, tmp_path, "-s", "merged", "-q")[0] == 0


def test_console_kernel1_log_keeps_its_second_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: 135 moved requests from the log, 134 from the directory: the real second kernel was dropped.
    import json

    def moved(path: Path) -> int:
        code, out, _ = cli(capsys, path, "--kexec", "-s", "merged", "-f", "json")
        assert code == 1
        kexec = next(c for c in json.loads(out)["comparisons"] if c["boot"] == "kexec")
        return sum(c["kind"] == "moved" for c in kexec["changes"])

    assert moved(C / "console-kernel1.log") == moved(C)
    # --second says the same thing explicitly, on the default command too.
    code, _, err = cli(capsys, C / "console-kernel1.log", "--kexec", "-s", "merged", "-q", "--second",
                       C / "console-kernel2.log.gz")
    assert code == 1, err


def test_a_lone_console_kernel1_log_says_its_second_kernel_is_missing(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    lone = tmp_path / "console-kernel1.log"
    shutil.copyfile(C / "console-kernel1.log", lone)
    code, _, err = cli(capsys, "kho", lone, "--kexec")
    assert code == 0 and "no console-kernel2.log beside" in err


def test_two_boots_advice_names_the_real_option(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "choose one with boot=N (or split it, e.g. with split-console.py)".
    combined = B / "console.log.gz"
    code, _, err = cli(capsys, "run", combined)
    line = one_error_line(err)
    assert code == 2 and "--boot N" in line and "split-console" not in line and "boot=N" not in line
    for cmd in (["run"], ["kho"], ["parse"]):
        assert cli(capsys, *cmd, combined, "--boot", "1")[0] == 0, cmd
    assert cli(capsys, combined, "--boot", "2", "-s", "merged", "-q")[0] in (0, 1)
    assert cli(capsys, "matrix", combined, "--boot", "1", "-s", "baseline")[0] == 0
    # diff of a combined capture: A its first boot, B its second.
    code, out, err = cli(capsys, "diff", C / "console.log", "-f", "json")
    assert code == 1 and '"boot": "kexec"' in out and "console.log (boot 2)" in out, err


# ---------------------------------------------------------------- diff says which side

def test_diff_locates_gone_requests_in_a(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: a request only A made was located at B's line of the same number.
    import json

    code, out, _ = cli(capsys, "diff", X86, X86_61, "-f", "json")
    assert code == 1
    changes = json.loads(out)["comparisons"][0]["changes"]
    gone = [c for c in changes if c["kind"] == "gone" and not c["synthesized"]]
    assert gone
    lines = {"A": (X86 / "console.log").read_text().splitlines(),
             "B": (X86_61 / "console.log").read_text().splitlines()}
    for c in changes:
        for side, _name, line in re.findall(r"(A|B) (console\.log):(\d+)", c["src"] or ""):
            assert c["caller"].split("+")[0] in lines[side][int(line) - 1], c
        if c["kind"] == "gone":
            assert re.fullmatch(r"(synthesized before )?A console\.log:\d+", c["src"]), c
        if c["kind"] == "added":
            assert re.fullmatch(r"(synthesized before )?B console\.log:\d+", c["src"]), c


# ---------------------------------------------------------------- fixtures

def test_fixture_add_leaves_nothing_behind_on_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Before: the copied directory stayed, and the retry said "exists".
    src = tmp_path / "src"
    src.mkdir()
    (src / "console.log").write_text("[    0.000000] Linux version 7.2.13 (x@y) #1\n\x00garbage\n")
    root = tmp_path / "fixtures"
    root.mkdir()
    for _ in range(2):
        code, _, err = cli(capsys, "fixture", "add", src, "--fixtures", root)
        assert code == 2 and "exists" not in one_error_line(err)
        assert list(root.iterdir()) == []


def test_fixture_from_dir_console_log_is_named_after_dir(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    # Before: named "console".
    src = tmp_path / "my-boot"
    src.mkdir()
    shutil.copyfile(OPS, src / "console.log")
    root = tmp_path / "fixtures"
    code, _, err = cli(capsys, "fixture", "add", src / "console.log", "--fixtures", root)
    assert code == 0, err
    assert (root / "my-boot" / "expected.json").is_file() and not (root / "console").exists()


# ---------------------------------------------------------------- text

def test_scratch_metrics_say_requested_inherited_and_total(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "scratch in place" undefined; a failed scratch's sizes looked reserved; a KHO boot's were 0B.
    import json

    _, out, _ = cli(capsys, B, "-s", "merged", "-f", "json")
    names = {m["name"]: m for c in json.loads(out)["comparisons"] for m in c["metrics"]}
    assert "scratch global requested" in names and "scratch in place" not in names
    assert "kho_scratch[] total" in README
    from kho_replay.parsers import load
    from kho_replay.replay.compare.diff import metrics
    from kho_replay.replay.kho.boot import run_kexec

    cold, kx = run_kexec(load(C / "console-kernel1.log"), "baseline")
    got = {m.name: m for m in metrics(cold, kx)}
    assert got["scratch global inherited"].new == 3 << 30 and got["scratch lowmem inherited"].new == 64 << 20


def test_one_unit_style_and_exact_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "5670.8 MiB" beside "5.5GiB"; 3 GiB + 4 KiB printed as "3GiB".
    from kho_replay.replay.report.units import human

    assert human((3 << 30) + 4096) == "3GiB+4KiB" and human(11 << 29) == "5.5GiB"
    code, out, _ = cli(capsys, "kho", C)
    assert code == 0 and not re.search(r"\d MiB", out)
    assert "global   [0x0000000180000000-0x000000023fffffff] 3GiB" in out


def test_plurals_agree() -> None:
    from kho_replay.replay.compare.diff import Kind, requests_phrase

    assert requests_phrase(2, Kind.now_fails) == "2 requests now fail"
    assert requests_phrase(1, Kind.now_fails) == "1 request now fails"
    assert requests_phrase(1, "changed") == "1 request changed"


def test_text_diff_has_bloat_o_meter_totals_and_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "diff", C)
    assert code == 1
    assert re.search(r"add/remove: \d+/\d+ grow/shrink: \d+/\d+ up/down: \+\S+/-\S+ \(\S+\); moved: \d+", out)
    table = out[out.index("metric "):out.index("metrics unchanged")]
    rows = [ln.split() for ln in table.splitlines()[1:] if ln.strip() and "(cost)" not in ln]
    counts = [int(r[-1]) for r in rows if re.fullmatch(r"[+-]\d+", r[-1])]
    assert counts == sorted(counts, reverse=True)


def test_validate_shows_the_tables_at_the_failing_request(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    # Before: the reserved table at the end of the boot.
    text = (X86 / "console.log").read_text().splitlines(keepends=True)
    text[65] = text[65].replace("0x000000013ffff000-0x000000013fffffff", "0x000000013fffe000-0x000000013fffefff")
    bad = tmp_path / "bad.log"
    bad.write_text("".join(text))
    code, out, _ = cli(capsys, "validate", bad)
    assert code == 1
    m = re.search(r"model just before op (\d+), \S+:65; `kho-replay run --stop-at \1`", out)
    assert m is not None, out
    code, tables, _ = cli(capsys, "run", bad, "--stop-at", m[1])
    assert code == 0 and f"stopped before op {m[1]}" in tables and "MEMBLOCK configuration:" in tables


def test_stop_at_prints_the_tables_at_any_op(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", OPS, "--stop-at", "3")
    assert code == 0 and "stopped before op 3" in out
    full = cli(capsys, "run", OPS)[1]
    assert out.count("reserved[") < full.count("reserved[")
    for spec in ("sparse_init_nid", ":4"):
        assert cli(capsys, "run", OPS, "--stop-at", spec)[0] == 0
    assert cli(capsys, "run", OPS, "--stop-at", "no_such_function")[0] == 2


def test_readme_names_arches_kernels_and_chromium() -> None:
    assert re.search(r"[Ss]upported.*x86_64.*arm64", README, re.S)
    assert "chromium" in README and re.search(r"7\.2.*7\.3", README)


# ---------------------------------------------------------------- exit codes

EXIT_CASES = [
    (["run", OPS], 0), (["run", TRACES / "nope"], 2),
    (["validate", X86], 0), (["validate", TRACES / "nope"], 2),
    (["parse", OPS], 0), (["parse", TRACES / "nope"], 2),
    (["strategies"], 0), (["strategies", "--bogus"], 2),
    (["kho", OPS], 0), (["kho", OPS, "-s", "nosuch"], 2),
    (["matrix", "scenario:scenario-a", "-s", "baseline"], 0), (["matrix", "scenario:nosuch"], 2),
    ([X86, "-s", "merged"], 0), ([B, "-s", "merged"], 1), ([X86, "-s", "nosuch"], 2),
    (["diff", X86, X86], 0), (["diff", X86, X86_61], 1), (["diff", X86, TRACES / "nope"], 2),
    (["fixture", "check", "--fixtures", TRACES / "nope"], 2), (["fixture", "check", X86.name], 0),
    (["record", TRACES / "nope", "-o", "/tmp/kho-replay-never.dat"], 2),
]


@pytest.mark.parametrize(("args", "want"), EXIT_CASES, ids=[" ".join(map(str, a))[-60:] for a, _ in EXIT_CASES])
def test_exit_codes(capsys: pytest.CaptureFixture[str], args: list[object], want: int) -> None:
    code, _, err = cli(capsys, *args)
    assert code == want, err
    if want == 2:
        one_error_line(err)


# ---------------------------------------------------------------- no partial or clobbered file, ever

FAST = {
    "run": lambda i: ["run", i], "parse": lambda i: ["parse", i], "parse-json": lambda i: ["parse", i, "-f", "json"],
    "kho": lambda i: ["kho", i], "record": lambda i: ["record", i], "validate": lambda i: ["validate", i],
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(sorted(FAST)), inp=st.sampled_from(["ops", "log", "cut-log", "garbage", "missing"]),
       out=st.sampled_from(["new", "existing", "input", "missing-dir", "directory"]))
def test_no_command_leaves_a_partial_or_clobbered_file(capsys: pytest.CaptureFixture[str], tmp_path_factory:
                                                       pytest.TempPathFactory, cmd: str, inp: str, out: str) -> None:
    d = tmp_path_factory.mktemp("prop")
    files = {"ops": d / "a.ops", "log": d / "a.log", "cut-log": d / "cut.log", "garbage": d / "g.log"}
    shutil.copyfile(OPS, files["ops"])
    shutil.copyfile(X86 / "console.log", files["log"])
    files["cut-log"].write_bytes((X86 / "console.log").read_bytes()[:20000])
    files["garbage"].write_bytes(b"\x00\x01binary\n" * 10)
    (d / "existing.txt").write_text("precious\n")
    (d / "sub").mkdir()
    src = files.get(inp, d / "missing.log")
    target = {"new": d / "new.out", "existing": d / "existing.txt", "input": src,
              "missing-dir": d / "nodir" / "x.out", "directory": d / "sub"}[out]
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    code, _, err = cli(capsys, *FAST[cmd](src), "-o", target)
    after = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    assert code in (0, 1, 2)
    if code == 2:
        one_error_line(err)
        assert after == before  # nothing written, nothing clobbered, no temporary left
    else:
        assert out in ("new", "existing") and target.stat().st_size > 0
        changed = {p for p in after if before.get(p) != after[p]}
        assert changed == {target}  # only the output, whole (no temporary beside it)
    assert not [p for p in d.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert os.access(d, os.W_OK)


def test_run_of_an_op_script_starts_without_pydantic(tmp_path: Path) -> None:
    # typer builds a pydantic adapter per parameter on first use: ~0.15 CPU-s of a short run's start-up.
    # A str or Path option, or one not given, needs none (the options' meaning is checked above).
    out = tmp_path / "r.txt"
    code = ("import sys\nfrom kho_replay.replay.cli import run_cli\n"
            f"assert run_cli(['run', {str(OPS)!r}, '-o', {str(out)!r}, '--kernel', '7.3']) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "[]", got.stdout + got.stderr
    assert "MEMBLOCK configuration:" in out.read_text()
