"""The two judging perspectives' prompts and the strict label parser.

User-centric: the user's profile, then the candidate item. Item-centric: the items the
user interacted with that the backbone scores highest, then the candidate item. The
chat judges answer with exactly one of High, Mid, Low; the likelihood judges use the
same contexts without the question (see :mod:`.judges.local_lm`).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

#: bump when a prompt changes: cached judgments are keyed by it
PROMPT_VERSION = "v1"
LABELS = ("High", "Mid", "Low")
PERSPECTIVES = ("user", "item")

SYSTEM = ("You judge whether a user would genuinely like a recommended {noun}. "
          "Answer with exactly one word: High, Mid or Low.")


def user_centric_prompt(profile: str, item: str, noun: str = "item") -> str:
    return (f"User profile:\n{profile.strip()}\n\n"
            f"Candidate {noun}:\n{item.strip()}\n\n"
            f"Given only this user's profile, how relevant is the candidate {noun} to the user? "
            f"Answer with exactly one word: High, Mid or Low.")


def item_centric_prompt(history: Sequence[str], item: str, noun: str = "item") -> str:
    lines = "\n".join(f"- {h.strip()}" for h in history)
    return (f"{noun.capitalize()}s this user interacted with and liked most:\n{lines}\n\n"
            f"Candidate {noun}:\n{item.strip()}\n\n"
            f"Given only these {noun}s, how consistent is the candidate {noun} with the user's taste? "
            f"Answer with exactly one word: High, Mid or Low.")


_STRIP = re.compile(r"^[\s\"'`*_.:()\[\]]+|[\s\"'`*_.:!()\[\]]+$")
_PREFIX = re.compile(r"^(answer|label|relevance|rating)\s*[:=-]\s*", re.IGNORECASE)


def parse_label(text: Optional[str]) -> Optional[str]:
    """The label in an answer, or None when it is not exactly one of High/Mid/Low.

    Strict: accepts the bare word with surrounding quotes, markdown emphasis or final
    punctuation, optionally after ``Answer:``/``Label:``; case-insensitive. Anything
    else (two labels, a sentence, "Medium", "Very high") is unparseable."""
    if text is None:
        return None
    s = _STRIP.sub("", str(text).strip())
    s = _PREFIX.sub("", s)
    s = _STRIP.sub("", s)
    for lab in LABELS:
        if s.lower() == lab.lower():
            return lab
    return None


def guess_noun(dataset_name: str) -> str:
    n = dataset_name.lower()
    if "lastfm" in n or "last.fm" in n or "music" in n:
        return "artist"
    if "book" in n:
        return "book"
    if "ml-" in n or "movie" in n or "synthetic" in n or "ml_" in n:
        return "movie"
    return "item"
