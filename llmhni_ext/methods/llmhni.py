"""LLMHNI (Song, Chao, Liu, AAAI 2026) and its four ablations.

``L = L_rec + lambda_1 L_de + lambda_2 L_hal`` where

* ``L_rec`` is BPR on the denoised graph G' with semantic hard negatives: among the top-K
  scored of M candidates, the one least similar to the user in the aligned text space
  (never one above ``sim_threshold``: a probable false negative);
* ``L_de`` contrasts each batch node's representation on G with its representation on G';
* ``L_hal`` contrasts edge-dropped views of G and of G' (robustness to judged edges that
  are hallucinations).

G' = (G plus the judged-hard non-interactions) minus the judged-noisy interactions. The
auxiliary terms are computed on every ``aux_every``-th step with weight ``aux_every * lambda``
(the same objective in expectation) over at most ``aux_max_nodes`` of the batch's users and items.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from .. import losses
from ..evaluate import edge_set_quality
from ..sampling import SamplerSpec
from ..seeding import Stream, derive_seed
from .base import Graph, Method, RunContext, Step
from .dns import DNSSettings
from .settings import require, setting

METHODS = ("LLMHNI", "LLMHNIWithoutSemanticSampling", "LLMHNIWithoutAlignment", "LLMHNIWithoutDenoising",
           "LLMHNIWithoutHallucinationRobustness")
_GRAPHS = ("denoised", "original")


@dataclass
class LLMHNISettings(DNSSettings):
    """``L = L_rec + lambda_de L_de + lambda_hal L_hal`` and its semantic sampler."""
    top_k: int = setting(2, "keep the K best-scored of the M candidates ...", ge=1)
    sim_threshold: float = setting(0.9, "... and never pick one more similar to the user than this (a probable "
                                        "false negative)", ge=-1, le=1)
    lambda_de: float = setting(0.003, "weight of L_de (0.1 stalls BPR at ln 2 on ML-100K: validation sweep, "
                                      "bench/RESULTS.md)", ge=0)
    lambda_hal: float = setting(0.003, "weight of L_hal", ge=0)
    tau_de: float = setting(0.2, "temperature of L_de", gt=0)
    tau_hal: float = setting(0.2, "temperature of L_hal", gt=0)
    keep_prob: float = setting(0.8, "edge keep rate of the L_hal views", gt=0, le=1)
    # the cost of the auxiliary terms (the objective is unchanged in expectation): with 4 / 512 an
    # ML-1M epoch costs <= 2x plain LightGCN's (bench/epoch_time.py); 1 / 0 = every step over all of
    # the batch's nodes, 4-6x; the two were equal or better on ML-100K validation
    aux_every: int = setting(4, "compute L_de and L_hal on every n-th step, weighted n x lambda", ge=1)
    aux_max_nodes: int = setting(512, "contrast at most this many of the batch's users (and items); 0 = all", ge=0)
    predict_graph: str = setting("denoised", "the graph L_rec and the prediction propagate on: denoised (G') or "
                                             "original (G)", choices=_GRAPHS)
    train_edges: str = setting("denoised", "the positives L_rec trains on: denoised (G' edges) or original (G edges)",
                               choices=_GRAPHS)
    hard_per_item: int = setting(0, "at most this many of G''s added (hard) edges per item; 0 = all (the paper)",
                                 ge=0)
    semantic_sampling: bool = setting(True, "False: w/o semantic sampling (score-only hard negatives)")
    objective_alignment: bool = setting(True, "False: w/o objective alignment (raw text similarity)")
    interaction_denoising: bool = setting(True, "False: w/o interaction denoising (no G', no L_de)")
    hallucination_robust: bool = setting(True, "False: w/o hallucination-robust learning (no L_hal)")

    def check(self, model: Any) -> None:
        require(self.top_k <= self.num_candidates, "top_k", "must be in [1, num_candidates]", self.top_k)
        require(self.aux_max_nodes != 1, "aux_max_nodes", "must be 0 (all of the batch's nodes) or >= 2",
                self.aux_max_nodes)


def cap_per_item(edges: Tensor, per_item: int) -> Tensor:
    """The first ``per_item`` edges of each item, in the order given ([2, E] users; items); 0 = all."""
    e = torch.as_tensor(edges).long().reshape(2, -1)
    if per_item <= 0 or e.shape[1] == 0:
        return e
    order = torch.sort(e[1], stable=True).indices
    it = e[1][order]
    first = torch.searchsorted(it, it)                # where each item's run starts in the sorted list
    rank = torch.empty_like(order)
    rank[order] = torch.arange(it.numel()) - first    # 0 for an item's first edge, 1 for its second, ...
    return e[:, rank < per_item]


def denoised_edges(users: Tensor, items: Tensor, n_items: int, hard: Tensor, noisy: Tensor,
                   hard_per_item: int = 0) -> Tuple[Tensor, Tensor]:
    """G' = (G ∪ hard edges) \\ noisy edges, as a sorted, duplicate-free (users, items) list.

    ``hard`` and ``noisy`` are [2, E] (users; items), as the signals stage writes them (most
    suspicious users first). ``hard_per_item`` > 0 adds at most that many hard edges to any one
    item: the pre-trained backbone's highest-scored non-interactions are popular items, and
    without a cap the judge's additions pile onto a few of them."""
    def keys(e: Tensor) -> Tensor:
        e = torch.as_tensor(e).long().reshape(2, -1)
        return e[0] * n_items + e[1]
    hard = cap_per_item(hard, hard_per_item)
    all_keys = torch.unique(torch.cat([users.long() * n_items + items.long(), keys(hard)]))
    all_keys = all_keys[~torch.isin(all_keys, torch.unique(keys(noisy)))]
    return all_keys // n_items, all_keys % n_items


def denoising_quality(ds, gu: Tensor, gi: Tensor) -> Dict[str, Any]:
    """What G' changed: edges removed (precision / recall against the injected-noise labels)
    and added (the share a user really interacts with later, in valid or test)."""
    n_items = ds.n_items
    obs = ds.train.users * n_items + ds.train.items
    gp = gu * n_items + gi
    removed = ~torch.isin(obs, gp)
    added = gp[~torch.isin(gp, obs)]
    q: Dict[str, Any] = {"removed": int(removed.sum()), "added": int(added.numel())}
    if ds.train_noise is not None and bool(ds.train_noise.any()):
        noisy = ds.train_noise
        q["removed_vs_noise"] = edge_set_quality(ds.train.users[removed], ds.train.items[removed],
                                                 ds.train.users[noisy], ds.train.items[noisy], n_items)
    held = torch.cat([ds.valid.users * n_items + ds.valid.items, ds.test.users * n_items + ds.test.items])
    if added.numel():
        q["added_in_heldout_fraction"] = float(torch.isin(added, held).float().mean())
    return q


def semantic_embeddings(signals, aligned: bool) -> Tuple[Tensor, Tensor]:
    """The projected (aligned) text embeddings, or the raw encoder ones (w/o alignment)."""
    if aligned:
        u, i = signals.user_sem, signals.item_sem
    else:
        u, i = signals.user_raw, signals.item_raw
        if u is None or i is None:
            raise ValueError("method 'llmhni-wo-align' needs the raw text embeddings, but the signals "
                             "carry none (expected Signals.user_raw / item_raw)")
    return torch.as_tensor(u).float(), torch.as_tensor(i).float()


class LLMHNI(Method):
    name = "llmhni"
    description = "LLMHNI: semantic hard negatives + L_de + L_hal"
    Settings = LLMHNISettings
    needs_signals = "all"

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        me, ds, sig = self.cfg, ctx.dataset, ctx.signals
        if sig is None:
            raise ValueError(f"method {self.name!r} needs the signals stage's output (signals=...)")
        self.G = ctx.G
        self.Gp: Optional[Graph] = None
        self.quality: Dict[str, Any] = {}
        if me.interaction_denoising:
            gu, gi = denoised_edges(ds.train.users, ds.train.items, ds.n_items, sig.hard_edges, sig.noisy_edges,
                                    me.hard_per_item)
            self.Gp = Graph.build(gu, gi, ds.n_users, ds.n_items, ctx.device)
            self.quality = denoising_quality(ds, gu, gi)
        self.rec_on_gp = self.Gp is not None and me.predict_graph == "denoised"
        # the positives L_rec trains on (and the sampler never returns), and the graph it propagates on
        edges = self.Gp if self.Gp is not None and me.train_edges == "denoised" else self.G
        prop = self.Gp if self.rec_on_gp else self.G
        self.rec_graph = prop if edges is prop else Graph(edges.users, edges.items, prop.adj)
        self.user_sem, self.item_sem = (t.to(ctx.device) for t in semantic_embeddings(sig, me.objective_alignment))

    @property
    def sampler_mode(self) -> str:  # type: ignore[override]
        return "llmhni" if self.cfg.semantic_sampling else "dns"

    @property
    def graph(self) -> Graph:
        """L_rec's positives: G''s edges (``train_edges: denoised``) or G's; its propagation
        (and the prediction's): on G' (``predict_graph: denoised``) or on G."""
        return self.rec_graph

    def summary(self) -> Dict[str, Any]:
        return self.quality

    def graphs(self):
        return [g for g in (self.G, self.Gp, self.rec_graph) if g is not None]

    @property
    def view_keep_prob(self) -> float:
        return self.cfg.keep_prob

    def sampler_spec(self) -> SamplerSpec:
        """Semantic hard negatives, or DNS's score-only ones (w/o semantic sampling)."""
        me = self.cfg
        if self.sampler_mode == "llmhni":
            return SamplerSpec.llmhni(self.user_sem, self.item_sem, me.num_candidates, me.top_k, me.sim_threshold,
                                      me.num_negatives)
        return SamplerSpec.dns(me.num_candidates, me.num_negatives)

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """``{"de": (n lambda_1, L_de), "hal": (n lambda_2, L_hal)}`` on every n-th step."""
        me, n = self.cfg, self.cfg.aux_every
        if step.global_step % n:
            return {}
        bu, bi = self._aux_nodes(step)
        terms: Dict[str, Tuple[float, Tensor]] = {}
        if self.Gp is not None and me.lambda_de > 0:
            # the representations on G and on G' (one of them is z, the one L_rec scores)
            if self.rec_on_gp:
                z_g, z_gp = self.model(self.G.propagation, generator=step.gen), z
            else:
                z_g, z_gp = z, self.model(self.Gp.propagation, generator=step.gen)
            terms["de"] = (n * me.lambda_de, losses.de_loss(z_g, z_gp, bu, bi, me.tau_de))
        if me.hallucination_robust and me.lambda_hal > 0:
            graphs = (self.G,) if self.Gp is None else (self.G, self.Gp)
            view_g, view_gp = self.edge_dropped_views(step.epoch, *graphs)
            za, zb = self.model(view_g, generator=step.gen), self.model(view_gp, generator=step.gen)
            terms["hal"] = (n * me.lambda_hal, losses.hal_loss(za, zb, bu, bi, me.tau_hal))
        return terms

    def _aux_nodes(self, step: Step) -> Tuple[Tensor, Tensor]:
        """At most ``aux_max_nodes`` of the batch's users and of its items, drawn uniformly
        (the InfoNCE terms cost the square of the number of nodes contrasted)."""
        bu, bi = step.batch_nodes(self.ctx.n_users)
        cap = self.cfg.aux_max_nodes
        if cap <= 0:
            return bu, bi
        g = torch.Generator().manual_seed(derive_seed(self.ctx.cfg.train.seed, Stream.AUX_NODES, step.epoch,
                                                      step.index))

        def pick(t: Tensor) -> Tensor:
            return t if t.numel() <= cap else t[torch.randperm(t.numel(), generator=g)[:cap].to(t.device)]
        return pick(bu), pick(bi)


class LLMHNIWithoutSemanticSampling(LLMHNI):
    name = "llmhni-wo-sem"
    description = "LLMHNI without semantic sampling"
    implies = {"semantic_sampling": False}


class LLMHNIWithoutAlignment(LLMHNI):
    name = "llmhni-wo-align"
    description = "LLMHNI without objective alignment"
    implies = {"objective_alignment": False}


class LLMHNIWithoutDenoising(LLMHNI):
    name = "llmhni-wo-denoise"
    description = "LLMHNI without interaction denoising"
    implies = {"interaction_denoising": False}
    needs_signals = "texts"          # the semantic embeddings only: no judge runs for it


class LLMHNIWithoutHallucinationRobustness(LLMHNI):
    name = "llmhni-wo-hal"
    description = "LLMHNI without hallucination-robust learning"
    implies = {"hallucination_robust": False}
