"""Atomic files: a checkpoint, a JSON document or a text file is either the old one or the
complete new one, never half written (write to a temporary file in the same folder,
flush, fsync, then rename over the target)."""
from __future__ import annotations

import io
import json
import os
import secrets
import time
from typing import Any, Callable, Dict

import torch


_TMP = ".tmp-"


def _atomic_write(path: str, write: Callable[[io.BufferedWriter], None]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The writer's pid is in the name, so clean_stale_tmp() can tell an abandoned file from a
    # live one; created with mode 0666 so the umask applies as for open() (mkstemp's 0600
    # made the outputs unreadable to others).
    while True:
        tmp = os.path.join(folder, f"{_TMP}{os.getpid()}-{secrets.token_hex(4)}-{os.path.basename(path)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except RuntimeError as e:       # torch.save reports a failed write as a RuntimeError
            raise _write_error(e, folder, path) from None
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_error(e: BaseException, folder: str, path: str) -> OSError:
    """An OSError (with the file's name) for a serializer's failed write: ENOSPC when the
    file system is (nearly) full, else EIO, with the serializer's message."""
    import errno
    try:
        st = os.statvfs(folder)
        free = st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        free = None
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if free is not None and free < (1 << 20):
        return OSError(errno.ENOSPC, f"No space left on device ({free} bytes free; {first})", path)
    return OSError(errno.EIO, f"writing failed ({first})", path)


def write_bytes(data: bytes, path: str) -> None:
    _atomic_write(path, lambda f: f.write(data))


def clean_stale_tmp(folder: str, max_age_s: float = 3600.0) -> int:
    """Remove temporary files that an interrupted atomic write left in ``folder`` (not
    recursive): those whose writer process is gone, and unlabelled ones older than
    ``max_age_s``. Returns how many were removed."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(_TMP):
            continue
        p = os.path.join(folder, name)
        pid_s = name[len(_TMP):].split("-", 1)[0]
        stale = False
        if pid_s.isdigit():
            pid = int(pid_s)
            if pid != os.getpid():
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    stale = True
                except OSError:
                    stale = False
        else:
            try:
                stale = time.time() - os.path.getmtime(p) > max_age_s
            except OSError:
                stale = False
        if stale:
            try:
                os.unlink(p)
                removed += 1
            except OSError:
                pass
    return removed


def save_checkpoint(state: Dict[str, Any], path: str) -> None:
    _atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Reads a checkpoint with ``weights_only=True``: tensors, numbers, strings and plain
    containers only, so a crafted file cannot run code (checkpoints store nothing else)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        st = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "Unsupported global" in str(e) or "weights_only" in str(e):
            why = ("it holds objects other than tensors, numbers and strings, which llmhni never writes; "
                   f"refusing to unpickle them ({why})")
        raise RuntimeError(f"checkpoint {path!r} could not be read: {why}") from None
    if not isinstance(st, dict):
        raise RuntimeError(f"checkpoint {path!r} could not be read: expected a dict, found {type(st).__name__}")
    return st


def write_json(obj: Any, path: str) -> None:
    data = json.dumps(obj, indent=2, sort_keys=False, default=_jsonable).encode("utf-8")
    _atomic_write(path, lambda f: f.write(data + b"\n"))


def write_text(text: str, path: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)
