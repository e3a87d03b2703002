# SPDX-License-Identifier: GPL-2.0-only
"""Run every module's ``>>>`` examples against the installed package.

Doctests are collected here rather than with ``--doctest-modules`` so that they
import ``kho_replay.*`` exactly as users do (the source tree maps ``replay/``
and ``parsers/`` to those names only when installed).
"""

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("kho_replay.replay", "kho_replay.parsers")


def _modules() -> list[str]:
    names = ["kho_replay", "kho_replay.api", *PACKAGES]
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            names.append(info.name)
    return sorted(names)


def test_every_module_is_collected() -> None:
    assert "kho_replay.replay.memblock.engine" in _modules()


@pytest.mark.parametrize("name", _modules())
def test_doctests(name: str) -> None:
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
