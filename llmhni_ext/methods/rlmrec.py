"""RLMRec (Ren et al., "Representation learning with large language models for
recommendation", WWW 2024): align the backbone's representations with the encoded
user and item profiles.

* ``rlmrec-con`` (contrastive alignment): ``L_kd = InfoNCE_tau(z_v, MLP(s_v))`` over the
  batch's users and over its items, ``MLP: d_s -> (d_s + d) / 2 -> d`` with LeakyReLU;
* ``rlmrec-gen`` (generative alignment): a share of the nodes' layer-0 embeddings is
  replaced by a learned mask token, the backbone propagates, and ``MLP: d -> (d + d_s) / 2
  -> d_s`` must recover each masked node's profile embedding: ``L_gen = InfoNCE_tau(MLP(z_m), s_m)``;
  BPR scores the masked propagation, prediction uses the unmasked one.

The profile embeddings are the signals stage's raw text embeddings (the bundled encoder
here; the paper used OpenAI's text-embedding-ada-002). InfoNCE negatives are in-batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from .. import losses
from ..seeding import Stream, derive_seed
from .base import Method, RunContext, Step
from .settings import MethodSettings, setting

METHODS = ("RLMRecCon", "RLMRecGen")


@dataclass
class RLMRecConSettings(MethodSettings):
    """The authors' Amazon-book settings."""
    rlmrec_con_lambda: float = setting(0.01, "weight of the contrastive alignment", ge=0)
    rlmrec_con_tau: float = setting(0.2, "its InfoNCE temperature", gt=0)


@dataclass
class RLMRecGenSettings(MethodSettings):
    """The authors' Amazon-book settings."""
    rlmrec_gen_lambda: float = setting(0.1, "weight of the masked reconstruction", ge=0)
    rlmrec_gen_tau: float = setting(0.5, "its InfoNCE temperature", gt=0)
    rlmrec_mask_ratio: float = setting(0.15, "share of the nodes masked", gt=0, lt=1)


def _mlp(d_in: int, d_out: int, seed: int) -> nn.Sequential:
    """RLMRec's two-layer projection, Xavier-initialised from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    hidden = (d_in + d_out) // 2
    net = nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(), nn.Linear(hidden, d_out))
    for m in net:
        if isinstance(m, nn.Linear):
            bound = (6.0 / (m.in_features + m.out_features)) ** 0.5
            with torch.no_grad():
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
                m.bias.zero_()
    return net


class _RLMRec(Method):
    needs_signals = "texts"

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        sig = ctx.signals
        if sig is None or sig.user_raw is None or sig.item_raw is None:
            raise ValueError(f"method {self.name!r} needs the profiles' text embeddings (signals with "
                             f"user_raw / item_raw)")
        self.profiles = torch.cat([torch.as_tensor(sig.user_raw).float(),
                                   torch.as_tensor(sig.item_raw).float()]).to(ctx.device)
        m = ctx.cfg.model
        d_cf = m.dim * (m.layers + 1) if m.backbone == "ngcf" else m.dim     # NGCF concatenates its layers
        self.mlp = self._projection(self.profiles.shape[1], d_cf).to(ctx.device)

    def _projection(self, d_s: int, d_cf: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def parameters(self) -> List[nn.Parameter]:
        return list(self.mlp.parameters())

    def state_dict(self) -> Dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.mlp.state_dict().items()}

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        if state:
            self.mlp.load_state_dict(state)


class RLMRecCon(_RLMRec):
    name = "rlmrec-con"
    description = "BPR + contrastive alignment with the encoded profiles (RLMRec-Con)"
    Settings = RLMRecConSettings

    def _projection(self, d_s: int, d_cf: int) -> nn.Module:
        return _mlp(d_s, d_cf, derive_seed(self.ctx.cfg.train.seed, Stream.METHOD))

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        bu, bi = step.batch_nodes(self.ctx.n_users)
        s = self.mlp(self.profiles[torch.cat([bu, bi])])
        tau = self.cfg.rlmrec_con_tau
        kd = losses.infonce(z[bu], s[: bu.numel()], tau) + losses.infonce(z[bi], s[bu.numel():], tau)
        return {"kd": (self.cfg.rlmrec_con_lambda, kd)}


class RLMRecGen(_RLMRec):
    name = "rlmrec-gen"
    description = "BPR + masked reconstruction of the encoded profiles (RLMRec-Gen)"
    Settings = RLMRecGenSettings

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.mask_token = nn.Parameter(torch.zeros(1, ctx.cfg.model.dim, device=ctx.device))

    def _projection(self, d_s: int, d_cf: int) -> nn.Module:
        return _mlp(d_cf, d_s, derive_seed(self.ctx.cfg.train.seed, Stream.METHOD))

    def parameters(self) -> List[nn.Parameter]:
        return super().parameters() + [self.mask_token]

    def state_dict(self) -> Dict[str, Tensor]:
        return {**super().state_dict(), "mask_token": self.mask_token.detach().clone()}

    def load_state_dict(self, state: Dict[str, Tensor]) -> None:
        if state:
            with torch.no_grad():
                self.mask_token.copy_(state["mask_token"])
            super().load_state_dict({k: v for k, v in state.items() if k != "mask_token"})

    def representations(self, step: Step) -> Tensor:
        ego = self.model.ego()
        n = ego.shape[0]
        g = torch.Generator().manual_seed(derive_seed(self.ctx.cfg.train.seed, Stream.METHOD, step.epoch, step.index))
        seeds = torch.randperm(n, generator=g)[: max(1, int(round(n * self.cfg.rlmrec_mask_ratio)))]
        seeds = seeds.to(ego.device)
        masked = ego.index_copy(0, seeds, self.mask_token.expand(seeds.numel(), -1))
        step.scratch["seeds"] = seeds
        return self.model(self.graph.propagation, generator=step.gen, ego=masked)

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        seeds = step.scratch["seeds"]
        gen = losses.infonce(self.mlp(z[seeds]), self.profiles[seeds], self.cfg.rlmrec_gen_tau)
        return {"gen": (self.cfg.rlmrec_gen_lambda, gen)}

    @torch.no_grad()
    def eval_representations(self) -> Tensor:
        return self.model(self.graph.propagation)
