"""Typed configuration of the signals stage (semantic relevance, objective alignment,
logical relevance), loadable from YAML.

The fields are flat so that ``SignalsConfig(**run_config["signals"])`` works; groups:
``encoder*`` (text encoder), ``proj_*`` (the projector, objective alignment),
``cand_*`` (candidates from the pre-trained backbone), ``judge*`` / ``lm_*`` (logical
relevance judges).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, get_type_hints

from ..typed import coerce  # one set of type rules for every config

ENCODERS = ("minilm", "sentence-transformers", "openai", "precomputed", "hashing", "interactions")
JUDGES = ("local-lm", "openai-chat", "embedding", "oracle", "imported", "none")
#: prefixes of the settings that only the judging (logical relevance) reads
JUDGE_KEYS = ("judge", "lm_", "cand_", "oracle_", "high_margin", "low_margin", "context_items", "signals_budget_s",
              "item_noun")


@dataclass
class SignalsConfig:
    # --- semantic relevance: text encoder -------------------------------------------
    #: minilm (bundled all-MiniLM-L6-v2, offline) | sentence-transformers (encoder_path)
    #: | openai (/v1/embeddings at encoder_url) | precomputed (the data set's arrays or
    #: encoder_path .npy/.pkl files "users.npy,items.npy") | hashing (a tiny bag-of-words
    #: encoder without any model; for tests and smoke runs) | interactions (TEXT-FREE
    #: stand-in for data sets without text, e.g. the LightGCN-format ML-1M and Last.fm: a
    #: truncated SVD of the training matrix; no language model is involved)
    encoder: str = "minilm"
    encoder_path: Optional[str] = None  #: sentence-transformers: a model folder; precomputed: "users.npy,items.npy"
    encoder_url: Optional[str] = None   #: openai: base URL of an embeddings endpoint, e.g. http://127.0.0.1:8001/v1
    encoder_model: Optional[str] = None  #: openai: the model name sent with each request
    encoder_batch: int = 64            #: texts per encoder call
    encoder_max_chars: int = 2000      #: each profile text is cut to this many characters before encoding
    encoder_dtype: str = "auto"        #: auto (float32 on CPUs: the same embeddings on every CPU; bfloat16 on GPUs) | float32 | bfloat16 | float16
    # --- objective alignment (the projector) ---------------------------------------
    align: bool = True                 #: False = "without objective alignment": raw text similarity
    proj_dim: int = 64                 #: output size of the projector (the semantic space the sampler uses)
    proj_hidden: int = 256             #: hidden width of the projector MLP
    proj_epochs: int = 20              #: projector training epochs (InfoNCE on the pseudo-positive pairs)
    proj_batch: int = 1024             #: pairs per projector batch
    proj_lr: float = 1e-3              #: projector learning rate (Adam)
    proj_tau: float = 0.1              #: projector InfoNCE temperature
    #: a training pair is a pseudo-positive when its raw text similarity ranks in the
    #: top ``proj_pseudo_frac`` of the user's training items (at least one per user)
    proj_pseudo_frac: float = 0.5
    # --- logical relevance: candidates from the pre-trained backbone ---------------
    #: per user, max(cand_pos_per_user, ceil(cand_pos_frac * |P_u|)) lowest-scored training positives and
    #: max(cand_neg_per_user, ceil(cand_neg_frac * |P_u|)) highest-scored non-interacted items are judged
    cand_pos_per_user: int = 1
    cand_neg_per_user: int = 1         #: at least this many non-interactions judged per user (see cand_pos_per_user)
    #: 0.05 had the best validation Recall@20 with the bundled judge on ML-100K at 20% noise (0.05: 0.3266,
    #: 0.1: 0.3246, 0.2: 0.3238, 0.5: 0.3189; bench/RESULTS.md): that judge has no skill, so the less it
    #: drops the better. With a judge of accuracy 0.8 or more, 0.5 (92% of the noise reachable) pays.
    cand_pos_frac: float = 0.05
    cand_neg_frac: float = 0.05        #: share of |P_u| of highest-scored non-interactions judged per user
    context_items: int = 3             #: highest-scored interacted items shown in the item-centric view
    #: users whose candidates are judged, most suspicious first: 0 = every user with candidates,
    #: N = the N most suspicious users. What is judged follows the configuration and the data only,
    #: never the machine's speed (-1, the old clock-bound "auto", is read as 0)
    cand_max_users: int = 0
    #: 0 = no limit; > 0: judging stops once the signals stage has run this many seconds, the
    #: answers so far stay cached, and the stage fails (``llmhni`` exits with status 3); the same
    #: command continues where it stopped. A partial G' is never trained on
    signals_budget_s: float = 0.0
    # --- judges ---------------------------------------------------------------------
    judge: str = "local-lm"            #: local-lm | openai-chat | embedding (a proxy) | imported | oracle (analysis only)
    oracle_accuracy: float = 0.8       #: judge "oracle" (ANALYSIS ONLY): share of verdicts that match the labels
    judge_model: Optional[str] = None  #: local-lm: a transformers path or a .gguf file (default: the bundled Gemma-3-270M)
    judge_url: Optional[str] = None    #: openai-chat: base URL, e.g. http://127.0.0.1:8000/v1
    #: imported: the file holding an external G' (a LLaRD .npy, 'user item' or '+/- user item' lines), or
    #: "llard" for the LLaRD G' of a llard-* data set (llmhni_ext/signals/imported.py)
    judge_import: Optional[str] = None
    judge_import_base: Optional[str] = None  #: imported: the graph a whole G' file was made from (default: see imported.py)
    #: imported: an added pair that is a held-out (valid or test) pair: drop (never trained on) | keep (test pairs
    #: are added, as the source's own training did; a validation pair never is)
    judge_import_heldout: str = "drop"
    judge_api_key_env: str = "OPENAI_API_KEY"  #: openai-chat: the environment variable holding the API key
    judge_concurrency: int = 4         #: openai-chat: requests in flight at once
    judge_timeout_s: float = 60.0      #: openai-chat: seconds one request may take
    judge_retries: int = 3             #: transport retries per request (errors, timeouts, HTTP 429/5xx)
    judge_answer_tries: int = 2        #: questions asked per pair until a High/Mid/Low answer (then unknown)
    judge_backoff_s: float = 0.5       #: first retry wait in seconds, doubled per retry (or the server's Retry-After)
    lm_dtype: str = "auto"             #: auto (float32 on CPUs: the same verdicts on every CPU; bfloat16 on GPUs) | float32 | bfloat16 | float16
    lm_batch: int = 64                 #: suffix rows per forward pass
    lm_users_per_batch: int = 16       #: users whose contexts run together (one padded batch)
    lm_profile_tokens: int = 48        #: user profile tokens kept in the user-centric context
    #: likelihood/similarity judges: High when the score is at least the user's reference
    #: level minus ``high_margin`` pooled standard deviations, Low below ``low_margin``
    high_margin: float = 0.5
    low_margin: float = 1.5            #: Low below the reference level minus this many pooled standard deviations
    item_noun: str = "auto"            #: "movie", "artist", ... ("auto" guesses from the data set name)
    # --- run ------------------------------------------------------------------------
    device: str = "auto"               #: auto (cuda when present) | cpu | cuda | cuda:N
    seed: int = 0                      #: seed of the projector, the text-free SVD stand-in and the oracle judge
    progress: bool = True              #: progress bars

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "SignalsConfig":
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"SignalsConfig: {msg}")
        need(self.encoder in ENCODERS, f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        need(self.encoder != "sentence-transformers" or bool(self.encoder_path),
             "encoder 'sentence-transformers' needs encoder_path")
        need(self.encoder != "openai" or bool(self.encoder_url), "encoder 'openai' needs encoder_url")
        need(self.judge in JUDGES, f"judge must be one of {JUDGES}, got {self.judge!r}")
        need(self.judge != "openai-chat" or bool(self.judge_url), "judge 'openai-chat' needs judge_url")
        need(self.judge != "imported" or bool(self.judge_import),
             "judge 'imported' needs judge_import (a G' file, or 'llard' for a llard-* data set)")
        need(self.judge_import_heldout in ("drop", "keep"),
             f"judge_import_heldout must be drop or keep, got {self.judge_import_heldout!r}")
        for name in ("judge_answer_tries", "encoder_batch", "proj_dim", "proj_hidden", "proj_batch", "lm_batch",
                     "judge_concurrency", "lm_profile_tokens", "encoder_max_chars", "lm_users_per_batch"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("proj_epochs", "cand_pos_per_user", "cand_neg_per_user", "judge_retries"):
            need(int(getattr(self, name)) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        if self.cand_max_users == -1:          # configurations written before: "auto" judged a clock-bound count
            self.cand_max_users = 0
        need(self.cand_max_users >= 0, f"cand_max_users must be 0 (every user) or N > 0, got {self.cand_max_users}")
        need(0.0 <= self.cand_pos_frac <= 1.0 and 0.0 <= self.cand_neg_frac <= 1.0,
             f"cand_pos_frac and cand_neg_frac must be in [0, 1], got {self.cand_pos_frac}, {self.cand_neg_frac}")
        need(self.signals_budget_s >= 0, f"signals_budget_s must be >= 0 (0: no limit), got {self.signals_budget_s}")
        need(0.0 <= self.oracle_accuracy <= 1.0, f"oracle_accuracy must be in [0, 1], got {self.oracle_accuracy}")
        need(self.context_items >= 1, f"context_items must be >= 1, got {self.context_items}")
        need(0 < self.proj_pseudo_frac <= 1, f"proj_pseudo_frac must be in (0, 1], got {self.proj_pseudo_frac}")
        need(self.proj_tau > 0 and self.proj_lr > 0, "proj_tau and proj_lr must be > 0")
        need(self.judge_timeout_s > 0 and self.judge_backoff_s >= 0, "judge_timeout_s must be > 0, judge_backoff_s >= 0")
        need(self.low_margin >= self.high_margin, f"low_margin ({self.low_margin}) must be >= high_margin ({self.high_margin})")
        for name in ("lm_dtype", "encoder_dtype"):
            need(getattr(self, name) in ("auto", "float32", "bfloat16", "float16"),
                 f"{name} must be auto, float32, bfloat16 or float16, got {getattr(self, name)!r}")
        return self

    # -- I/O -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "SignalsConfig":
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"SignalsConfig: unknown option(s) {unknown}; known: {sorted(names)}")
        hints = get_type_hints(cls)
        return cls(**{k: coerce(v, hints[k], f"signals.{k}") for k, v in d.items()})

    @classmethod
    def from_yaml(cls, path: str) -> "SignalsConfig":
        """Reads a YAML file holding the options, either at top level or under ``signals:``."""
        import yaml
        with open(path, "r", encoding="utf-8") as f:
            d = yaml.safe_load(f) or {}
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a mapping of signals options")
        if "signals" in d and isinstance(d["signals"], dict):
            d = d["signals"]
        return cls.from_dict(d)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "SignalsConfig":
        return dataclasses.replace(self, **changes)


def resolve_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def fast_dtype(device: str):
    """bfloat16 on CUDA; float32 on every CPU. CPUs with bf16 units (avx512_bf16, AMX) would run
    bfloat16 faster, but their verdicts and embeddings would differ from every other CPU's, and
    what a run judges must not depend on the machine it runs on (``bfloat16`` can be asked for)."""
    import torch
    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def resolve_dtype(name: str, device: str):
    import torch
    return fast_dtype(device) if name == "auto" else getattr(torch, name)
