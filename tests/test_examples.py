# SPDX-License-Identifier: GPL-2.0-only
"""Every script in examples/ runs and prints exactly its examples/reference_output/<name>.out (as pyelftools does)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_every_example_has_reference_output() -> None:
    assert SCRIPTS
    assert {p.stem for p in SCRIPTS} == {p.stem for p in (EXAMPLES / "reference_output").glob("*.out")}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_output(script: Path, tmp_path: Path) -> None:
    # Run from elsewhere: a script must find its traces itself, not rely on the caller's directory.
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout == (EXAMPLES / "reference_output" / f"{script.stem}.out").read_text()
