"""On-disk embedding cache keyed by (encoder model id, sha256 of the text).

One folder per model id; each batch of new embeddings is one ``.npz`` shard written
to a temporary file and renamed into place, so an interrupted run keeps every finished
shard and never leaves a half-written one.
"""
from __future__ import annotations

import glob
import hashlib
import os
from typing import Callable, Dict, Optional, Sequence

import numpy as np


def text_key(text: str) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, root: Optional[str], model_id: str) -> None:
        self.model_id = model_id
        self.dir = None
        self._mem: Dict[str, np.ndarray] = {}
        if root:
            slug = hashlib.sha256(model_id.encode()).hexdigest()[:16]
            self.dir = os.path.join(root, "embeddings", slug)
            os.makedirs(self.dir, exist_ok=True)
            from ..checkpoint import clean_stale_tmp
            clean_stale_tmp(self.dir)
            idf = os.path.join(self.dir, "MODEL_ID")
            if not os.path.exists(idf):
                self._atomic_write_bytes(idf, model_id.encode())
            for path in sorted(glob.glob(os.path.join(self.dir, "*.npz"))):
                try:
                    with np.load(path, allow_pickle=False) as z:
                        keys, vecs = z["keys"], z["vecs"]
                except (OSError, ValueError, KeyError):
                    continue                      # an unreadable shard is ignored (re-encoded)
                for k, v in zip(keys.tolist(), vecs):
                    self._mem[k] = v

    @staticmethod
    def _atomic_write_bytes(path: str, data: bytes) -> None:
        from ..checkpoint import write_bytes
        write_bytes(data, path)

    def __len__(self) -> int:
        return len(self._mem)

    def _write_shard(self, keys, vecs: np.ndarray) -> None:
        self._mem.update(zip(keys, vecs))
        if self.dir is None:
            return
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:20] + ".npz"
        from ..checkpoint import _atomic_write
        _atomic_write(os.path.join(self.dir, name),
                      lambda f: np.savez(f, keys=np.asarray(keys), vecs=vecs.astype(np.float32)))

    def encode(self, texts: Sequence[str], encode_fn: Callable[[Sequence[str]], np.ndarray],
               batch: int = 256, progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """Embeddings of ``texts`` (float32 [n, dim]); only texts not yet cached are encoded,
        ``batch`` unique texts per call of ``encode_fn`` and per shard."""
        keys = [text_key(t) for t in texts]
        todo: Dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in self._mem and k not in todo:
                todo[k] = t
        items = list(todo.items())
        for s in range(0, len(items), batch):
            chunk = items[s:s + batch]
            vecs = np.asarray(encode_fn([t for _, t in chunk]), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(chunk):
                raise ValueError(f"encoder returned shape {vecs.shape} for {len(chunk)} texts")
            self._write_shard([k for k, _ in chunk], vecs)
            if progress:
                progress(len(chunk))
        if not keys:
            return np.zeros((0, 0), np.float32)
        return np.stack([self._mem[k] for k in keys]).astype(np.float32)
