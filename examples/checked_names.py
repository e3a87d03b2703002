# SPDX-License-Identifier: GPL-2.0-only
"""Names are checked where they enter: a misspelt design option or preserve spec is an error, not a default."""

import kho_replay as kr

for spec in ("merged", "inverted-ext+protect-scratch", "merged+exclude-hugetbl", "reserve-early+exclude-hugetlb"):
    try:
        print(f"{spec}: ok, {kr.StrategySpec.parse(spec)!r}")
    except kr.KhoReplayError as e:
        print(f"{spec}: error: {e}")

for spec in ("hugetlb", "memfd:64M:2M", "memfd:64M:3K", "hugetbl"):
    try:
        print(f"--preserve {spec}: ok, {kr.PreserveSpec.parse(spec)!r}")
    except kr.KhoReplayError as e:
        print(f"--preserve {spec}: error: {e}")

print([str(o) for o in kr.Option], [str(s) for s in list(kr.Subsystem)[:3]])
