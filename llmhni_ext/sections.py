"""The sections of a run configuration that do not depend on the methods: data, model, train
(:mod:`llmhni_ext.config` assembles them with the method and signals sections into RunConfig)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class DataConfig:
    dataset: str = "ml-100k"          # ml-100k | ml-1m | lastfm | synthetic | a path the data loader accepts
    data_root: Optional[str] = None   # default: $LLMHNI_DATA_ROOT or the loader's default
    noise: float = 0.0                # injected noise ratio r: r * |train| random non-interactions added
    noise_seed: int = 0               # seed of the injected noise (the same noise for every training seed)
    max_users: int = 0                # >0: keep only the first max_users users (quick runs, tests)
    # validated: train on train, choose the epoch on valid, report test (the default, llmhni's);
    # paper: train on train + valid, choose the epoch on TEST, report test: the protocol behind
    # published Amazon-book numbers (LLaRD's code); test-selected and optimistic, for comparison only
    protocol: str = "validated"
    # original: train on the data set's graph; imported: on the G' that signals.judge_import names
    # (any method: "does the LLM's graph help a plain method?")
    graph: str = "original"


@dataclass
class ModelConfig:
    backbone: str = "lightgcn"        # mf | lightgcn | ngcf
    dim: int = 64                     # embedding size d
    layers: int = 3                   # propagation layers (LightGCN, NGCF; ignored by MF)
    ngcf_dropout: float = 0.1         # NGCF message dropout


@dataclass
class TrainConfig:
    epochs: int = 100                 # at most this many epochs (early stopping may end sooner)
    batch_size: int = 2048            # training pairs per step
    lr: float = 1e-3                  # Adam's learning rate
    l2: float = 1e-4                  # L2 on the batch's layer-0 (ego) embeddings, as in LightGCN
    eval_every: int = 1               # evaluate on validation every N epochs
    patience: int = 10                # evaluations without a better validation Recall@20
    eval_batch_size: int = 1024       # users per evaluation batch (results do not depend on it)
    eval_item_block: int = 8192       # items per top-k block (bounds evaluation memory)
    seed: int = 0                     # seed of the model's initialisation, the batches, the sampler and the views
    device: str = "cpu"               # cpu | cuda | cuda:N
    threads: int = 0                  # torch.set_num_threads; 0 leaves torch's default
    progress: bool = True             # progress bars (--no-progress)
    # how an epoch's batches are built: "interactions" shuffles the training interactions (each
    # once per epoch); "users" draws users uniformly, then one positive each (LightGCN's authors)
    batching: str = "interactions"
    dist_timeout_s: float = 300.0     # torch.distributed: how long a collective waits for a rank that died
