"""LLMHNI's language-model signals: semantic relevance (text encoders, embedding cache),
objective alignment (the projector), logical relevance (candidates, judges, judgment
cache) and the stage that ties them together.

    from llmhni_ext.signals import SignalsConfig, prepare_signals
    sig = prepare_signals(ds, SignalsConfig(), backbone_embeddings=fn, cache_dir=cache)

Heavy dependencies (sentence-transformers, transformers) load only when used.
"""
from .config import SignalsConfig
from .stage import Signals, prepare_signals
from .summary import format_summary

__all__ = ["SignalsConfig", "Signals", "prepare_signals", "format_summary"]
