"""Append-only cache of judgments: one JSON line per record, flushed as it is written.

Keyed by (dataset, user, item, perspective, judge, prompt version). A run killed at any
moment leaves at worst a torn last line, which the reader skips (and the writer starts
on a fresh line), so resuming redoes nothing that was recorded and corrupts nothing.
Records carry a label (High/Mid/Low, or "unknown" after unparseable answers) and/or a
score (likelihood and similarity judges, labelled after calibration).
"""
from __future__ import annotations

import json
import os
import threading
from typing import Dict, Iterable, Iterator, Optional, Tuple

Key = Tuple[str, int, int, str, str, str]


class JudgmentCache:
    def __init__(self, path: Optional[str]) -> None:
        """``path`` None keeps the records in memory only."""
        self.path = path
        self._lock = threading.Lock()
        self._records: Dict[Key, dict] = {}
        self.torn_lines = 0
        self._fh = None
        if path:
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
            if os.path.exists(path):
                for rec in self._read(path):
                    self._records[self.key_of(rec)] = rec
                needs_newline = False
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    if f.tell() > 0:
                        f.seek(-1, os.SEEK_END)
                        needs_newline = f.read(1) != b"\n"
                self._fh = open(path, "a", encoding="utf-8")
                if needs_newline:       # a torn last line: start the next record on a fresh line
                    self._fh.write("\n")
                    self._fh.flush()
            else:
                self._fh = open(path, "a", encoding="utf-8")

    def _read(self, path: str) -> Iterator[dict]:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                    self.key_of(rec)
                except (ValueError, KeyError, TypeError):
                    self.torn_lines += 1
                    continue
                yield rec

    @staticmethod
    def key_of(rec: dict) -> Key:
        return (str(rec["dataset"]), int(rec["user"]), int(rec["item"]), str(rec["perspective"]),
                str(rec["judge"]), str(rec["version"]))

    @staticmethod
    def make_key(dataset: str, user: int, item: int, perspective: str, judge: str, version: str) -> Key:
        return (str(dataset), int(user), int(item), str(perspective), str(judge), str(version))

    def get(self, key: Key) -> Optional[dict]:
        return self._records.get(key)

    def __contains__(self, key: Key) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def put(self, rec: dict) -> None:
        """Records one judgment (first write wins; a repeated key is ignored)."""
        key = self.key_of(rec)
        with self._lock:
            if key in self._records:
                return
            self._records[key] = rec
            if self._fh is not None:
                self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
                self._fh.flush()

    def put_many(self, recs: Iterable[dict]) -> None:
        for r in recs:
            self.put(r)

    def records(self) -> Iterator[dict]:
        return iter(list(self._records.values()))

    def close(self) -> None:
        if self._fh is not None:
            try:
                os.fsync(self._fh.fileno())
            except OSError:
                pass
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "JudgmentCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
