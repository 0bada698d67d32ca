"""Session-wide settings for the test suite.

Converted language models are machine-level artifacts that no test is about: every test
shares one folder of them (``$LLMHNI_MODELS_DIR``, default ``<LLMHNI_CACHE_DIR or
~/.cache/llmhni>/models``), so the bundled judge is converted at most once per machine and
cache, never once per test; each test still gets its own cache for everything else."""
import os

if not os.environ.get("LLMHNI_MODELS_DIR"):
    root = os.environ.get("LLMHNI_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "llmhni")
    os.environ["LLMHNI_MODELS_DIR"] = os.path.join(root, "models")
