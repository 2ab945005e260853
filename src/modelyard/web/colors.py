"""One colour per run on every page: the run comparison's charts, a run's own history charts
and the comparison of evaluations all colour a run the same, from its id.

The palette follows Okabe & Ito's colour-blind-safe set, with the orange and sky blue darkened
and a violet and a grey added, so that every colour keeps at least 2.8:1 contrast on the light
theme's panels and 3.3:1 on the dark theme's: one colour serves both themes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#B8860B",  # dark orange-gold
    "#8E6BBF",  # violet
    "#3D9BD6",  # sky blue
    "#888888",  # grey
)


def _slot(run_id: str) -> int:
    digest = hashlib.blake2b(run_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % len(PALETTE)


def run_color(run_id: str) -> str:
    """The colour of a run, the same on every page and for every user."""
    return PALETTE[_slot(run_id)]


def series_colors(run_ids: Sequence[str | None]) -> list[str]:
    """Colours for series shown together, one per entry in page order: each its run's own
    colour, unless an earlier series on the page already has it (two runs whose ids land on
    one colour, or two evaluations of one run); then the next free colour along the palette.
    A page shows a given list of runs the same way wherever it appears."""
    taken: set[int] = set()
    out = []
    for i, run_id in enumerate(run_ids):
        slot = _slot(run_id) if run_id else i % len(PALETTE)
        if len(taken) < len(PALETTE):
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
        taken.add(slot)
        out.append(PALETTE[slot])
    return out
