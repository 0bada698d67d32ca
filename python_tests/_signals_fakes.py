"""Fakes shared by the signals tests: a local OpenAI-compatible server and a tiny tokenizer."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _serve(obj, handler) -> None:
    """Serve ``handler`` on 127.0.0.1 (a free port) in a daemon thread; sets obj.server/port/thread."""
    obj.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    obj.server.daemon_threads = True
    obj.port = obj.server.server_address[1]
    obj.thread = threading.Thread(target=obj.server.serve_forever, daemon=True)
    obj.thread.start()


class FakeOpenAI:
    """OpenAI-compatible endpoints on 127.0.0.1. The first path segment picks the behaviour:
    /good (answers High when the prompt mentions 'space', else Low), /bad (nonsense),
    /flaky (nonsense on the first try of each prompt, then Mid), /slow (sleeps), /error (HTTP 500);
    embeddings: /tokens (one vector per token), /ragged (widths differ), /nan.
    /v1/embeddings answers deterministic vectors."""

    def __init__(self, slow_s: float = 2.0) -> None:
        self.calls = 0
        self.seen = {}
        self.auth = []          # (path, Authorization header) of every request
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                outer.calls += 1
                outer.auth.append((self.path, self.headers.get("Authorization")))
                mode = self.path.strip("/").split("/")[0]
                if mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                if mode == "notjson":
                    data = b'{"choices": [{"message": '
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if mode.startswith("ratelimit"):       # /ratelimit-<seconds>: 429 once per prompt, then good
                    key = json.dumps(body.get("messages"))
                    if outer.seen.get(key, 0) == 0:
                        outer.seen[key] = 1
                        self.send_response(429)
                        self.send_header("Retry-After", mode.split("-", 1)[1])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    mode = "good"
                if mode in ("unauthorized", "notfound"):
                    self.send_response(401 if mode == "unauthorized" else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode.startswith("redirect"):        # /redirect-<port>/...: 307 to another host
                    self.send_response(307)
                    self.send_header("Location", f"http://localhost:{mode.split('-')[1]}/good/v1/chat/completions")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        for _ in range(200):
                            self.wfile.write(b" " * (1 << 20))
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if mode == "drip":                     # one byte every 0.2 s: each read is quick
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    try:
                        for _ in range(100):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.2)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if mode == "slow":
                    time.sleep(slow_s)
                if self.path.endswith("/embeddings"):
                    inp = body["input"]
                    data = [{"index": k, "embedding": [float(len(t)), float(t.count("a")), 1.0]} for k, t in enumerate(inp)]
                    if mode == "nan":
                        data[0]["embedding"][1] = float("nan")
                    elif mode == "tokens":           # one vector per token, as llama.cpp without pooling
                        data = [{"index": k, "embedding": [[float(len(t)), float(j), 1.0] for j in range(len(t.split()))]}
                                for k, t in enumerate(inp)]
                    elif mode == "ragged":
                        data = [{"index": k, "embedding": [1.0] * (2 + k)} for k, t in enumerate(inp)]
                    out = {"data": data}
                else:
                    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
                    if mode == "good":
                        ans = "High" if "space" in prompt.lower() else "**Low.**"
                    elif mode == "flaky":
                        k = outer.seen.get(prompt, 0)
                        outer.seen[prompt] = k + 1
                        ans = "Medium-ish, hard to say" if k == 0 else "Mid"
                    else:
                        ans = "I really cannot decide; maybe high, maybe low."
                    out = {"choices": [{"message": {"role": "assistant", "content": ans}}]}
                data = json.dumps(out).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        _serve(self, H)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ChaosOpenAI:
    """A chat endpoint on 127.0.0.1 that fails ``fail`` of its requests at random (seeded):
    HTTP 500, HTTP 429 with Retry-After, a connection closed without an answer, or a slow
    answer; the rest answer High (prompt mentions 'space') or Low. ``counts`` says what it did."""

    def __init__(self, fail: float = 0.2, seed: int = 0, slow_s: float = 0.3, retry_after: str = "0.05") -> None:
        import random
        rng = random.Random(seed)
        lock = threading.Lock()
        self.counts = {"requests": 0, "answered": 0, "500": 0, "429": 0, "reset": 0, "slow": 0}
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                with lock:
                    outer.counts["requests"] += 1
                    r = rng.random()
                    what = None if r >= fail else ("500", "429", "reset", "slow")[int(r / fail * 4)]
                    if what:
                        outer.counts[what] += 1
                if what == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if what == "429":
                    self.send_response(429)
                    self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if what == "reset":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if what == "slow":
                    time.sleep(slow_s)
                prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
                data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                            "content": "High" if "space" in prompt else "Low"}}]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    with lock:
                        outer.counts["answered"] += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass

        _serve(self, H)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    close = FakeOpenAI.close


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"


class CharTokenizer:
    """A byte-level tokenizer with the interface the likelihood judge uses."""
    bos_token_id = 1
    eos_token_id = 2
    pad_token_id = 0

    def encode(self, text, add_special_tokens=False):
        return [3 + (b % 60) for b in text.encode("utf-8")]
