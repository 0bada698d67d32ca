"""Verified downloads of MovieLens-100K and the ML-100K LLM profiles.

Files are fetched only where they are absent from the data root. Each download
goes to ``<file>.part`` (resumed with an HTTP range request when a previous try
was cut off and the server supports ranges), is checked against the sha256 sum
embedded below (the sums of ``shared/data/README.md``), and only then renamed into
place, so a killed or corrupted download never leaves a file that looks complete.
A lock file keeps two processes from writing the same file at once.

Sources (overridable, e.g. to a local mirror, with the environment variables
``LLMHNI_ML100K_URL`` and ``LLMHNI_PROFILES_BASE_URL`` or the function arguments):

* MovieLens-100K: the GroupLens zip ``ml-100k.zip``; its members are verified one by one.
* The profiles: raw files of ``danialebrat/Unifying-LLMs-with-Recsys`` at commit
  3b88de112cf011a096593cf8e1d480725a02b669 (``Dataset/100k/`` and ``Dataset/preprocessed/``).

``LLMHNI_OFFLINE=1`` (or ``download=False`` in the loaders) turns downloads off.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .._common import cache_root

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
PROFILES_COMMIT = "3b88de112cf011a096593cf8e1d480725a02b669"
PROFILES_BASE_URL = f"https://raw.githubusercontent.com/danialebrat/Unifying-LLMs-with-Recsys/{PROFILES_COMMIT}"

ML100K_DIR = "ml-100k"
PROFILES_DIR = "ml-100k-llm-profiles"

#: sha256 of every MovieLens-100K file we use (from shared/data/README.md).
ML100K_SHA256: Dict[str, str] = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}

#: sha256 of RLMRec's Amazon-book files (shared/data/README.md); read from a data root, never downloaded
AMAZON_BOOK_SHA256: Dict[str, str] = {
    "trn_mat.pkl": "535cc15f915858a64249e3a893cceac9efe8e6f1ce17c08879a3c099c510b309",
    "val_mat.pkl": "90cd52a011f9b31081461a010e9bccb98d12a1dd7a7760085facbc7d1a2c46c3",
    "tst_mat.pkl": "c279ce551d32536ed90d916212bc0b891ce4c189ea7cfa5e4051e0dbfc728d17",
    "amazon_user_profiles.csv": "1fb7c7c6c5047875e248ac9748d7f14d24ea80bb36cb927300c94dc7c2223c5c",
    "amazon_item_profiles.csv": "1c5b6b121b236f5c0dd35fbb342208160c6bf580faea9e2bea91ddfc04689b8a",
}

#: profile file -> (path in the source repository, sha256)
PROFILE_FILES: Dict[str, tuple] = {
    "movies_enriched_dataset_100k.csv": ("Dataset/100k/movies_enriched_dataset_100k.csv",
                                         "ce713733054411328652bff0c18a2e139d1009215e80b9a8a48f900e79ad2170"),
    "movies_structured_100K.csv": ("Dataset/preprocessed/movies_structured_100K.csv",
                                   "526671b8771b3ff7bc882c12e92edd8996ff2926b1d4208620484585278fa776"),
    "updated_users_with_summary_df_100k.csv": ("Dataset/100k/updated_users_with_summary_df_100k.csv",
                                               "7c1ea16d2309d1eeb686c4019c2281fd8a11894da7e688e84248430a3a0ac36c"),
    "users_structured_100k.csv": ("Dataset/preprocessed/users_structured_100k.csv",
                                  "900cb23b5939f60f5f2b3509d5eea3f1a1bc0c199aa83cd57637b0d8e66fabe9"),
    "users_with_summary_df.csv": ("Dataset/100k/users_with_summary_df.csv",
                                  "69787ff71265e33cb3591ef0d6a6d9d6d9165fbe4110fffcf6f2e51780aeefc8"),
}


class DownloadError(RuntimeError):
    """A download failed, was refused (offline) or did not match its sha256 sum."""


def offline() -> bool:
    return os.environ.get("LLMHNI_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def sha256_of(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = 600.0):
    """An exclusive lock on ``path`` (a lock file beside the target)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() - t0 > timeout:
                    raise DownloadError(f"timed out waiting for the lock {path}") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _progress(total: Optional[int], desc: str, initial: int = 0):
    try:
        from tqdm.auto import tqdm

        from .._log import bars_off
        return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=desc, leave=False, disable=os.environ.get("LLMHNI_NO_PROGRESS") == "1" or bars_off())
    except ImportError:  # pragma: no cover
        class _Null:
            def update(self, n): pass
            def close(self): pass
        return _Null()


def download_file(url: str, dest, sha256: Optional[str] = None, *, timeout: float = 60.0,
                  retries: int = 2, desc: Optional[str] = None) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying ``sha256`` when given.

    A partial ``dest.part`` from an interrupted run is resumed when the server honours
    ``Range``; otherwise the download restarts. On a checksum mismatch the partial file
    is deleted and :class:`DownloadError` names the URL, the expected and the actual sum.
    """
    if offline():
        raise DownloadError(f"downloads are turned off (LLMHNI_OFFLINE=1); cannot fetch {url}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with _file_lock(dest.with_name(dest.name + ".lock")):
        if dest.exists() and (sha256 is None or sha256_of(dest) == sha256):
            return dest  # another process finished it while we waited
        last_err: Optional[BaseException] = None
        for attempt in range(retries + 1):
            try:
                _fetch(url, part, timeout=timeout, desc=desc or dest.name)
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
                if isinstance(e, urllib.error.HTTPError) and e.code in (403, 404, 410):
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
                last_err = e
                time.sleep(min(4.0, 0.5 * 2 ** attempt))
        else:
            kept = part.exists() and part.stat().st_size > 0
            note = f" (the {part.stat().st_size} bytes received are kept in {part} and resumed next time)" if kept else ""
            if not kept:
                part.unlink(missing_ok=True)
            raise DownloadError(f"could not download {url} after {retries + 1} tries: {last_err}{note}") from None
        if sha256 is not None:
            got = sha256_of(part)
            if got != sha256:
                part.unlink(missing_ok=True)
                raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; "
                                    f"the download was discarded (a changed or corrupted source?)")
        os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, *, timeout: float, desc: str) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "llmhni-data/1"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: start over
            part.unlink(missing_ok=True)
            return _fetch(url, part, timeout=timeout, desc=desc)
        raise
    with resp:
        status = getattr(resp, "status", 200)
        mode = "ab" if (have and status == 206) else "wb"
        if mode == "wb":
            have = 0
        length = resp.headers.get("Content-Length")
        total = (int(length) + have) if length and length.isdigit() else None
        bar = _progress(total, desc, initial=have)
        try:
            with open(part, mode) as out:
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    out.write(block)
                    bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        finally:
            bar.close()
        if total is not None and part.stat().st_size != total:
            raise OSError(f"connection closed after {part.stat().st_size} of {total} bytes")


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as e:
        raise DownloadError(f"cannot write into {folder} ({e}); choose a writable data root with "
                            f"--data-root or LLMHNI_DATA_ROOT") from None


def ensure_ml100k(root, files: Optional[Iterable[str]] = None, *, url: Optional[str] = None,
                  download: bool = True) -> Path:
    """``<root>/ml-100k`` with ``files`` present (default: all with known sums), downloading
    and verifying the GroupLens zip when any is missing."""
    folder = Path(root) / ML100K_DIR
    want = list(files) if files is not None else list(ML100K_SHA256)
    missing = [f for f in want if not (folder / f).is_file()]
    if not missing:
        return folder
    if not download or offline():
        raise FileNotFoundError(f"MovieLens-100K files missing in {folder}: {', '.join(missing)} "
                                f"(downloads are off; put the GroupLens ml-100k files there or allow downloads)")
    _writable(folder)
    url = url or os.environ.get("LLMHNI_ML100K_URL") or ML100K_URL
    zpath = folder.parent / ".downloads" / "ml-100k.zip"
    download_file(url, zpath, None, desc="ml-100k.zip")
    try:
        with zipfile.ZipFile(zpath) as zf, _file_lock(folder / ".extract.lock"):
            names = {Path(n).name: n for n in zf.namelist() if not n.endswith("/")}
            for f in want:
                if (folder / f).is_file():
                    continue
                if f not in names:
                    raise DownloadError(f"{url}: the archive has no member {f}")
                tmp = folder / f".{f}.part"
                with zf.open(names[f]) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                expected = ML100K_SHA256.get(f)
                if expected is not None:
                    got = sha256_of(tmp)
                    if got != expected:
                        tmp.unlink(missing_ok=True)
                        raise DownloadError(f"checksum mismatch for {f} from {url}: expected sha256 {expected}, "
                                            f"got {got}; nothing was written")
                os.replace(tmp, folder / f)
            if "README" in names and not (folder / "README").exists():  # the licence terms, kept beside the data
                with zf.open(names["README"]) as src, open(folder / ".README.part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(folder / ".README.part", folder / "README")
    except zipfile.BadZipFile:
        zpath.unlink(missing_ok=True)
        raise DownloadError(f"{url} did not return a valid zip archive; it was discarded") from None
    except DownloadError:
        zpath.unlink(missing_ok=True)  # never reuse an archive whose members failed their sums
        raise
    zpath.unlink(missing_ok=True)
    return folder


def ensure_profiles(root, files: Iterable[str], *, base_url: Optional[str] = None,
                    download: bool = True) -> Path:
    """``<root>/ml-100k-llm-profiles`` with ``files`` present, downloading and verifying missing ones."""
    folder = Path(root) / PROFILES_DIR
    files = list(files)
    for f in files:
        if f not in PROFILE_FILES:
            raise ValueError(f"unknown profile file {f!r}; known: {', '.join(PROFILE_FILES)}")
    missing = [f for f in files if not (folder / f).is_file()]
    if not missing:
        return folder
    if not download or offline():
        raise FileNotFoundError(f"ML-100K profile files missing in {folder}: {', '.join(missing)} "
                                f"(downloads are off)")
    _writable(folder)
    base = (base_url or os.environ.get("LLMHNI_PROFILES_BASE_URL") or PROFILES_BASE_URL).rstrip("/")
    for f in missing:
        rel, sha = PROFILE_FILES[f]
        download_file(f"{base}/{rel}", folder / f, sha, desc=f)
    return folder


def _verified_index() -> Path:
    root = cache_root()
    return Path(root) / "verified-data.json"


def verify_known(folder, files: Iterable[str], sums: Dict[str, str]) -> None:
    """Check each present file of ``files`` that has a published sha256 in ``sums``, so a
    truncated or altered copy is refused at load time, not only at download. A file whose
    (path, size, mtime) was verified before is not hashed again (index in the cache root)."""
    import json
    index_path = _verified_index()
    try:
        index = json.loads(index_path.read_text())
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    changed = False
    for f in files:
        expected = sums.get(f)
        p = Path(folder) / f
        if expected is None or not p.is_file():
            continue
        st = p.stat()
        key = str(p.resolve())
        stamp = [st.st_size, st.st_mtime_ns, expected]
        if index.get(key) == stamp:
            continue
        got = sha256_of(p)
        if got != expected:
            from .dataset import DataError
            raise DataError(p, f"sha256 {got} does not match the published {expected}: the file is truncated or "
                               f"altered ({st.st_size} bytes); replace it with the original (delete it to download "
                               f"it again)")
        index[key] = stamp
        changed = True
    if changed:
        try:
            index_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = index_path.with_name(f".tmp-{os.getpid()}-{index_path.name}")
            tmp.write_text(json.dumps(index))
            os.replace(tmp, index_path)
        except OSError:
            pass  # a read-only cache only costs a re-hash next time


def missing_files(folder, files: Iterable[str]) -> List[str]:
    return [f for f in files if not (Path(folder) / f).is_file()]
