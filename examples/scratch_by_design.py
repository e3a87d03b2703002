# SPDX-License-Identifier: GPL-2.0-only
"""Every design on one boot: is scratch reserved, how big, and where do the gigantic pages land?

The boot: 12 GiB x86_64, two 1 GiB pages, kho_scratch=3G.  For each design
the cold boot's scratch and pages, then the KHO boot's pages and how many
of them lie inside the inherited kho_scratch[] (they could not be preserved
across the next kexec).
"""

from pathlib import Path

import kho_replay as kr

TRACE = Path(__file__).resolve().parent.parent / "traces/x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"

t = kr.load(TRACE)
print(f"{'design':20} {'scratch':>8} {'in place':>9} {'cold pages':>11} {'KHO pages':>10} {'in scratch':>11}")
for name in kr.strategies():
    r = kr.replay(t, name, kexec=True)
    cold, kx = r.cold, r.kexec
    assert kx is not None
    print(f"{name:20} {'yes' if cold.scratch.enabled else 'no':>8} {cold.scratch.reserved >> 20:>5} MiB "
          f"{cold.gigantic.allocated:>7}/{cold.gigantic.requested} {kx.gigantic.allocated:>8}/{kx.gigantic.requested} "
          f"{kx.gigantic.in_scratch:>11}")
