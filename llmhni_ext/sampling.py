"""NegativeSampler: a drop-in negative sampler for BPR-style recommender training.

It needs nothing else from llmhni: build it from (user, item) interaction tensors or a
:class:`~llmhni_ext.graph.CSR`, then call :meth:`NegativeSampler.sample` once per batch::

    sampler = NegativeSampler(train_users, train_items, n_users, n_items, seed=0)
    neg = sampler.sample(batch_users)                                   # uniform
    dns = SamplerSpec.dns(num_candidates=64)
    neg = sampler.sample(batch_users, spec=dns, user_emb=eu, item_emb=ei)
    hard = SamplerSpec.llmhni(user_sem=su, item_sem=si, num_candidates=64, top_k=8)
    neg = sampler.sample(batch_users, spec=hard, user_emb=eu, item_emb=ei)

A :class:`SamplerSpec` says how negatives are drawn (the mode and its settings, and the
fixed semantic tables of ``llmhni``); it is built once per run. A call passes the batch and
what changes every step: the scoring embeddings, fixed candidates, the random offset.

Every returned item is a non-positive of its user in the training graph. Modes:

* ``uniform``: uniform over the items, positives rejected;
* ``popularity``: p(j) proportional to degree(j)^alpha, positives rejected;
* ``dns``: of ``num_candidates`` uniform candidates, the one with the highest score ``e_u · e_j``;
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
Without a ``seed`` the sampler draws one from torch's default generator, so
``torch.manual_seed`` fixes its negatives as it fixes the rest of a training run.
Sampling runs on the device of ``users`` and on the current CUDA stream.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Optional, Tuple

import warnings

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

    ``scores``: ``e_u · e_j`` of each returned negative (fp32, shaped like the result), or
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


@dataclass(frozen=True, eq=False)
class SamplerSpec:
    """How :meth:`NegativeSampler.sample` draws negatives: fixed for a run, given to every call.

    ``mode``: uniform | popularity | dns | llmhni (see the module docstring).
    ``num_negatives`` per user; ``num_candidates`` M drawn per negative (None: 1 for uniform and
    popularity, 64 for dns and llmhni); llmhni keeps the ``top_k`` best-scored candidates and
    never picks one more similar to the user than ``sim_threshold``; popularity draws with
    p(j) ~ degree(j)^``alpha``. ``user_sem`` / ``item_sem``: the semantic tables of llmhni.
    ``user_offset`` / ``item_offset``: where user ``u`` / item ``i`` sit in the tables given
    (row ``offset + u``; a padding row 0 as in RecBole: ``item_offset=1``; PyG's one node table:
    ``user_offset=0, item_offset=n_users``). ``score_fn(users [B], items [B, N, M]) -> [B, N, M]``
    makes dns score candidates with your model instead of dot products."""

    mode: str = "uniform"
    num_negatives: int = 1
    num_candidates: Optional[int] = None
    top_k: int = 8
    sim_threshold: float = 0.9
    alpha: float = 0.75
    user_sem: Optional[Tensor] = None
    item_sem: Optional[Tensor] = None
    user_offset: Optional[int] = None
    item_offset: Optional[int] = None
    score_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"SamplerSpec: mode must be one of {MODES}, got {self.mode!r}")
        # counts, thresholds and tables are checked by the op (llmhni_ext.ops.sampler), in one place
        if self.score_fn is not None and self.mode != "dns":
            raise ValueError(f"SamplerSpec: score_fn goes with mode 'dns', got {self.mode!r}")

    @classmethod
    def uniform(cls, num_negatives: int = 1) -> "SamplerSpec":
        return cls("uniform", num_negatives)

    @classmethod
    def popularity(cls, alpha: float = 0.75, num_negatives: int = 1) -> "SamplerSpec":
        return cls("popularity", num_negatives, alpha=alpha)

    @classmethod
    def dns(cls, num_candidates: int = 64, num_negatives: int = 1, **kw: Any) -> "SamplerSpec":
        return cls("dns", num_negatives, num_candidates, **kw)

    @classmethod
    def llmhni(cls, user_sem: Tensor, item_sem: Tensor, num_candidates: int = 64, top_k: int = 8,
               sim_threshold: float = 0.9, num_negatives: int = 1, **kw: Any) -> "SamplerSpec":
        return cls("llmhni", num_negatives, num_candidates, top_k, sim_threshold, user_sem=user_sem,
                   item_sem=item_sem, **kw)

    def replace(self, **changes: Any) -> "SamplerSpec":
        return replace(self, **changes)


#: the keyword form of NegativeSampler.sample before SamplerSpec (deprecated; one release)
_SPEC_KEYWORDS = ("mode", "num_negatives", "num_candidates", "top_k", "sim_threshold", "alpha", "user_sem",
                  "item_sem", "user_offset", "item_offset", "score_fn")


def mix_seeds(a: int, b: int) -> int:
    """One 62-bit seed from two (splitmix64's finaliser over their combination)."""
    z = (int(a) * 0x9E3779B97F4A7C15 + int(b) + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & (2 ** 62 - 1)


class NegativeSampler:
    """Negative sampler over a user -> item training graph (see the module docstring)."""

    def __init__(self, users: Tensor, items: Tensor, n_users: int, n_items: int, *, seed: Optional[int] = None,
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
                        items_first: bool = False, non_bipartite: str = "error", node_ids: bool = True,
                        seed: Optional[int] = None, max_redraws: int = 64) -> "NegativeSampler":
        """From a PyG-style bipartite ``edge_index`` [2, E] of a homogeneous graph whose nodes
        are ``num_users`` users then ``num_items`` items (item ``j`` is node ``num_users + j``),
        or, with ``items_first``, the items then the users (as PyG's
        ``MovieLens100K().to_homogeneous()`` orders them: user ``u`` is node ``num_items + u``).
        Edges may be stored in one or both directions.

        ``num_items`` should be given: guessed from the largest node id, it misses items
        without a training edge (a warning says so). An edge inside the user block or the
        item block is an error (``non_bipartite="ignore"`` drops such edges, e.g. a social
        graph's user-user edges); the message says when the other node order would fit.
        With ``node_ids`` (default) :meth:`sample` takes and returns node ids, else user and
        item ids. ``seed`` None follows ``torch.manual_seed``."""
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError("NegativeSampler.from_edge_index: edge_index must be a [2, E] tensor")
        if edge_index.dtype not in _ID_DTYPES:
            raise ValueError(f"NegativeSampler.from_edge_index: edge_index must be integer, got {edge_index.dtype}")
        if non_bipartite not in ("error", "ignore"):
            raise ValueError(f"NegativeSampler.from_edge_index: non_bipartite must be 'error' or 'ignore', "
                             f"got {non_bipartite!r}")
        src, dst = edge_index[0].long(), edge_index[1].long()
        if num_items is None:
            num_items = (int(edge_index.max()) + 1 - num_users) if edge_index.numel() else 0
            warnings.warn(f"NegativeSampler.from_edge_index: num_items not given; guessed {num_items} from the largest "
                          f"node id, which misses items without a training edge: pass num_items", stacklevel=2)
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_users + num_items):
            raise ValueError(f"NegativeSampler.from_edge_index: node ids must lie in [0, num_users + num_items = "
                             f"{num_users + num_items}), got [{int(edge_index.min())}, {int(edge_index.max())}]")
        first = num_items if items_first else num_users         # nodes below it form the first block

        def in_block(b):
            return int(((src < b) == (dst < b)).sum())
        inside = in_block(first)
        if inside and non_bipartite == "error":
            other = num_users if items_first else num_items
            hint = (f"; with {'users' if items_first else 'items'} first the graph is bipartite: pass "
                    f"items_first={not items_first}" if in_block(other) == 0 else "")
            raise ValueError(f"NegativeSampler.from_edge_index: {inside} of {src.numel()} edges join two "
                             f"{'items' if items_first else 'users'} or two {'users' if items_first else 'items'} "
                             f"under the node order {'items then users' if items_first else 'users then items'}"
                             f"{hint} (non_bipartite='ignore' drops such edges on purpose)")
        fwd, bwd = (src < first) & (dst >= first), (dst < first) & (src >= first)
        a, b = torch.cat([src[fwd], dst[bwd]]), torch.cat([dst[fwd], src[bwd]]) - first
        users, items = (b, a) if items_first else (a, b)
        self = cls(users, items, num_users, num_items, seed=seed, max_redraws=max_redraws)
        if node_ids:
            self.item_id_offset = 0 if items_first else num_users
            self.user_id_offset = num_items if items_first else 0
        return self

    @classmethod
    def from_csr(cls, csr: CSR, *, seed: Optional[int] = None, max_redraws: int = 64) -> "NegativeSampler":
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

    def _init(self, csr: CSR, seed: Optional[int], max_redraws: int) -> None:
        self.csr = csr
        self.n_users, self.n_items = csr.n_rows, csr.n_cols
        #: None: drawn from torch's default generator, so torch.manual_seed fixes it
        self.seed = int(torch.randint(0, 2 ** 62, ())) if seed is None else int(seed)
        self.offset = 0
        self.max_redraws = int(max_redraws)
        self._on: Dict[torch.device, Tuple[Tensor, Tensor]] = {}
        self.item_id_offset = 0        #: added to every returned id (from_edge_index: node ids)
        self.user_id_offset = 0        #: subtracted from every user id given (from_edge_index, items first)
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

    def _sample_scored_by(self, spec: "SamplerSpec", users, pos_items, offset, return_info):
        M = 64 if spec.num_candidates is None else int(spec.num_candidates)
        N = spec.num_negatives
        cand = self.sample(users, pos_items, SamplerSpec.uniform(N * M), offset=offset, return_info=return_info)
        cand, info = cand if return_info else (cand, None)
        cand = cand.reshape(users.shape[0], N, M)
        scores = spec.score_fn(torch.as_tensor(users).long(), cand)
        if not isinstance(scores, Tensor) or scores.shape != cand.shape:
            raise ValueError(f"NegativeSampler.sample: score_fn must return scores of shape {tuple(cand.shape)}, "
                             f"got {getattr(scores, 'shape', type(scores))}")
        best = torch.nan_to_num(scores.float(), nan=float("-inf")).argmax(-1, keepdim=True)
        neg = cand.gather(-1, best).squeeze(-1)
        neg = neg.squeeze(1) if N == 1 else neg
        if not return_info:
            return neg
        return neg, SampleInfo(scores.gather(-1, best).squeeze(-1), info.counts)

    @staticmethod
    def _spec_of(spec: Optional["SamplerSpec"], keywords: Dict[str, Any]) -> "SamplerSpec":
        """The call's spec; the keyword form (``mode=..., top_k=...``) still works, with a warning."""
        if not keywords:
            if spec is not None and not isinstance(spec, SamplerSpec):
                raise TypeError(f"NegativeSampler.sample: spec must be a SamplerSpec, got {type(spec).__name__}")
            return spec or SamplerSpec()
        unknown = sorted(set(keywords) - set(_SPEC_KEYWORDS))
        if unknown:
            raise TypeError(f"NegativeSampler.sample() got an unexpected keyword argument {unknown[0]!r}")
        if spec is not None:
            raise TypeError(f"NegativeSampler.sample: pass either spec or the keyword form, not both "
                            f"(got spec and {', '.join(sorted(keywords))})")
        warnings.warn(f"NegativeSampler.sample({', '.join(f'{k}=' for k in sorted(keywords))}...) is deprecated and "
                      f"will be removed in the next release: pass spec=SamplerSpec(...) "
                      f"(e.g. SamplerSpec.dns(num_candidates=64)) and the per-call tensors",
                      FutureWarning, stacklevel=3)
        try:
            return SamplerSpec(**keywords)
        except ValueError as e:
            raise ValueError(str(e).replace("SamplerSpec:", "NegativeSampler.sample:")) from None

    def sample(self, users: Tensor, pos_items: Optional[Tensor] = None, spec: Optional[SamplerSpec] = None, *,
               user_emb: Optional[Tensor] = None, item_emb: Optional[Tensor] = None,
               candidates: Optional[Tensor] = None, offset: Optional[int] = None, return_info: bool = False,
               **keywords: Any):
        """Negatives for a batch: LongTensor [B] (or [B, spec.num_negatives]) on ``users.device``.

        ``spec`` (a :class:`SamplerSpec`, default uniform) says how they are drawn. Per call:
        ``user_emb`` / ``item_emb``, the tables dns and llmhni score candidates with (float64
        is scored in float32, as the kernels score; without the spec's offsets a table has
        exactly one row per user or item); ``candidates`` ([B, M] or [B, num_negatives, M])
        replaces the random draw (used as given, no rejection); ``offset`` overrides this call's
        random offset without advancing the sampler; with ``return_info`` also a
        :class:`SampleInfo`. Returned ids are the sampler's item ids (``0 .. n_items - 1``).

        ``pos_items`` (the batch's positives, optional) are validated only (shape; ids on
        the CPU): they are training positives and rejected like every other.
        Inside a DataLoader worker the stream is keyed by the worker's seed as well (PyTorch draws
        it anew for each worker and, unless workers persist, each epoch), so workers and epochs
        draw fresh negatives, reproducibly under ``torch.manual_seed``.

        The keyword form of earlier releases (``sample(users, mode="dns", num_candidates=64,
        ...)``) still works and warns (FutureWarning); it goes in the next release.
        """
        spec = self._spec_of(spec, keywords)
        mode, num_negatives, num_candidates = spec.mode, spec.num_negatives, spec.num_candidates
        if spec.score_fn is not None:
            return self._sample_scored_by(spec, users, pos_items, offset, return_info)
        user_emb, user_sem = (self._table(t, spec.user_offset, self.n_users, n) for t, n in
                              ((user_emb, "user_emb"), (spec.user_sem, "user_sem")))
        item_emb, item_sem = (self._table(t, spec.item_offset, self.n_items, n) for t, n in
                              ((item_emb, "item_emb"), (spec.item_sem, "item_sem")))
        if not isinstance(users, Tensor):
            users = torch.as_tensor(users)
        if users.dim() != 1 or users.dtype not in _ID_DTYPES:
            raise ValueError(f"NegativeSampler.sample: users must be a 1-D integer tensor, got {users.dtype} "
                             f"of shape {tuple(users.shape)}")
        if users.dtype not in (torch.int32, torch.int64):
            users = users.long()
        if self.user_id_offset:
            users = users - self.user_id_offset                    # node ids -> user ids
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
        cdf = self.popularity_cdf(spec.alpha, device) if mode == "popularity" and candidates is None else None
        seed = self.seed
        if offset is None:
            offset = self.offset
            self.offset += 1
            worker = torch.utils.data.get_worker_info()
            if worker is not None:
                # each DataLoader worker holds a copy whose offset restarts whenever the workers are
                # re-created (every epoch, unless persistent): key its stream by the worker's seed,
                # which PyTorch draws anew per epoch and per worker from the loader's generator
                seed = mix_seeds(self.seed, worker.seed)
        neg, scores, counts = _ops.sample_negatives(
            rowptr, col, users, self.n_items, mode, num_negatives, num_candidates, spec.top_k, spec.sim_threshold,
            seed, offset, self.max_redraws, candidates, cdf, user_emb, item_emb, user_sem, item_sem,
            False)   # the CSR was checked when this sampler was built (sorted rows, ids in range)
        if self.item_id_offset:
            neg = neg + self.item_id_offset
        if num_negatives == 1:
            neg = neg.squeeze(1)
            scores = scores.squeeze(1) if scores.dim() == 2 else scores
        if not return_info:
            return neg
        return neg, SampleInfo(scores if user_emb is not None else None, counts)
