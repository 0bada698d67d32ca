"""POSTs JSON to an OpenAI-compatible endpoint with retries and exponential backoff.

What a hostile or broken server cannot do to it:

* redirects are never followed (a redirect could send the ``Authorization`` header to
  another host); the error names the target so the user can point the URL there;
* ``timeout_s`` bounds each whole try (connect, headers and body), not only each read,
  so a server that drips one byte at a time cannot hold a try forever;
* answers larger than ``max_bytes`` are refused before they are fully read;
* only transient failures are retried (transport errors, HTTP 408, 429 and 5xx), after the
  exponential backoff or the server's ``Retry-After`` (seconds or an HTTP date), whichever is
  longer, but never more than ``MAX_RETRY_AFTER_S`` per wait;
  HTTP 401, 403, 404 and other client errors, redirects, oversized answers and answers
  that ``parse`` rejects fail at once (retrying cannot change them);
* the API key is sent only in the header and never appears in an error message.
"""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")

#: the largest answer read (a chat label or a batch of embeddings is far smaller)
MAX_BYTES = 64 << 20
_RETRY_STATUS = {408, 429}
#: the longest wait a server's Retry-After can ask for (a hostile one could ask for a year)
MAX_RETRY_AFTER_S = 60.0


def retry_after_s(value: Optional[str]) -> float:
    """Seconds a ``Retry-After`` header asks for (0 when absent or unreadable), capped."""
    if not value:
        return 0.0
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime
        try:
            import datetime
            when = parsedate_to_datetime(value)
            secs = (when - datetime.datetime.now(when.tzinfo or datetime.timezone.utc)).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return 0.0
    if secs != secs:          # NaN
        return 0.0
    return float(min(max(secs, 0.0), MAX_RETRY_AFTER_S))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401, ARG002
        raise _Fatal(f"HTTP {code} redirect to {newurl}: redirects are not followed (they could carry the API key "
                     f"to another host); use the final URL")


_OPENER = urllib.request.build_opener(_NoRedirect)


class _Fatal(Exception):
    """A failure that another try cannot change."""


def _read_bounded(resp, deadline: float, max_bytes: int) -> bytes:
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise _Fatal(f"answer of {int(length)} bytes exceeds the limit of {max_bytes} bytes")
    chunks, total = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer did not arrive within the request's time limit")
        sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(max(left, 1e-3))
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise _Fatal(f"answer exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)


def post_json(url: str, payload: Any, parse: Callable[[Any], T], *, api_key: str = "", timeout_s: float,
              retries: int, backoff_s: float, max_bytes: int = MAX_BYTES) -> T:
    """``parse(answer JSON)`` of the first try that succeeds. Transient failures are tried
    ``retries + 1`` times in all; then, or at once for a permanent failure (see the module
    docstring), raises :class:`EndpointFailure` carrying the last error."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    last: Optional[BaseException] = None
    for attempt in range(retries + 1):
        wait = 0.0
        deadline = time.monotonic() + timeout_s
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with _OPENER.open(req, timeout=timeout_s) as resp:
                raw = _read_bounded(resp, deadline, max_bytes)
        except _Fatal as e:
            raise EndpointFailure(e, permanent=True) from None
        except urllib.error.HTTPError as e:
            wait = retry_after_s(e.headers.get("Retry-After") if e.headers is not None else None)
            e.close()
            if e.code not in _RETRY_STATUS and e.code < 500:
                raise EndpointFailure(_http_error(e), permanent=True) from None
            last = _http_error(e)
        except (urllib.error.URLError, OSError, socket.timeout) as e:  # transport: retried
            last = e
        else:
            try:
                data = json.loads(raw.decode("utf-8"))
                return parse(data)
            except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as e:
                raise EndpointFailure(ValueError(f"malformed answer ({type(e).__name__}: {e})"),
                                      permanent=True) from None
        if attempt < retries:
            time.sleep(max(backoff_s * (2 ** attempt), wait))
    raise EndpointFailure(last)


def _http_error(e: "urllib.error.HTTPError") -> Exception:
    what = {401: "unauthorized: check the API key variable", 403: "forbidden", 404: "not found: check the URL"}
    return RuntimeError(f"HTTP {e.code} {e.reason}" + (f" ({what[e.code]})" if e.code in what else ""))


class EndpointFailure(RuntimeError):
    """The request failed; ``last`` is the last error, ``permanent`` says whether retrying
    could not have helped."""

    def __init__(self, last: Optional[BaseException], permanent: bool = False) -> None:
        super().__init__(f"{type(last).__name__}: {last}")
        self.last = last
        self.permanent = permanent
