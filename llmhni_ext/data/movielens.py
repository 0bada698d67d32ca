"""MovieLens-100K from the raw GroupLens files plus the LLM-written profiles.

Internal ids are the ML-100K ids minus one (943 users, 1,682 items). The default
split is ``u1``: ``u1.base`` / ``u1.test`` (the profiles were written from u1.base,
so other splits leak test information into the texts; ``meta["text_leakage"]``
says so), with a validation part of ``valid_ratio`` of each user's u1.base rows
carved out by ``seed``. ``split`` may also be ``u2``..``u5``, ``ua``, ``ub``.

Every rating is an interaction (implicit feedback). ``noise="natural"`` keeps the
ratings of 2 or less in train labelled noisy and keeps only ratings of 4 or more
in valid and test; a float injects that ratio of random non-interactions
(:func:`llmhni_ext.data.noise.inject_noise`).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import download as dl
from .dataset import DataError, Dataset, Interactions
from .parsing import int_table, read_csv_records, read_text, split_lines
from .root import resolve_data_root
from .splitting import dedupe, drop_seen, per_user_holdout
from .text import readable_title, demographics_text, item_text, liked_text, markdown_to_text, normalize_space, top_liked

N_USERS, N_ITEMS = 943, 1682
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]

#: user_profile option -> (file, text column)
USER_PROFILES = {
    "structured": ("users_structured_100k.csv", "user_profile"),
    "summary": ("users_with_summary_df.csv", "summary"),
    "summary_v2": ("updated_users_with_summary_df_100k.csv", "summary"),
    "none": (None, None),
}
#: item_profile option -> (file, text column)
ITEM_PROFILES = {
    "structured": ("movies_structured_100K.csv", "movie_info"),
    "overview": ("movies_enriched_dataset_100k.csv", "overview"),
    "none": (None, None),
}
SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def _read_ratings(path: Path, cleanup: Dict[str, int], tag: str) -> np.ndarray:
    text = read_text(path, "latin-1")
    arr = int_table(path, text, "\t", 4, names=("user_id", "item_id", "rating", "timestamp"))
    for col, lo, hi, name in ((0, 1, N_USERS, "user_id"), (1, 1, N_ITEMS, "item_id"), (2, 1, 5, "rating")):
        bad = np.flatnonzero((arr[:, col] < lo) | (arr[:, col] > hi))
        if len(bad):
            line = _line_of_row(text, bad[0])
            raise DataError(path, f"{name} {arr[bad[0], col]} outside [{lo}, {hi}] (unknown id or bad rating)", line)
    keep = dedupe(arr[:, 0], arr[:, 1], N_ITEMS + 1, arr[:, 3])
    cleanup[f"duplicates_dropped_{tag}"] = len(arr) - len(keep)
    return arr[keep]


def _line_of_row(text: str, row: int) -> int:
    """1-based line of the row-th non-blank line."""
    k = -1
    for n, ln in enumerate(split_lines(text), 1):
        if ln.strip():
            k += 1
            if k == row:
                return n
    return 0


def _read_items(path: Path) -> Tuple[List[str], List[List[str]], List[str]]:
    text = read_text(path, "latin-1")  # ISO-8859-1: every byte decodes
    titles = [""] * N_ITEMS
    genres: List[List[str]] = [[] for _ in range(N_ITEMS)]
    dates = [""] * N_ITEMS
    seen = np.zeros(N_ITEMS, dtype=bool)
    for n, ln in enumerate(split_lines(text), 1):
        if not ln.strip():
            continue
        f = ln.split("|")
        if len(f) != 5 + len(GENRES):
            raise DataError(path, f"expected {5 + len(GENRES)} '|'-separated fields, found {len(f)}", n)
        try:
            iid = int(f[0])
            flags = [int(x) for x in f[5:]]
        except ValueError:
            raise DataError(path, "item id and genre flags must be integers", n) from None
        if not 1 <= iid <= N_ITEMS:
            raise DataError(path, f"item id {iid} outside [1, {N_ITEMS}]", n)
        i = iid - 1
        titles[i], dates[i] = readable_title(f[1].strip()), f[2].strip()
        genres[i] = [g for g, x in zip(GENRES, flags) if x and g != "unknown"]
        seen[i] = True
    if not seen.all():
        raise DataError(path, f"{int((~seen).sum())} item ids missing, e.g. {int(np.flatnonzero(~seen)[0]) + 1}")
    return titles, genres, dates


def _read_users(path: Path) -> List[Tuple[str, str, str]]:
    text = read_text(path, "latin-1")
    out: List[Optional[Tuple[str, str, str]]] = [None] * N_USERS
    for n, ln in enumerate(split_lines(text), 1):
        if not ln.strip():
            continue
        f = ln.split("|")
        if len(f) != 5:
            raise DataError(path, f"expected 5 '|'-separated fields (id|age|gender|occupation|zip), found {len(f)}", n)
        try:
            uid = int(f[0])
        except ValueError:
            raise DataError(path, f"user id is not an integer: {f[0]!r}", n) from None
        if not 1 <= uid <= N_USERS:
            raise DataError(path, f"user id {uid} outside [1, {N_USERS}]", n)
        out[uid - 1] = (f[1], f[2], f[3])
    missing = [i + 1 for i, x in enumerate(out) if x is None]
    if missing:
        raise DataError(path, f"{len(missing)} user ids missing, e.g. {missing[0]}")
    return out  # type: ignore[return-value]


def _read_profiles(path: Path, key: str, column: str, n: int, cleanup: Dict[str, int], tag: str) -> List[str]:
    st = path.stat()
    texts, unknown, dup = _read_profiles_cached(str(path), st.st_mtime_ns, st.st_size, key, column, n)
    cleanup[f"{tag}_profile_rows_unknown_id"] = unknown
    cleanup[f"{tag}_profile_rows_duplicate"] = dup
    return list(texts)


@functools.lru_cache(maxsize=8)
def _read_profiles_cached(path_s: str, _mtime: int, _size: int, key: str, column: str, n: int):
    """Parsed once per process per file version (``compare`` loads the data set once per run)."""
    path = Path(path_s)
    head, records = read_csv_records(path)
    if key not in head or column not in head:
        raise DataError(path, f"expected columns {key!r} and {column!r}, found {head[:8]}...", 1)
        # (a profile file of another kind was chosen?)
    ki, ci = head.index(key), head.index(column)
    out = [""] * n
    unknown = dup = 0
    for line, rec in records:
        if len(rec) != len(head):
            raise DataError(path, f"expected {len(head)} fields, found {len(rec)}", line)
        try:
            rid = int(float(rec[ki]))
        except ValueError:
            raise DataError(path, f"{key} is not an integer: {rec[ki]!r}", line) from None
        if not 1 <= rid <= n:
            unknown += 1
            continue
        txt = rec[ci].strip()
        if out[rid - 1]:
            dup += 1
        out[rid - 1] = txt
    return tuple(out), unknown, dup


@functools.lru_cache(maxsize=4096)
def _item_markdown(p: str, keep_dislikes: bool) -> str:
    return markdown_to_text(p, drop_sections=() if keep_dislikes else ("Dislikes",), drop_title=True)


@functools.lru_cache(maxsize=2048)
def _user_markdown(p: str) -> str:
    return markdown_to_text(p)


def load_ml100k(data_root=None, *, split: str = "u1", valid_ratio: float = 0.1, seed: int = 0,
                noise="none", user_profile: str = "structured", item_profile: str = "structured",
                liked_titles: int = 10, keep_dislikes: bool = False, download: bool = True,
                ml100k_url: Optional[str] = None, profiles_base_url: Optional[str] = None,
                verify: bool = True) -> Dataset:
    """MovieLens-100K with user and item texts.

    ``user_profile``: ``"structured"`` (default, users_structured_100k.csv), ``"summary"``
    (users_with_summary_df.csv), ``"summary_v2"`` (updated_users_with_summary_df_100k.csv) or
    ``"none"`` (demographics plus liked titles for everyone). ``item_profile``:
    ``"structured"`` (default, movies_structured_100K.csv), ``"overview"`` (TMDB overview and
    tagline from movies_enriched_dataset_100k.csv) or ``"none"`` (title and genres only).
    Items without a profile fall back to title and genres; users without one to
    demographics plus their ``liked_titles`` best-rated training titles. The structured item
    profiles end with a "Dislikes" section that lists genres the film is *not*; it is left out
    unless ``keep_dislikes``.

    The files are checked against their published sha256 sums after they parse (``verify``;
    cached per file size and modification time), so a truncated or altered copy is refused;
    ``verify=False`` accepts a copy you changed on purpose.
    """
    if split not in SPLITS:
        raise ValueError(f"ml-100k split must be one of {', '.join(SPLITS)}, got {split!r}")
    if user_profile not in USER_PROFILES:
        raise ValueError(f"user_profile must be one of {', '.join(USER_PROFILES)}, got {user_profile!r}")
    if item_profile not in ITEM_PROFILES:
        raise ValueError(f"item_profile must be one of {', '.join(ITEM_PROFILES)}, got {item_profile!r}")
    if not 0 <= valid_ratio < 1:
        raise ValueError(f"valid_ratio must be in [0, 1), got {valid_ratio}")
    root = resolve_data_root(data_root)
    base, test_f = f"{split}.base", f"{split}.test"
    folder = dl.ensure_ml100k(root, ["u.item", "u.user", base, test_f], url=ml100k_url, download=download)
    prof_files = [f for f in (USER_PROFILES[user_profile][0], ITEM_PROFILES[item_profile][0]) if f]
    pfolder = dl.ensure_profiles(root, prof_files, base_url=profiles_base_url, download=download) if prof_files else None

    cleanup: Dict[str, int] = {}
    tr = _read_ratings(folder / base, cleanup, "train")
    te = _read_ratings(folder / test_f, cleanup, "test")
    rng = np.random.default_rng(seed)
    hold = per_user_holdout(tr[:, 0], valid_ratio, rng)
    va, tr = tr[hold], tr[~hold]

    def inter(a):
        return Interactions(a[:, 0] - 1, a[:, 1] - 1, a[:, 2].astype(np.float32), a[:, 3])

    train, valid, test = inter(tr), inter(va), inter(te)
    test, k = drop_seen(train, test, N_ITEMS)
    cleanup["test_rows_in_train_dropped"] = k
    counts = np.bincount(train.users.numpy(), minlength=N_USERS)
    cleanup["users_without_train_rows"] = int((counts == 0).sum())

    titles, genres, _dates = _read_items(folder / "u.item")
    demo = _read_users(folder / "u.user")

    # item texts
    ifile, icol = ITEM_PROFILES[item_profile]
    iprof = _read_profiles(pfolder / ifile, "movie_id", icol, N_ITEMS, cleanup, "item") if ifile else [""] * N_ITEMS
    if item_profile == "structured":
        body = [_item_markdown(p, keep_dislikes) for p in iprof]
    else:
        body = [normalize_space(p) for p in iprof]
    cleanup["items_without_profile"] = sum(1 for b in body if not b) if ifile else 0
    item_texts = [item_text(t, g, b) for t, g, b in zip(titles, genres, body)]

    # user texts
    ufile, ucol = USER_PROFILES[user_profile]
    uprof = _read_profiles(pfolder / ufile, "user_id", ucol, N_USERS, cleanup, "user") if ufile else [""] * N_USERS
    uprof = [_user_markdown(p) if user_profile == "structured" else normalize_space(p) for p in uprof]
    liked = top_liked(train.users.numpy(), train.items.numpy(), train.ratings.numpy(),
                      train.timestamps.numpy(), N_USERS, liked_titles)
    demo_txt = [demographics_text(a, g, o) for a, g, o in demo]
    liked_txt = [liked_text([titles[i] for i in lk]) for lk in liked]
    user_texts = [p if p else f"{d} {lt}".strip() for p, d, lt in zip(uprof, demo_txt, liked_txt)]
    cleanup["users_without_profile"] = sum(1 for p in uprof if not p) if ufile else N_USERS
    if verify:   # after parsing, so a malformed line is reported as such; then truncated or altered copies
        dl.verify_known(folder, ["u.item", "u.user", base, test_f], dl.ML100K_SHA256)
        if pfolder is not None:
            dl.verify_known(pfolder, prof_files, {k: v[1] for k, v in dl.PROFILE_FILES.items()})

    ds = Dataset(
        name="ml-100k", n_users=N_USERS, n_items=N_ITEMS, train=train, valid=valid, test=test,
        user_text=user_texts, item_text=item_texts,
        user_raw_ids=list(range(1, N_USERS + 1)), item_raw_ids=list(range(1, N_ITEMS + 1)),
        user_fields={"profile": uprof, "demographics": demo_txt, "liked": liked_txt},
        item_fields={"title": titles, "genres": [", ".join(g) for g in genres], "profile": body},
        meta={"source": str(folder), "profiles": str(pfolder) if pfolder else None, "split": split,
              "valid_ratio": valid_ratio, "seed": seed, "user_profile": user_profile,
              "item_profile": item_profile, "text_leakage": split != "u1" and bool(ufile),
              "cleanup": cleanup, "noise": "none", "ratings": "1-5 stars"},
    )
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
