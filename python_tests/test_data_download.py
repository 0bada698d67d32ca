"""Downloads against a local HTTP server serving copies of the shared files: checksums,
atomic writes, resuming a cut-off transfer, and the offline switch."""
import hashlib
import http.server
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from llmhni_ext.data import load_dataset
from llmhni_ext.data import download as dl
from llmhni_ext.data.root import resolve_data_root

SHARED = resolve_data_root()
pytestmark = pytest.mark.skipif(not (SHARED / "ml-100k" / "u.data").is_file()
                                or not (SHARED / "ml-100k-llm-profiles").is_dir(),
                                reason=f"shared ML-100K files not in {SHARED}")


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=N-`` support; ``cut`` maps a path to a byte count
    after which the first response is cut off (the connection closes mid-transfer)."""
    cut = {}
    requests = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        self.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.cut.pop(self.path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture()
def server(tmp_path):
    site = tmp_path / "site"
    (site / "repo" / "Dataset" / "100k").mkdir(parents=True)
    (site / "repo" / "Dataset" / "preprocessed").mkdir(parents=True)
    for name, (rel, _sha) in dl.PROFILE_FILES.items():
        shutil.copy(SHARED / "ml-100k-llm-profiles" / name, site / "repo" / rel)
    with zipfile.ZipFile(site / "ml-100k.zip", "w", zipfile.ZIP_STORED) as zf:
        for f in list(dl.ML100K_SHA256) + ["README"]:
            zf.write(SHARED / "ml-100k" / f, f"ml-100k/{f}")
    handler = lambda *a, **k: Handler(*a, directory=str(site), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    Handler.cut.clear()
    Handler.requests.clear()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {"site": site, "base": base, "zip": f"{base}/ml-100k.zip", "profiles": f"{base}/repo"}
    httpd.shutdown()
    httpd.server_close()


def test_load_ml100k_downloads_verifies_and_matches_shared(server, tmp_path, monkeypatch):
    monkeypatch.delenv("LLMHNI_OFFLINE", raising=False)
    root = tmp_path / "root"
    ds = load_dataset("ml-100k", str(root), ml100k_url=server["zip"], profiles_base_url=server["profiles"])
    ref = load_dataset("ml-100k", str(SHARED), download=False)
    assert ds.user_text == ref.user_text and ds.item_text == ref.item_text
    assert len(ds.train) == len(ref.train) and len(ds.test) == len(ref.test)
    for f in ["u.item", "u.user", "u1.base", "u1.test"]:
        assert dl.sha256_of(root / "ml-100k" / f) == dl.ML100K_SHA256[f]
    assert not list(root.rglob("*.part"))                     # nothing half-written left
    assert (root / "ml-100k" / "README").is_file()
    n = len(Handler.requests)
    load_dataset("ml-100k", str(root), ml100k_url=server["zip"], profiles_base_url=server["profiles"])
    assert len(Handler.requests) == n                          # present files are not fetched again


def test_env_overrides_base_urls(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMHNI_PROFILES_BASE_URL", server["profiles"])
    folder = dl.ensure_profiles(tmp_path, ["users_with_summary_df.csv"])
    assert dl.sha256_of(folder / "users_with_summary_df.csv") == dl.PROFILE_FILES["users_with_summary_df.csv"][1]


def test_checksum_mismatch_is_clear_and_leaves_nothing(server, tmp_path):
    target = server["site"] / "repo" / "Dataset" / "preprocessed" / "users_structured_100k.csv"
    target.write_bytes(target.read_bytes().replace(b"Overview", b"Overveiw", 1))
    with pytest.raises(dl.DownloadError, match="checksum mismatch.*users_structured_100k.csv"):
        dl.ensure_profiles(tmp_path, ["users_structured_100k.csv"], base_url=server["profiles"])
    folder = tmp_path / dl.PROFILES_DIR
    assert not (folder / "users_structured_100k.csv").exists()
    assert not (folder / "users_structured_100k.csv.part").exists()


def test_corrupted_zip_member_is_refused(server, tmp_path):
    z = server["site"] / "ml-100k.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in dl.ML100K_SHA256:
            data = (SHARED / "ml-100k" / f).read_bytes()
            if f == "u.user":
                data = data.replace(b"|M|", b"|F|", 1)
            zf.writestr(f"ml-100k/{f}", data)
    root = tmp_path / "root"
    with pytest.raises(dl.DownloadError, match="checksum mismatch for u.user"):
        dl.ensure_ml100k(root, ["u.user"], url=server["zip"])
    assert not (root / "ml-100k" / "u.user").exists()
    assert not list(root.rglob("*.zip"))                        # the bad archive is not kept for reuse
    (server["site"] / "ml-100k.zip").write_bytes(b"this is not a zip")
    with pytest.raises(dl.DownloadError, match="not a valid zip|did not return a valid zip"):
        dl.ensure_ml100k(tmp_path / "b", ["u.user"], url=server["zip"])


def test_cut_off_transfer_resumes_with_range(server, tmp_path):
    name = "movies_structured_100K.csv"
    rel = dl.PROFILE_FILES[name][0]
    Handler.cut[f"/repo/{rel}"] = 1_000_000
    folder = dl.ensure_profiles(tmp_path, [name], base_url=server["profiles"])
    assert dl.sha256_of(folder / name) == dl.PROFILE_FILES[name][1]
    ranges = [r for p, r in Handler.requests if p == f"/repo/{rel}"]
    assert ranges[0] is None and ranges[1] == "bytes=1000000-"


def test_stale_partial_from_a_killed_run_is_resumed_or_replaced(server, tmp_path):
    name = "updated_users_with_summary_df_100k.csv"
    folder = tmp_path / dl.PROFILES_DIR
    folder.mkdir(parents=True)
    good = (SHARED / "ml-100k-llm-profiles" / name).read_bytes()
    (folder / (name + ".part")).write_bytes(good[:1000])           # a killed run's first 1000 bytes
    dl.ensure_profiles(tmp_path, [name], base_url=server["profiles"])
    assert (folder / name).read_bytes() == good
    # a garbage partial: resumed, fails the checksum, is discarded; the next try succeeds
    (folder / name).unlink()
    (folder / (name + ".part")).write_bytes(b"x" * 1000)
    with pytest.raises(dl.DownloadError, match="checksum mismatch"):
        dl.ensure_profiles(tmp_path, [name], base_url=server["profiles"])
    dl.ensure_profiles(tmp_path, [name], base_url=server["profiles"])
    assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == dl.PROFILE_FILES[name][1]


def test_offline_and_missing_server_errors(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMHNI_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="downloads are off"):
        load_dataset("ml-100k", str(tmp_path))
    monkeypatch.delenv("LLMHNI_OFFLINE")
    with pytest.raises(FileNotFoundError, match="u1.base"):
        load_dataset("ml-100k", str(tmp_path), download=False)
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download_file(server["base"] + "/nope.csv", tmp_path / "nope.csv")
    assert not (tmp_path / "nope.csv").exists()


def test_resolve_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMHNI_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_data_root(str(tmp_path / "arg")) == (tmp_path / "arg").resolve()
    assert resolve_data_root() == (tmp_path / "env").resolve()
    monkeypatch.delenv("LLMHNI_DATA_ROOT")
    work = tmp_path / "proj" / "checkout"
    (tmp_path / "proj" / "shared" / "data").mkdir(parents=True)
    work.mkdir()
    monkeypatch.chdir(work)
    assert resolve_data_root() == (tmp_path / "proj" / "shared" / "data").resolve()
