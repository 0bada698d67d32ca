"""The one dataset object every loader returns, and the errors loaders raise.

A :class:`Dataset` holds implicit-feedback interactions as three splits of
(user, item) rows with internal, contiguous ids (``0..n_users-1`` and
``0..n_items-1``), the raw ids they came from, optional user and item texts, and
``train_noise``: per training row, whether the row is known to be noise
(injected by :func:`llmhni_ext.data.inject_noise`, or a rating of 2 or less under
natural noise). ``meta`` records provenance, options and every clean-up the
loader made, with counts.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch


class DataError(ValueError):
    """A data file is malformed; names the file and, where it applies, the line (1-based)."""

    def __init__(self, path: Union[str, Path, None], message: str, line: Optional[int] = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        where = self.path or "<data>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


def _as_long(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(torch.long)
    return torch.as_tensor(np.asarray(x, dtype=np.int64))


@dataclass
class Interactions:
    """(user, item) rows of one split, internal ids; ``ratings``/``timestamps`` align with rows."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: Optional[torch.Tensor] = None
    timestamps: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        self.users = _as_long(self.users)
        self.items = _as_long(self.items)
        n = self.users.numel()
        if self.users.dim() != 1 or self.items.dim() != 1 or self.items.numel() != n:
            raise ValueError(f"Interactions: users and items must be 1-D of equal length, got "
                             f"{tuple(self.users.shape)} and {tuple(self.items.shape)}")
        if self.ratings is not None:
            self.ratings = torch.as_tensor(np.asarray(self.ratings, dtype=np.float32)
                                           if not isinstance(self.ratings, torch.Tensor) else self.ratings,
                                           dtype=torch.float32)
            if self.ratings.shape != (n,):
                raise ValueError(f"Interactions: ratings must have shape ({n},), got {tuple(self.ratings.shape)}")
        if self.timestamps is not None:
            self.timestamps = _as_long(self.timestamps)
            if self.timestamps.shape != (n,):
                raise ValueError(f"Interactions: timestamps must have shape ({n},), got {tuple(self.timestamps.shape)}")

    def __len__(self) -> int:
        return int(self.users.numel())

    @classmethod
    def empty(cls, with_ratings: bool = False, with_timestamps: bool = False) -> "Interactions":
        z = torch.zeros(0, dtype=torch.long)
        return cls(z, z.clone(), torch.zeros(0) if with_ratings else None,
                   z.clone() if with_timestamps else None)

    def select(self, index) -> "Interactions":
        """Rows at ``index`` (bool mask or integer index, tensor or array)."""
        idx = torch.as_tensor(np.asarray(index)) if not isinstance(index, torch.Tensor) else index
        return Interactions(self.users[idx], self.items[idx],
                            None if self.ratings is None else self.ratings[idx],
                            None if self.timestamps is None else self.timestamps[idx])

    def pairs(self) -> torch.Tensor:
        """``[len, 2]`` LongTensor of (user, item)."""
        return torch.stack([self.users, self.items], dim=1)

    def keys(self, n_items: int) -> np.ndarray:
        """``user * n_items + item`` as int64 numpy (for set operations)."""
        return self.users.numpy() * np.int64(n_items) + self.items.numpy()


@dataclass
class Dataset:
    """Train/valid/test interactions, id maps, texts and noise labels of one data set.

    ``user_text[u]`` / ``item_text[i]`` are the built texts (see :mod:`llmhni_ext.data.text`)
    or None where the data set has no text. ``user_fields`` / ``item_fields`` hold the
    parts they were built from (e.g. ``item_fields["title"]``) for prompts that want
    them separately. ``user_text_emb`` / ``item_text_emb`` hold precomputed text
    embeddings where the source ships them (RLMRec). ``truth`` is set for the
    synthetic world (:class:`llmhni_ext.data.synthetic.WorldTruth`).
    """

    name: str
    n_users: int
    n_items: int
    train: Interactions
    valid: Interactions
    test: Interactions
    user_text: Optional[List[str]] = None
    item_text: Optional[List[str]] = None
    user_raw_ids: List[Any] = field(default_factory=list)
    item_raw_ids: List[Any] = field(default_factory=list)
    train_noise: Optional[torch.Tensor] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    user_fields: Optional[Dict[str, List[str]]] = None
    item_fields: Optional[Dict[str, List[str]]] = None
    user_text_emb: Optional[np.ndarray] = None
    item_text_emb: Optional[np.ndarray] = None
    truth: Any = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks ids are in range and per-row / per-id arrays have the right lengths."""
        for split in ("train", "valid", "test"):
            it: Interactions = getattr(self, split)
            for what, t, n in (("user", it.users, self.n_users), ("item", it.items, self.n_items)):
                a = t.numpy()
                if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
                    raise ValueError(f"Dataset {self.name!r}: {split} {what} id out of range [0, {n})")
        if self.train_noise is not None:
            self.train_noise = torch.as_tensor(self.train_noise, dtype=torch.bool)
            if self.train_noise.shape != (len(self.train),):
                raise ValueError(f"Dataset {self.name!r}: train_noise has shape {tuple(self.train_noise.shape)}, "
                                 f"expected ({len(self.train)},)")
        for what, texts, n in (("user_text", self.user_text, self.n_users), ("item_text", self.item_text, self.n_items)):
            if texts is not None and len(texts) != n:
                raise ValueError(f"Dataset {self.name!r}: {what} has {len(texts)} entries, expected {n}")
        for what, ids, n in (("user_raw_ids", self.user_raw_ids, self.n_users), ("item_raw_ids", self.item_raw_ids, self.n_items)):
            if len(ids) != n:
                raise ValueError(f"Dataset {self.name!r}: {what} has {len(ids)} entries, expected {n}")

    # -- conveniences -------------------------------------------------------------------
    def replace(self, **changes) -> "Dataset":
        """A copy with some fields changed (``meta`` is copied, not shared)."""
        changes.setdefault("meta", dict(self.meta))
        return dataclasses.replace(self, **changes)

    def split(self, name: str) -> Interactions:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'valid' or 'test'")
        return getattr(self, name)

    def train_fingerprint(self) -> str:
        """12 hex digits of sha256 over the sizes and the training pairs: the key of every
        cache whose value depends on the training graph (signals, judgments, backbones)."""
        h = hashlib.sha256(f"{self.n_users},{self.n_items}".encode())
        h.update(self.train.users.numpy().tobytes())
        h.update(self.train.items.numpy().tobytes())
        return h.hexdigest()[:12]

    def train_csr(self):
        """Training interactions as a ``scipy.sparse.csr_matrix`` (n_users x n_items, ones)."""
        import scipy.sparse as sp
        u, i = self.train.users.numpy(), self.train.items.numpy()
        m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        return m

    def user_positives(self, split: str = "train") -> List[np.ndarray]:
        """Per user, the sorted item ids of ``split``."""
        it = self.split(split)
        u, i = it.users.numpy(), it.items.numpy()
        order = np.lexsort((i, u))
        counts = np.bincount(u, minlength=self.n_users)
        return np.split(i[order], np.cumsum(counts)[:-1])

    def summary(self) -> str:
        def dens(n):
            return n / max(1, self.n_users * self.n_items)
        lines = [f"{self.name}: {self.n_users} users, {self.n_items} items; "
                 f"train {len(self.train)}, valid {len(self.valid)}, test {len(self.test)} "
                 f"(train density {dens(len(self.train)):.4%})"]
        if self.train_noise is not None:
            k = int(self.train_noise.sum())
            lines.append(f"  noisy train rows: {k} ({k / max(1, len(self.train)):.1%}; noise={self.meta.get('noise')})")
        lines.append(f"  text: users {'yes' if self.user_text is not None else 'no'}, "
                     f"items {'yes' if self.item_text is not None else 'no'}"
                     + (f"; precomputed embeddings {self.item_text_emb.shape[1]}-d" if self.item_text_emb is not None else ""))
        cleanup = self.meta.get("cleanup") or {}
        nonzero = {k: v for k, v in cleanup.items() if v}
        if nonzero:
            lines.append("  clean-up: " + ", ".join(f"{k}={v}" for k, v in sorted(nonzero.items())))
        if self.meta.get("source"):
            lines.append(f"  source: {self.meta['source']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
                f"train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)})")
