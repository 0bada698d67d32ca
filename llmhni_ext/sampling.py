"""NegativeSampler: a drop-in negative sampler for BPR-style recommender training.

It needs nothing else from llmhni: build it from (user, item) interaction tensors or a
:class:`~llmhni_ext.graph.CSR`, then call :meth:`NegativeSampler.sample` once per batch::

    sampler = NegativeSampler(train_users, train_items, n_users, n_items, seed=0)
    neg = sampler.sample(batch_users)                                   # uniform
    neg = sampler.sample(batch_users, mode="dns", user_emb=eu, item_emb=ei)
    neg = sampler.sample(batch_users, mode="llmhni", user_emb=eu, item_emb=ei,
                         user_sem=su, item_sem=si, num_candidates=64, top_k=8)

Every returned item is a non-positive of its user in the training graph. Modes:

* ``uniform``: uniform over the items, positives rejected;
* ``popularity``: p(j) proportional to degree(j)^alpha, positives rejected;
* ``dns``: of ``num_candidates`` uniform candidates, the one with the highest <e_u, e_j>;
* ``llmhni``: of ``num_candidates`` uniform candidates, keep the ``top_k`` by backbone
  score and take the one whose projected semantic embedding is the LEAST similar
  (cosine) to the user's; candidates with similarity above ``sim_threshold`` are probable
  false negatives and never chosen. If all ``top_k`` are filtered, the candidate with the
  lowest similarity among all ``num_candidates`` is taken (counted as a fallback).

Positives are rejected by binary search in the user's sorted CSR row and redrawn (at
most ``max_redraws`` times, after which the item is drawn exactly from the complement
of the row by rank mapping, also counted). Randomness is Philox keyed by
``(seed, offset)``: the same call gives the same items on CPU and CUDA whatever the
thread count; the offset advances by one per call (save it with :meth:`state_dict`).
Sampling runs on the device of ``users`` and on the current CUDA stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .graph import CSR, csr_from_coo
from .ops import sampler as _ops

MODES = ("uniform", "popularity", "dns", "llmhni")
_ID_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64)   # uint8 and bool are not ids
_CDF_SCALE = 2**40  # popularity weights are quantised to int64 so every device agrees exactly


@dataclass
class SampleInfo:
    """What a :meth:`NegativeSampler.sample` call saw.

    ``scores``: <e_u, e_j> of each returned negative (fp32, shaped like the result), or
    None without embeddings. ``counts``: int64 tensor (on the sampling device) of
    rejected draws, exact complement fallbacks, similarity-filtered top-k candidates and
    llmhni fallbacks; the properties read them (one host sync)."""

    scores: Optional[Tensor]
    counts: Tensor

    @property
    def rejected(self) -> int:
        return int(self.counts[0])

    @property
    def exhausted(self) -> int:
        return int(self.counts[1])

    @property
    def filtered(self) -> int:
        return int(self.counts[2])

    @property
    def fallbacks(self) -> int:
        return int(self.counts[3])


class NegativeSampler:
    """Negative sampler over a user -> item training graph (see the module docstring)."""

    def __init__(self, users: Tensor, items: Tensor, n_users: int, n_items: int, *, seed: int = 0,
                 max_redraws: int = 64) -> None:
        users, items = torch.as_tensor(users), torch.as_tensor(items)
        if users.dim() != 1 or users.shape != items.shape:
            raise ValueError(f"NegativeSampler: users and items must be 1-D of one length, got "
                             f"{tuple(users.shape)} and {tuple(items.shape)}")
        for name, t in (("users", users), ("items", items)):
            if t.dtype not in _ID_DTYPES:
                raise ValueError(f"NegativeSampler: {name} must be an integer tensor (int8, int16, int32 or int64), "
                                 f"got {t.dtype}")
        if n_users < 1 or n_items < 1:
            raise ValueError(f"NegativeSampler: n_users and n_items must be >= 1, got {n_users}, {n_items}")
        for name, t, n in (("users", users, n_users), ("items", items, n_items)):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
                raise ValueError(f"NegativeSampler: {name} has ids in [{int(t.min())}, {int(t.max())}] "
                                 f"but must lie in [0, {n})")
        self._init(csr_from_coo(users.long(), items.long(), n_users, n_items), seed, max_redraws)

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_users: int, num_items: Optional[int] = None, *,
                        node_ids: bool = True, seed: int = 0, max_redraws: int = 64) -> "NegativeSampler":
        """From a PyG-style bipartite ``edge_index`` [2, E] over ``num_users`` users then the
        items (item ``j`` is node ``num_users + j``); edges may be stored in one or both
        directions, user-user and item-item edges are ignored. With ``node_ids`` (default)
        :meth:`sample` returns node ids (``num_users + j``), else item ids ``j``. Users are
        node ids either way (users come first)."""
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError("NegativeSampler.from_edge_index: edge_index must be a [2, E] tensor")
        if edge_index.dtype not in _ID_DTYPES:
            raise ValueError(f"NegativeSampler.from_edge_index: edge_index must be integer, got {edge_index.dtype}")
        src, dst = edge_index[0].long(), edge_index[1].long()
        if num_items is None:
            num_items = (int(edge_index.max()) + 1 - num_users) if edge_index.numel() else 0
        fwd = (src < num_users) & (dst >= num_users)
        bwd = (dst < num_users) & (src >= num_users)
        users = torch.cat([src[fwd], dst[bwd]])
        items = torch.cat([dst[fwd], src[bwd]]) - num_users
        self = cls(users, items, num_users, num_items, seed=seed, max_redraws=max_redraws)
        self.item_id_offset = num_users if node_ids else 0
        return self

    @classmethod
    def from_csr(cls, csr: CSR, *, seed: int = 0, max_redraws: int = 64) -> "NegativeSampler":
        """From a user -> item :class:`CSR` with sorted, duplicate-free rows."""
        self = cls.__new__(cls)
        rp, c = csr.rowptr, csr.col
        if rp.numel() != csr.n_rows + 1 or int(rp[0]) != 0 or int(rp[-1]) != c.numel():
            raise ValueError("NegativeSampler.from_csr: malformed rowptr")
        if c.numel():
            if int(c.min()) < 0 or int(c.max()) >= csr.n_cols:
                raise ValueError(f"NegativeSampler.from_csr: columns must lie in [0, {csr.n_cols})")
            rows = csr.row_ids()
            bad = (rows[1:] == rows[:-1]) & (c[1:] <= c[:-1])
            if bool(bad.any()):
                raise ValueError("NegativeSampler.from_csr: columns must be sorted and unique within each row")
        self._init(csr, seed, max_redraws)
        return self

    def _init(self, csr: CSR, seed: int, max_redraws: int) -> None:
        self.csr = csr
        self.n_users, self.n_items = csr.n_rows, csr.n_cols
        self.seed = int(seed)
        self.offset = 0
        self.max_redraws = int(max_redraws)
        self._on: Dict[torch.device, Tuple[Tensor, Tensor]] = {}
        self.item_id_offset = 0        #: added to every returned id (from_edge_index: node ids)
        self._cdf: Dict[Tuple[float, torch.device], Tensor] = {}

    # -- state -------------------------------------------------------------
    def state_dict(self) -> Dict[str, int]:
        return {"seed": self.seed, "offset": self.offset}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.seed, self.offset = int(state["seed"]), int(state["offset"])

    # -- helpers -----------------------------------------------------------
    def _graph_on(self, device: torch.device) -> Tuple[Tensor, Tensor]:
        if device not in self._on:
            self._on[device] = (self.csr.rowptr.to(device), self.csr.col.to(device))
        return self._on[device]

    def popularity_cdf(self, alpha: float, device: torch.device) -> Tensor:
        """int64 cumulative weights with w_j proportional to degree(j)^alpha (sum about 2^40)."""
        key = (float(alpha), torch.device(device))
        if key not in self._cdf:
            deg = torch.bincount(self.csr.col.long().cpu(), minlength=self.n_items).double()
            w = deg.pow(alpha) if alpha != 0 else torch.ones_like(deg)
            w = torch.where(deg > 0, w, torch.zeros_like(w)) if alpha > 0 else w
            if float(w.sum()) <= 0:
                raise ValueError("NegativeSampler: popularity sampling needs at least one item with interactions")
            q = torch.floor(w / w.sum() * _CDF_SCALE).long()
            q = torch.where((w > 0) & (q == 0), torch.ones_like(q), q)
            self._cdf[key] = torch.cumsum(q, 0).to(device)
        return self._cdf[key]

    # -- sampling ----------------------------------------------------------
    @staticmethod
    def _table(t: Optional[Tensor], offset: Optional[int], rows: int, name: str) -> Optional[Tensor]:
        """Rows ``offset .. offset + rows`` of an embedding table (the whole table without an
        offset: the op then checks its shape), float64 scored as float32."""
        if t is None:
            return None
        if offset is None:
            return t.float() if t.dtype == torch.float64 else t
        if t.dim() != 2 or offset < 0 or t.shape[0] < offset + rows:
            raise ValueError(f"NegativeSampler.sample: {name} must be a 2-D table with at least offset + {rows} = "
                             f"{offset + rows} rows, got shape {tuple(t.shape)} with offset {offset}")
        t = t[offset:offset + rows]
        return t.float() if t.dtype == torch.float64 else t

    def _sample_scored_by(self, score_fn, users, pos_items, num_negatives, num_candidates, offset, return_info,
                          mode):
        if mode != "dns":
            raise ValueError(f"NegativeSampler.sample: score_fn goes with mode 'dns', got {mode!r}")
        M = 64 if num_candidates is None else int(num_candidates)
        cand = self.sample(users, pos_items, num_negatives=num_negatives * M, offset=offset, return_info=return_info)
        cand, info = cand if return_info else (cand, None)
        cand = cand.reshape(users.shape[0], num_negatives, M)
        scores = score_fn(torch.as_tensor(users).long(), cand)
        if not isinstance(scores, Tensor) or scores.shape != cand.shape:
            raise ValueError(f"NegativeSampler.sample: score_fn must return scores of shape {tuple(cand.shape)}, "
                             f"got {getattr(scores, 'shape', type(scores))}")
        best = torch.nan_to_num(scores.float(), nan=float("-inf")).argmax(-1, keepdim=True)
        neg = cand.gather(-1, best).squeeze(-1)
        neg = neg.squeeze(1) if num_negatives == 1 else neg
        if not return_info:
            return neg
        return neg, SampleInfo(scores.gather(-1, best).squeeze(-1), info.counts)


    def sample(self, users: Tensor, pos_items: Optional[Tensor] = None, *, mode: str = "uniform",
               num_negatives: int = 1, num_candidates: Optional[int] = None, user_emb: Optional[Tensor] = None,
               item_emb: Optional[Tensor] = None, user_sem: Optional[Tensor] = None,
               item_sem: Optional[Tensor] = None, top_k: int = 8, sim_threshold: float = 0.9,
               alpha: float = 0.75, candidates: Optional[Tensor] = None, offset: Optional[int] = None,
               user_offset: Optional[int] = None, item_offset: Optional[int] = None,
               score_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None, return_info: bool = False):
        """Negatives for a batch: LongTensor [B] (or [B, num_negatives]) on ``users.device``.

        Embedding tables may be float64 (scored in float32, as the kernels score). Without an
        offset a table has exactly one row per user (item); with ``user_offset`` /
        ``item_offset`` it may hold more, and row ``user_offset + u`` of ``user_emb`` /
        ``user_sem`` and row ``item_offset + i`` of ``item_emb`` / ``item_sem`` are used (a
        padding row 0 as in RecBole: ``item_offset=1``; one node table of users then items as in
        PyG: ``user_emb=emb, user_offset=0, item_emb=emb, item_offset=n_users``). Returned ids are the sampler's
        item ids (``0 .. n_items - 1``). ``score_fn(users [B], items [B, N, M]) -> [B, N, M]``
        makes mode ``dns`` score candidates with your model instead of dot products (the
        candidates are drawn like uniform negatives, the highest score wins).

        ``pos_items`` (the batch's positives, optional) are validated only (shape; ids on
        the CPU): they are training positives and rejected like every other. ``num_candidates`` defaults to
        1 for uniform/popularity and 64 for dns/llmhni. ``candidates`` ([B, M] or
        [B, num_negatives, M]) replaces the random draw (used as given, no rejection).
        ``offset`` overrides this call's random offset without advancing the sampler.
        Inside a DataLoader worker the automatic offset is interleaved by worker id
        (``offset * num_workers + id``), so the workers' copies draw different negatives. With ``return_info`` also a
        :class:`SampleInfo`.
        """
        if mode not in MODES:
            raise ValueError(f"NegativeSampler.sample: mode must be one of {MODES}, got {mode!r}")
        if score_fn is not None:
            return self._sample_scored_by(score_fn, users, pos_items, num_negatives, num_candidates, offset,
                                          return_info, mode)
        user_emb, user_sem = (self._table(t, user_offset, self.n_users, n) for t, n in
                              ((user_emb, "user_emb"), (user_sem, "user_sem")))
        item_emb, item_sem = (self._table(t, item_offset, self.n_items, n) for t, n in
                              ((item_emb, "item_emb"), (item_sem, "item_sem")))
        if not isinstance(users, Tensor):
            users = torch.as_tensor(users)
        if users.dim() != 1 or users.dtype not in _ID_DTYPES:
            raise ValueError(f"NegativeSampler.sample: users must be a 1-D integer tensor, got {users.dtype} "
                             f"of shape {tuple(users.shape)}")
        if users.dtype not in (torch.int32, torch.int64):
            users = users.long()
        device = users.device
        if pos_items is not None:
            pos_items = torch.as_tensor(pos_items)
            if self.item_id_offset:
                pos_items = pos_items - self.item_id_offset          # node ids -> item ids
            if pos_items.shape != users.shape or pos_items.is_floating_point():
                raise ValueError(f"NegativeSampler.sample: pos_items must be integer of shape {tuple(users.shape)}, "
                                 f"got {pos_items.dtype} of shape {tuple(pos_items.shape)}")
            if pos_items.device.type == "cpu" and pos_items.numel() and (  # no host sync on a GPU
                    int(pos_items.min()) < 0 or int(pos_items.max()) >= self.n_items):
                raise ValueError(f"NegativeSampler.sample: pos_items must lie in [0, {self.n_items})")
        if num_candidates is None:
            num_candidates = 1 if mode in ("uniform", "popularity") else 64
        if candidates is not None:
            if candidates.dim() == 2:
                candidates = candidates.unsqueeze(1).expand(-1, num_negatives, -1)
            num_candidates = candidates.shape[-1]
            candidates = candidates.contiguous()
        rowptr, col = self._graph_on(device)
        cdf = self.popularity_cdf(alpha, device) if mode == "popularity" and candidates is None else None
        if offset is None:
            offset = self.offset
            self.offset += 1
            worker = torch.utils.data.get_worker_info()
            if worker is not None:   # each DataLoader worker holds a copy: give each its own offsets
                offset = offset * worker.num_workers + worker.id
        neg, scores, counts = _ops.sample_negatives(
            rowptr, col, users, self.n_items, mode, num_negatives, num_candidates, top_k, sim_threshold,
            self.seed, offset, self.max_redraws, candidates, cdf, user_emb, item_emb, user_sem, item_sem,
            False)   # the CSR was checked when this sampler was built (sorted rows, ids in range)
        if self.item_id_offset:
            neg = neg + self.item_id_offset
        if num_negatives == 1:
            neg = neg.squeeze(1)
            scores = scores.squeeze(1) if scores.dim() == 2 else scores
        if not return_info:
            return neg
        return neg, SampleInfo(scores if user_emb is not None else None, counts)
