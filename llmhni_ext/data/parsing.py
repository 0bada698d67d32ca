"""Reading text files with errors that name the file and the line.

Every loader goes through these helpers so that a bad encoding, a short row or
a non-numeric id is reported as ``path:line: what is wrong`` (a
:class:`~llmhni_ext.data.dataset.DataError`), never as a bare traceback.
"""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .dataset import DataError


def read_text(path, encoding: str = "utf-8") -> str:
    """The whole file decoded with ``encoding``; a bad byte is reported with its line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(path, f"not valid {encoding} (byte 0x{data[e.start]:02x} at offset {e.start}); "
                              f"re-encode the file as {encoding} or pass the right encoding", line) from None
    return text[1:] if text.startswith("\ufeff") else text    # a UTF-8 byte-order mark is not data


def split_lines(text: str) -> List[str]:
    """Lines without terminators (LF or CRLF); a final empty line is dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def int_table(path, text: str, sep: Optional[str], ncols: int, *, first_line: int = 1,
              lines: Optional[List[str]] = None, names: Sequence[str] = ()) -> np.ndarray:
    """Parse rows of exactly ``ncols`` integer fields into an ``[n, ncols]`` int64 array.

    ``sep=None`` splits on runs of whitespace. Blank lines are skipped. Errors name
    the file and line (``first_line`` is the number of the first line in ``text``).
    """
    if lines is None and sep in (None, "\t", " "):
        try:
            fast = fast_int_lines(text.encode("ascii"))
        except UnicodeEncodeError:
            fast = None
        if fast is not None:
            vals, counts = fast
            if ((counts == 0) | (counts == ncols)).all():
                return vals.reshape(-1, ncols)
    if lines is None:
        lines = split_lines(text)
    rows: List[List[str]] = []
    line_no: List[int] = []
    for k, ln in enumerate(lines):
        if not ln.strip():
            continue
        f = ln.split(sep) if sep is not None else ln.split()
        if len(f) != ncols:
            what = f" ({', '.join(names)})" if names else ""
            raise DataError(path, f"expected {ncols} fields{what} separated by {sep!r}, found {len(f)}: {ln[:80]!r}",
                            first_line + k)
        rows.append(f)
        line_no.append(first_line + k)
    if not rows:
        return np.zeros((0, ncols), dtype=np.int64)
    try:
        return np.array(rows, dtype=np.int64)
    except ValueError:
        for f, n in zip(rows, line_no):
            for j, tok in enumerate(f):
                try:
                    int(tok)
                except ValueError:
                    col = names[j] if j < len(names) else f"field {j + 1}"
                    raise DataError(path, f"{col} is not an integer: {tok!r}", n) from None
        raise


def number_table(path, rows: List[List[str]], line_no: List[int], names: Sequence[str],
                 dtype=np.float64) -> np.ndarray:
    """Convert string columns to numbers, naming the file, line and column of a bad value."""
    if not rows:
        return np.zeros((0, len(names)), dtype=dtype)
    try:
        return np.array(rows, dtype=dtype)
    except ValueError:
        for f, n in zip(rows, line_no):
            for j, tok in enumerate(f):
                try:
                    float(tok)
                except ValueError:
                    raise DataError(path, f"{names[j]} is not a number: {tok!r}", n) from None
        raise


def finite_column(path, values: np.ndarray, line_no: Sequence[int], name: str, *, integer: bool = False) -> np.ndarray:
    """``values`` (float64) checked to be finite numbers (and, with ``integer``, to fit int64);
    the first bad one is reported with its line. Returns float32 or int64."""
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(path, f"{name} is not a finite number: {values[bad[0]]}", line_no[bad[0]])
    if not integer:
        return values.astype(np.float32)
    big = np.flatnonzero(np.abs(values) >= 2.0 ** 62)
    if len(big):
        raise DataError(path, f"{name} {values[big[0]]:.0f} is out of range", line_no[big[0]])
    return values.astype(np.int64)


def read_csv_records(path, *, delimiter: str = ",", encoding: str = "utf-8",
                     header: bool = True) -> Tuple[List[str], List[Tuple[int, List[str]]]]:
    """(header, [(line_number, fields)]) of a CSV with quoted multi-line fields.

    The line number is that of the record's first physical line.
    """
    text = read_text(path, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: List[Tuple[int, List[str]]] = []
    head: List[str] = []
    start = 1
    try:
        for rec in reader:
            if header and not head and not records:
                head = [h.strip() for h in rec]
            elif rec and any(x.strip() for x in rec):
                records.append((start, rec))
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(path, f"malformed CSV ({e})", reader.line_num) from None
    return head, records


_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[[ord(c) for c in "0123456789 \t\r\n"]] = True


def fast_int_lines(data: bytes) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Vectorised parse of whitespace-separated non-negative integers.

    Returns (values, tokens per line) where lines are split on LF (a final line without
    LF counts), or None when the bytes hold anything but digits and whitespace or a value
    would overflow (the caller then takes the slow path, which names the bad line).
    """
    b = np.frombuffer(data, dtype=np.uint8)
    if len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not _ALLOWED[b].all():
        return None
    digit = (b >= 48) & (b <= 57)
    start = digit.copy()
    start[1:] &= ~digit[:-1]
    s_idx = np.flatnonzero(start)
    end = digit.copy()
    end[:-1] &= ~digit[1:]
    if len(s_idx) and (np.flatnonzero(end) - s_idx).max() >= 18:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        vals = np.fromstring(data.decode("ascii"), dtype=np.int64, sep=" ")  # C parser; whitespace-separated
    if len(vals) != len(s_idx):
        return None
    nl = np.flatnonzero(b == 10)
    n_lines = len(nl) + (0 if b[-1] == 10 else 1)
    counts = np.bincount(np.searchsorted(nl, s_idx), minlength=n_lines).astype(np.int64)
    return vals, counts
