"""llmhni's messages go through the ``llmhni`` logger, so a library user can silence,
filter or redirect them (``logging.getLogger("llmhni").setLevel(logging.WARNING)``); the
progress bars write to stderr as before. The ``llmhni`` command sends INFO messages to
standard output (:func:`to_stdout`)."""
from __future__ import annotations

import logging
import sys

logger = logging.getLogger("llmhni")


def info(msg: str) -> None:
    logger.info(msg)


class _Stdout(logging.Handler):
    """Writes each message to the current ``sys.stdout`` (looked up per message, so that
    redirections made later, by a test harness for instance, are followed)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def to_stdout() -> None:
    """Plain INFO messages on standard output, once (the command line's behaviour)."""
    if not any(isinstance(h, _Stdout) for h in logger.handlers):
        logger.addHandler(_Stdout())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def bars_off() -> bool:
    """Whether progress bars are off: ``TQDM_DISABLE`` set (``--no-progress``, or the command
    line's standard error being a log file or a pipe), read when each bar is made."""
    import os
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


def progress_bar(**kw):
    """A tqdm bar (``tqdm.auto``) that draws nothing where :func:`bars_off` says so."""
    from tqdm.auto import tqdm
    kw.setdefault("disable", bars_off())
    return tqdm(**kw)


def quiet_third_party() -> None:
    """Where bars are off, also turn off the bars transformers and the Hugging Face hub draw
    (model loading, GGUF conversion, downloads): they read their switches when first imported,
    which may be before the command line set ``TQDM_DISABLE``."""
    if not bars_off():
        return
    try:
        from transformers.utils import logging as tl
        tl.disable_progress_bar()
    except Exception:  # noqa: BLE001 - transformers absent or changed: its bars stay
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars
        disable_progress_bars()
    except Exception:  # noqa: BLE001
        pass
