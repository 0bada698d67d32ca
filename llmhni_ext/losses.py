"""Training losses, one function per equation.

Notation: ``s(u, i) = <z_u, z_i>`` is the backbone's score, ``e^(0)`` the layer-0 (ego)
embeddings, ``B`` the batch, ``tau`` a temperature and ``cos`` cosine similarity.
Every method's objective is ``L = L_rec + sum_k lambda_k L_k`` (:func:`objective`); LLMHNI's
is ``L = L_rec + lambda_1 * L_de + lambda_2 * L_hal``.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import contrastive as _contrastive


def _pair(pos: Tensor, neg: Tensor) -> Tensor:
    """pos [B] against neg [B] or [B, n]: the score differences, shape of neg."""
    return pos.unsqueeze(-1) - neg if neg.dim() == pos.dim() + 1 else pos - neg


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Bayesian personalised ranking.

    ``L_BPR = -1/|B| sum_{(u,i,j) in B} log sigma(s(u,i) - s(u,j))``

    ``neg_scores`` is [B] or [B, n] (several negatives per pair, averaged)."""
    return -F.logsigmoid(_pair(pos_scores, neg_scores)).mean()


def l2_reg(*ego: Tensor, batch_size: int) -> Tensor:
    """LightGCN's regulariser on the batch's layer-0 embeddings.

    ``L_reg = 1/(2|B|) sum_{e in batch} ||e^(0)||^2``  (multiplied by the L2 weight outside)."""
    return sum(e.pow(2).sum() for e in ego) / (2.0 * max(batch_size, 1))


def infonce(a: Tensor, b: Tensor, tau: float) -> Tensor:
    """Cosine InfoNCE over in-batch negatives (the project's batched contrastive op).

    ``L = -1/|B| sum_i log( exp(cos(a_i, b_i)/tau) / sum_j exp(cos(a_i, b_j)/tau) )``"""
    if a.shape[0] == 0:
        return a.new_zeros(())
    return _contrastive.infonce(a, b, tau)


def de_loss(z_g: Tensor, z_denoised: Tensor, users: Tensor, items: Tensor, tau: float) -> Tensor:
    """L_de: cross-graph InfoNCE between each batch node's representation on G and on G'.

    ``L_de = InfoNCE_tau({z_u^G}, {z_u^G'})_{u in B_U} + InfoNCE_tau({z_i^G}, {z_i^G'})_{i in B_I}``

    ``users`` and ``items`` are the batch's distinct user and item node ids (rows of z);
    users and items are contrasted separately, as in SGL."""
    return infonce(z_g[users], z_denoised[users], tau) + infonce(z_g[items], z_denoised[items], tau)


def hal_loss(z_view_g: Tensor, z_view_denoised: Tensor, users: Tensor, items: Tensor, tau: float) -> Tensor:
    """L_hal: InfoNCE between randomly edge-dropped views of G and of G'.

    ``L_hal = InfoNCE_tau({z_u^{d(G)}}, {z_u^{d(G')}})_{u in B_U} + InfoNCE_tau({z_i^{d(G)}}, {z_i^{d(G')}})_{i in B_I}``

    with ``d(.)`` an edge-dropped view (each undirected edge kept with probability rho).
    An edge the judge hallucinated exists in only one graph and is often dropped, so it
    cannot dominate the representation both views must agree on."""
    return infonce(z_view_g[users], z_view_denoised[users], tau) + \
        infonce(z_view_g[items], z_view_denoised[items], tau)


def ssl_loss(z_view1: Tensor, z_view2: Tensor, users: Tensor, items: Tensor, tau: float) -> Tensor:
    """SGL / SimGCL's self-supervised loss between two views of one graph.

    ``L_ssl = InfoNCE_tau({z_u'}, {z_u''})_{u in B_U} + InfoNCE_tau({z_i'}, {z_i''})_{i in B_I}``"""
    return infonce(z_view1[users], z_view2[users], tau) + infonce(z_view1[items], z_view2[items], tau)


def objective(l_rec: Tensor, terms: Dict[str, Tuple[float, Tensor]]) -> Tensor:
    """Every method's training objective.

    ``L = L_rec + sum_k lambda_k L_k`` over the method's auxiliary terms ``{k: (lambda_k, L_k)}``
    (for LLMHNI ``L_rec + lambda_1 L_de + lambda_2 L_hal``; for SGL ``L_rec + lambda L_ssl``)."""
    total = l_rec
    for weight, term in terms.values():
        total = total + weight * term
    return total


def _bce_terms(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Per-sample BCE: ``-log sigma(s_ui)`` for positives, ``-log(1 - sigma(s_uj))`` for negatives."""
    return torch.cat([-F.logsigmoid(pos_scores).reshape(-1), -F.logsigmoid(-neg_scores).reshape(-1)])


def tce_loss(pos_scores: Tensor, neg_scores: Tensor, drop_rate: float) -> Tensor:
    """Truncated cross-entropy (T-CE): BCE over the batch without its largest-loss samples.

    ``L_TCE = 1/|K| sum_{(u,i) in K} BCE(u, i)``, K the ``(1 - drop_rate)`` fraction of
    positive and negative samples with the smallest BCE (large loss = probably noisy)."""
    losses = _bce_terms(pos_scores, neg_scores)
    keep = max(1, int(round(losses.numel() * (1.0 - drop_rate))))
    kept, _ = torch.topk(losses, keep, largest=False, sorted=False)
    return kept.mean()


def tce_drop_rate(epoch: int, max_drop: float, warmup_epochs: int) -> float:
    """T-CE's schedule: the drop rate grows linearly from 0 to ``max_drop`` over the warm-up."""
    return max_drop * min(1.0, epoch / float(warmup_epochs))


def rce_loss(pos_scores: Tensor, neg_scores: Tensor, beta: float) -> Tensor:
    """Reweighted cross-entropy (R-CE).

    ``L_RCE = mean( w * BCE )`` with the detached weight ``w = sigma(s_ui)^beta`` for a
    positive and ``w = (1 - sigma(s_uj))^beta`` for a negative: samples the model finds
    hard to fit (probably noisy) count less."""
    w = torch.cat([torch.sigmoid(pos_scores).reshape(-1), torch.sigmoid(-neg_scores).reshape(-1)])
    return (w.detach().pow(beta) * _bce_terms(pos_scores, neg_scores)).mean()
