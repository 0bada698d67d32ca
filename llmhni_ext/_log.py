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
