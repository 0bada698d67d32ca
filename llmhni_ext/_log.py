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
    """Whether progress bars are off: ``TQDM_DISABLE`` set (by the user, or by
    :func:`turn_bars_off` for ``--no-progress`` or a standard error that is not a terminal)."""
    import os
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


_tqdm_default_off = False


def turn_bars_off(force: bool = True) -> None:
    """Progress bars off for this process and the processes it starts: every tqdm bar (ours,
    transformers', the Hugging Face hub's) and the hub's own. ``force`` False (standard error
    is a log file or a pipe) keeps a ``TQDM_DISABLE`` the user set. tqdm reads ``TQDM_DISABLE``
    once, when it is imported, and torch imports it before any command runs, so tqdm's default
    is changed in place as well; a bar that passes ``disable`` itself keeps its choice."""
    import functools
    import os
    set_ = os.environ.__setitem__ if force else os.environ.setdefault
    set_("TQDM_DISABLE", "1")
    set_("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    global _tqdm_default_off
    if _tqdm_default_off or not bars_off():
        return
    import tqdm.std
    tqdm.std.tqdm.__init__ = functools.partialmethod(tqdm.std.tqdm.__init__, disable=True)
    _tqdm_default_off = True
