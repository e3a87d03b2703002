# SPDX-License-Identifier: GPL-2.0-only
"""Every JSON document follows the one convention of replay/report/json.py (README "JSON documents")."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.replay.cli import app
from kho_replay.replay.report.json import SCHEMA_VERSION

TRACES = Path(__file__).resolve().parent.parent / "traces"
B = TRACES / "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"
ADDRESS = re.compile(r"^0x[0-9a-f]{16}$")
#: Keys whose values are physical addresses, wherever they stand.
ADDRESS_KEYS = {"base", "addr", "old_addr", "new_addr", "limit", "min_addr", "max_addr", "addrs"}
#: Keys whose values are byte counts.
SIZE_KEYS = {"size", "old_size", "new_size", "lowmem", "global", "rsrv_kern", "rsrv_hugetlb", "free", "align"}

COMMANDS = {
    "run": ["run", str(TRACES / "examples" / "doubling.ops")],
    "parse": ["parse", str(TRACES / "examples" / "doubling.ops")],
    "validate": ["validate", str(B / "console.log.gz")],
    "kho": ["kho", str(B), "-s", "merged", "--kexec"],
    "compare": ["compare", str(B), "-s", "merged", "--kexec"],
    "diff": ["diff", str(B / "console-kernel1.log.gz"), str(B / "console-kernel2.log.gz")],
}


def _walk(key: str, v: object) -> Iterator[tuple[str, object]]:
    yield key, v
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _walk(k, x)
    elif isinstance(v, list):
        for x in v:
            yield from _walk(key, x)


def _check(doc: dict) -> None:
    for key, v in _walk("", doc):
        assert not key.endswith("_"), f"key {key!r} is a Python identifier"
        if isinstance(v, list):
            assert not any(isinstance(x, list | tuple) for x in v), f"{key}: positional list {v[:2]}"
        if key in ADDRESS_KEYS and isinstance(v, str) and v != "failed":
            assert ADDRESS.match(v), f"{key}: {v!r} is not a 0x%016x address"
        if key in SIZE_KEYS and not isinstance(v, list | dict):
            assert v is None or isinstance(v, int), f"{key}: {v!r} is not an integer size"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_documents(name: str) -> None:
    r = CliRunner().invoke(app, [*COMMANDS[name], "--format", "json"])
    assert r.exit_code in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == SCHEMA_VERSION
    _check(doc)


@pytest.mark.parametrize("fixture", sorted(p.parent.name for p in TRACES.glob("*/expected.json")))
def test_fixture_documents(fixture: str) -> None:
    doc = json.loads((TRACES / fixture / "expected.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    _check(doc)
