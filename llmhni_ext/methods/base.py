"""What a training method is, and what one training step hands it.

A method decides four things and nothing else:

* the graph its recommendation loss trains on and predicts with (``graph``), and therefore
  the positives of a batch and the ones the sampler must never return;
* how negatives are drawn (``sampler_mode``: uniform, popularity, dns or llmhni);
* its recommendation loss ``L_rec`` (``rec_loss``, BPR unless it says otherwise);
* its auxiliary terms ``{name: (lambda_k, L_k)}`` (``aux_losses``).

The loop (:class:`llmhni_ext.train.Trainer`) then minimises
``L = L_rec + sum_k lambda_k L_k + l2 * L_reg``. A method is one module of this package:
its settings dataclass (:mod:`llmhni_ext.methods.settings`), its :class:`Method` subclass,
and its module's name in :data:`llmhni_ext.methods.MODULES`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Protocol, Tuple, Type

import torch
from torch import Tensor, nn

from .. import losses
from ..contrastive import edge_drop_views
from ..distributed import edge_drop_views as partitioned_views
from ..graph import CSR, normalized_bipartite_adj
from ..sampling import SamplerSpec
from ..sections import DataConfig, ModelConfig, TrainConfig
from ..seeding import Stream, derive_seed
from ..signals.config import SignalsConfig
from .settings import MethodSettings

if TYPE_CHECKING:  # pragma: no cover
    from ..data.dataset import Dataset
    from ..models import Backbone
    from ..signals.stage import Signals


class RunSettings(Protocol):
    """What a method reads of the run's configuration (:class:`llmhni_ext.config.RunConfig`,
    which builds its ``method`` section from this package, is one)."""
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    method: Any                   # the merged section; a method reads its own typed Settings
    signals: SignalsConfig


@dataclass
class Graph:
    """One training graph: its edges (users, items) and its normalised adjacency; under
    torch.distributed also this rank's block of it (``part``), which the propagation uses."""
    users: Tensor
    items: Tensor
    adj: CSR
    part: Any = None

    @property
    def propagation(self) -> Any:
        """What the backbone propagates on: the rank's block when partitioned, else the CSR."""
        return self.adj if self.part is None else self.part

    @classmethod
    def build(cls, users: Tensor, items: Tensor, n_users: int, n_items: int, device: torch.device) -> "Graph":
        users, items = users.to(device), items.to(device)
        return cls(users, items, normalized_bipartite_adj(users, items, n_users, n_items))


@dataclass
class RunContext:
    """What a method may read about its run (and nothing it could change behind the loop's back)."""
    cfg: RunSettings              # the run's validated configuration
    dataset: "Dataset"
    signals: Optional["Signals"]  # the signals stage's output, for the methods that need it
    model: "Backbone"
    G: Graph                      # the observed training graph
    device: torch.device

    @property
    def n_users(self) -> int:
        return self.dataset.n_users

    @property
    def n_items(self) -> int:
        return self.dataset.n_items


@dataclass
class Step:
    """One training step: its place in the run, its batch and its random stream."""
    epoch: int
    index: int                    # step within the epoch
    global_step: int              # epoch * steps_per_epoch + index (the sampler's counter)
    users: Tensor                 # [B] batch users
    pos: Tensor                   # [B] their positives (item ids)
    gen: torch.Generator          # this step's dropout / noise stream
    z_users: Optional[Tensor] = None   # [B, d] representations of the batch users, positives and
    z_pos: Optional[Tensor] = None     # negatives ([B, d] or [B, N, d]), set by the loop before rec_loss
    z_neg: Optional[Tensor] = None
    scratch: Dict[str, Any] = field(default_factory=dict)   # what a method keeps between its hooks

    def batch_nodes(self, n_users: int) -> Tuple[Tensor, Tensor]:
        """The batch's distinct users and items, as node ids (items offset by ``n_users``)."""
        return torch.unique(self.users), torch.unique(self.pos) + n_users


class Method:
    """Base of every training method: BPR on G with uniform negatives, no auxiliary terms."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: how negatives are drawn: uniform | popularity | dns | llmhni
    sampler_mode: ClassVar[str] = "uniform"
    #: the settings it reads (``method.<key>`` in the run configuration), its own dataclass
    Settings: ClassVar[Type[MethodSettings]] = MethodSettings
    #: settings fixed by the method's name (ablation switches), applied by validation
    implies: ClassVar[Dict[str, Any]] = {}
    #: what it needs from the signals stage: None, "texts" (profile embeddings) or "all"
    needs_signals: ClassVar[Optional[str]] = None
    #: the backbones it is defined for (None: every backbone); checked when the config is validated
    backbones: ClassVar[Optional[Tuple[str, ...]]] = None
    #: whether L_rec couples the batch's rows (not a mean of per-row terms): then every rank of a
    #: distributed run computes it over the whole batch
    rec_couples_rows: ClassVar[bool] = False

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.cfg: Any = self.Settings.of(ctx.cfg.method)     # this method's own, typed settings
        self._views: Dict[str, Any] = {"epoch": -1}

    # -- what it trains on ---------------------------------------------------------------
    @property
    def model(self) -> "Backbone":
        return self.ctx.model

    @property
    def graph(self) -> Graph:
        """The graph L_rec trains on, whose edges are the batch positives, and which the
        representations are computed on at evaluation."""
        return self.ctx.G

    def parameters(self) -> List[nn.Parameter]:
        """Parameters of the method's own (besides the backbone's), trained with it."""
        return []

    def summary(self) -> Dict[str, Any]:
        """Facts about the method's inputs recorded in the results (e.g. what G' changed)."""
        return {}

    # -- one step ------------------------------------------------------------------------
    def representations(self, step: Step) -> Tensor:
        """z = f(graph; e^(0)): the representations L_rec scores."""
        return self.model(self.graph.propagation, generator=step.gen)

    @torch.no_grad()
    def eval_representations(self) -> Tensor:
        """The representations evaluation ranks with (the model is in eval mode)."""
        return self.model(self.graph.propagation)

    def graphs(self) -> List[Graph]:
        """Every graph the method propagates on (the trainer partitions them under torch.distributed)."""
        return [self.graph]

    def sampler_spec(self) -> SamplerSpec:
        """How the sampler draws this method's negatives (the same for every step)."""
        return SamplerSpec(mode=self.sampler_mode, num_negatives=self.cfg.num_negatives)

    def scoring_embeddings(self, z: Tensor) -> Optional[Tuple[Tensor, Tensor]]:
        """The (user, item) tables a scored mode (dns, llmhni) ranks candidates with; None else."""
        if self.sampler_mode not in ("dns", "llmhni"):
            return None
        zu, zi = self.model.split(z.detach())
        return zu, zi

    def rec_loss(self, s_pos: Tensor, s_neg: Tensor, step: Step) -> Tensor:
        """L_rec; BPR (:func:`llmhni_ext.losses.bpr_loss`)."""
        return losses.bpr_loss(s_pos, s_neg)

    def aux_losses(self, step: Step, z: Tensor) -> Dict[str, Tuple[float, Tensor]]:
        """The auxiliary terms ``{name: (lambda_k, L_k)}`` of this step."""
        return {}

    def on_epoch_end(self, epoch: int) -> None:
        """Called after the last step of each epoch, before its evaluation."""

    # -- state kept across steps ------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass

    # -- shared helpers -------------------------------------------------------------------
    @property
    def view_keep_prob(self) -> float:
        """The edge keep rate of :meth:`edge_dropped_views`: a method that uses the views names
        the setting that holds it."""
        raise NotImplementedError(f"method {self.name!r} uses edge-dropped views but defines no view_keep_prob")

    def edge_dropped_views(self, epoch: int, *graphs: Graph) -> Tuple[Any, ...]:
        """Edge-dropped views (each undirected edge kept with :attr:`view_keep_prob`), fresh each
        epoch: one of each graph given, or two of the single graph given. Epoch ``e`` uses
        counter offsets ``2e`` and ``2e + 1`` of the views stream. Under torch.distributed each
        rank builds its block of the same views."""
        if self._views["epoch"] != epoch:
            seed, p = derive_seed(self.ctx.cfg.train.seed, Stream.VIEWS), self.view_keep_prob

            def views_of(g: Graph, num: int, offset: int):
                if g.part is not None:
                    return partitioned_views(g.part, p, num, seed, offset)
                return edge_drop_views(g.adj, p, num_views=num, seed=seed, offset=offset)
            if len(graphs) == 1:
                views = tuple(views_of(graphs[0], 2, 2 * epoch))
            else:
                views = tuple(views_of(g, 1, 2 * epoch + k)[0] for k, g in enumerate(graphs))
            self._views = {"epoch": epoch, "views": views}
        return self._views["views"]
