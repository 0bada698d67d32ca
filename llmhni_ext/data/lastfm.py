"""Last.fm HetRec 2011 (``<root>/lastfm-hetrec2011-2k/``): user-artist listening counts.

``user_artists.dat`` (``userID artistID weight``, tab-separated, header row, CRLF) gives
the interactions; ``ratings`` hold the listening counts (not stars, so natural noise
does not apply). Item text is the artist name from ``artists.dat`` (UTF-8). Rows are
split at random per user by ``ratios`` and ``seed``.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from .assemble import assemble
from .dataset import DataError, Dataset
from .parsing import int_table, read_text, split_lines
from .root import resolve_data_root

FOLDER = "lastfm-hetrec2011-2k"


def load_lastfm_hetrec(data_root=None, *, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                       noise="none") -> Dataset:
    folder = resolve_data_root(data_root) / FOLDER
    ua = folder / "user_artists.dat"
    if not ua.is_file():
        raise FileNotFoundError(f"{ua} not found (Last.fm HetRec 2011 is not downloaded automatically; put "
                                f"hetrec2011-lastfm-2k's files in {folder})")
    lines = split_lines(read_text(ua, "utf-8"))
    if not lines or not lines[0].lower().startswith("userid"):
        raise DataError(ua, "expected the header 'userID\\tartistID\\tweight'", 1)
    arr = int_table(ua, "", "\t", 3, first_line=2, lines=lines[1:], names=("userID", "artistID", "weight"))
    names: Dict[str, str] = {}
    af = folder / "artists.dat"
    if af.is_file():
        alines = split_lines(read_text(af, "utf-8"))
        for k, ln in enumerate(alines[1:], 2):
            if not ln.strip():
                continue
            f = ln.split("\t")
            if len(f) < 2:
                raise DataError(af, f"expected id<TAB>name<TAB>url<TAB>pictureURL, found {len(f)} fields", k)
            names[f[0].strip()] = " ".join(f[1].split())
    ds = assemble("lastfm-hetrec", arr[:, 0], arr[:, 1], ratings=arr[:, 2].astype(np.float32), ratios=ratios,
                  seed=seed, meta={"source": str(folder), "format": "hetrec", "ratings": "listening counts",
                                   "ratios": list(ratios)},
                  item_text={k: v for k, v in names.items()} if names else None)
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
