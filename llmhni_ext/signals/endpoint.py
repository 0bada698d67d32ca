"""POSTs JSON to an OpenAI-compatible endpoint with retries and exponential backoff."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

#: What a failed try can raise: transport errors, and malformed answers from ``parse``.
RETRYABLE = (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError)


def post_json(url: str, payload: Any, parse: Callable[[Any], T], *, api_key: str = "", timeout_s: float,
              retries: int, backoff_s: float) -> T:
    """``parse(answer JSON)`` of the first try that succeeds; after ``retries + 1`` failed tries
    raises :class:`EndpointFailure` carrying the last error."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    last: Optional[BaseException] = None
    for attempt in range(retries + 1):
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                data = json.loads(resp.read().decode("utf-8"))
            return parse(data)
        except RETRYABLE as e:
            last = e
            if attempt < retries:
                time.sleep(backoff_s * (2 ** attempt))
    raise EndpointFailure(last)


class EndpointFailure(RuntimeError):
    """Every try failed; ``last`` is the last error."""

    def __init__(self, last: Optional[BaseException]) -> None:
        super().__init__(f"{type(last).__name__}: {last}")
        self.last = last
