"""Building user and item texts for the semantic signals.

Item text: ``"<title>. Genres: <g1>, <g2>. <profile or overview>"``. User text: the
LLM-written profile where one exists, else demographics plus liked titles
(``"A 24-year-old male technician. Liked movies: A; B; C."``). Markdown profiles
are flattened to plain sentences (headers removed, ``- **Genre**: X`` becomes
``Genre: X.``) so a text encoder spends its token budget on content.
"""
from __future__ import annotations

import re
from typing import Iterable, List, Optional, Sequence

_HEADER = re.compile(r"^\s*#{1,6}\s*(.*?)\s*:?\s*$")
_BULLET = re.compile(r"^\s*[-*]\s+")
_BOLD = re.compile(r"\*\*(.*?)\*\*|__(.*?)__")
_WS = re.compile(r"\s+")


_ARTICLE = re.compile(r"^(.*?), (The|A|An|La|Le|Les|L'|Il|El|Das|Die|Der)(\s*\(.*\))?\s*$")


def readable_title(title: str) -> str:
    """``"Full Monty, The (1997)"`` -> ``"The Full Monty (1997)"`` (MovieLens files move articles to the end)."""
    m = _ARTICLE.match(title or "")
    if not m:
        return title
    sep = "" if m.group(2).endswith("'") else " "
    return f"{m.group(2)}{sep}{m.group(1)}{m.group(3) or ''}"


def normalize_space(s: str) -> str:
    return _WS.sub(" ", s or "").strip()


def markdown_to_text(md: Optional[str], drop_sections: Sequence[str] = (), drop_title: bool = False) -> str:
    """Plain text of a markdown profile; sections whose header is in ``drop_sections``
    (case-insensitive) are left out, and so is a leading ``# Title`` line when ``drop_title``."""
    if not md:
        return ""
    drop = {d.strip().lower() for d in drop_sections}
    out: List[str] = []
    skipping = False
    first = True
    for raw in md.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _HEADER.match(line)
        if m:
            head = m.group(1).strip().rstrip(":").strip()
            level = len(line) - len(line.lstrip("#"))
            skipping = head.lower() in drop
            if level == 1 and first and drop_title:
                first = False
                continue
            first = False
            continue
        first = False
        if skipping:
            continue
        line = _BULLET.sub("", line)
        line = _BOLD.sub(lambda mm: mm.group(1) or mm.group(2) or "", line)
        if line and line[-1] not in ".!?":
            line += "."
        out.append(line)
    return normalize_space(" ".join(out))


def join_sentences(parts: Iterable[Optional[str]]) -> str:
    """Non-empty parts joined as sentences."""
    keep = []
    for p in parts:
        p = normalize_space(p or "")
        if not p:
            continue
        if p[-1] not in ".!?":
            p += "."
        keep.append(p)
    return " ".join(keep)


def demographics_text(age=None, gender=None, occupation=None) -> str:
    g = {"M": "male", "F": "female"}.get(str(gender).upper(), str(gender).lower()) if gender else ""
    words = []
    if age not in (None, ""):
        words.append(f"{age}-year-old")
    if g:
        words.append(g)
    if occupation and str(occupation).lower() not in ("none", "other"):
        words.append(str(occupation))
    else:
        words.append("person")
    return "A " + " ".join(words) + "."


def liked_text(titles: Sequence[str], noun: str = "movies") -> str:
    titles = [normalize_space(t) for t in titles if t]
    return f"Liked {noun}: " + "; ".join(titles) + "." if titles else ""


def item_text(title: Optional[str], genres: Sequence[str] = (), body: Optional[str] = None) -> str:
    return join_sentences([title, ("Genres: " + ", ".join(genres)) if genres else None, body])


def top_liked(users, items, ratings, timestamps, n_users: int, k: int, min_rating: float = 4.0) -> List[List[int]]:
    """Per user, up to ``k`` item ids of their best-rated (then most recent) training rows
    with rating >= ``min_rating``; users without such rows get their most recent items."""
    import numpy as np
    users = np.asarray(users)
    items = np.asarray(items)
    r = np.asarray(ratings, dtype=np.float64) if ratings is not None else np.zeros(len(users))
    t = np.asarray(timestamps, dtype=np.int64) if timestamps is not None else np.arange(len(users))
    order = np.lexsort((-t, -r, users))
    out: List[List[int]] = [[] for _ in range(n_users)]
    fallback: List[List[int]] = [[] for _ in range(n_users)]
    for idx in order:
        u = users[idx]
        if r[idx] >= min_rating or ratings is None:
            if len(out[u]) < k:
                out[u].append(int(items[idx]))
        elif len(fallback[u]) < k:
            fallback[u].append(int(items[idx]))
    return [o if o else f for o, f in zip(out, fallback)]
