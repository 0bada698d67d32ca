"""Logical-relevance judges: OpenAI-compatible chat endpoints, a local causal LM by
likelihood, and an embedding-similarity proxy. Heavy dependencies load lazily."""
from .base import Judge, JudgeInputs, ScoreJudge, UserTask, calibrated_labels

__all__ = ["Judge", "JudgeInputs", "ScoreJudge", "UserTask", "calibrated_labels"]
