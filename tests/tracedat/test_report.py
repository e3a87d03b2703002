# SPDX-License-Identifier: GPL-2.0-only
"""Every synthetic file renders exactly as trace-cmd 3.1.6's ``report -t`` did."""

from __future__ import annotations

import pytest
from tracedat_testdata import SYNTHETIC, SYNTHETIC_FILES

from kho_replay.parsers.tracedat import open_tracedat
from kho_replay.parsers.tracedat.render import render_report


def test_the_conformance_set_is_complete() -> None:
    assert len(SYNTHETIC_FILES) == 8
    assert all((SYNTHETIC / n).with_suffix(".report").exists() for n in SYNTHETIC_FILES)


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_report_is_byte_identical(name: str) -> None:
    want = (SYNTHETIC / name).with_suffix(".report").read_bytes()
    with open_tracedat(SYNTHETIC / name) as td:
        got = "".join(line + "\n" for line in render_report(td)).encode("utf-8", "surrogateescape")
    assert got == want
