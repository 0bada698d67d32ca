"""RLMRec's data folders: pickled scipy matrices, profile dicts and text embeddings.

``trn_mat.pkl`` / ``val_mat.pkl`` / ``tst_mat.pkl``: n_users x n_items sparse matrices
(any scipy sparse type or a dense array; non-zero = interaction). ``usr_prf.pkl`` /
``itm_prf.pkl``: ``{index: {"profile": str, "reasoning": str}}`` (a plain string per
index is accepted too). ``usr_emb_np.pkl`` / ``itm_emb_np.pkl``: ``[n, d]`` arrays (1536-d
in RLMRec), stored as ``Dataset.user_text_emb`` / ``item_text_emb``.

Pickles can run code when loaded, so by default they are read with an unpickler that
only admits NumPy, SciPy sparse and plain Python containers; pass ``trusted=True`` for
files you made yourself that need more.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .dataset import DataError, Dataset, Interactions
from .splitting import drop_seen

_SAFE_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "complex", "bool",
                  "bytes", "bytearray", "slice", "range", "object"}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        root = module.split(".")[0]
        if root == "numpy" or module.startswith("scipy.sparse") or module == "collections" and name == "OrderedDict" \
                or module == "copyreg" and name == "_reconstructor" \
                or module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy/SciPy/containers are "
                                     f"allowed; pass trusted=True if you trust this file)")


def load_pickle(path, trusted: bool = False) -> Any:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return pickle.load(f) if trusted else _SafeUnpickler(f).load()
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - every unpickling failure becomes a clear DataError
        raise DataError(path, f"cannot unpickle ({type(e).__name__}: {e})") from None


def _matrix(path: Path, trusted: bool):
    import scipy.sparse as sp
    m = load_pickle(path, trusted)
    if sp.issparse(m):
        m = sp.coo_matrix(m)
    elif isinstance(m, np.ndarray) and m.ndim == 2:
        m = sp.coo_matrix(m)
    else:
        raise DataError(path, f"expected a scipy sparse matrix or a 2-D array, found {type(m).__name__}")
    m = m.tocsr()
    m.sum_duplicates()
    m.eliminate_zeros()
    if m.nnz and not np.isfinite(m.data).all():
        raise DataError(path, "the matrix holds non-finite values")
    return m


def _texts(path: Path, n: int, trusted: bool, cleanup: Dict[str, int], tag: str) -> Optional[List[str]]:
    if not path.is_file():
        return None
    obj = load_pickle(path, trusted)
    if isinstance(obj, (list, tuple)):
        obj = dict(enumerate(obj))
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict {{index: {{'profile': ...}}}}, found {type(obj).__name__}")
    out = [""] * n
    unknown = 0
    for k, v in obj.items():
        try:
            idx = int(k)
        except (TypeError, ValueError):
            raise DataError(path, f"profile key {k!r} is not an integer index") from None
        if not 0 <= idx < n:
            unknown += 1
            continue
        if isinstance(v, dict):
            txt = v.get("profile", "")
        elif isinstance(v, str):
            txt = v
        else:
            raise DataError(path, f"profile of index {idx} is a {type(v).__name__}, expected a dict or a string")
        out[idx] = " ".join(str(txt or "").split())
    cleanup[f"{tag}_profiles_unknown_index"] = unknown
    cleanup[f"{tag}_without_profile"] = sum(1 for t in out if not t)
    return out


def _emb(path: Path, n: int, trusted: bool) -> Optional[np.ndarray]:
    if not path.is_file():
        return None
    a = load_pickle(path, trusted)
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != n:
        raise DataError(path, f"expected an array of shape ({n}, d), found {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
        raise DataError(path, "embeddings must be finite numbers")
    return a.astype(np.float32, copy=False)


def load_rlmrec_dir(path, *, noise="none", seed: int = 0, trusted: bool = False,
                    name: Optional[str] = None) -> Dataset:
    """Load an RLMRec data folder (see the module docstring). ``val_mat.pkl`` is optional."""
    folder = Path(path)
    for f in ("trn_mat.pkl", "tst_mat.pkl"):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder / f} not found (an RLMRec folder needs trn_mat.pkl and tst_mat.pkl)")
    trn = _matrix(folder / "trn_mat.pkl", trusted)
    tst = _matrix(folder / "tst_mat.pkl", trusted)
    val = _matrix(folder / "val_mat.pkl", trusted) if (folder / "val_mat.pkl").is_file() else None
    for f, m in (("tst_mat.pkl", tst), ("val_mat.pkl", val)):
        if m is not None and m.shape != trn.shape:
            raise DataError(folder / f, f"shape {m.shape} differs from trn_mat.pkl's {trn.shape}")
    n_users, n_items = trn.shape

    def inter(m):
        if m is None:
            return Interactions.empty()
        c = m.tocoo()
        order = np.lexsort((c.col, c.row))
        return Interactions(c.row[order].astype(np.int64), c.col[order].astype(np.int64))

    cleanup: Dict[str, int] = {}
    train, valid, test = inter(trn), inter(val), inter(tst)
    valid, k1 = drop_seen(train, valid, n_items)
    test, k2 = drop_seen(train, test, n_items)
    cleanup["valid_rows_in_train_dropped"] = k1
    cleanup["test_rows_in_train_dropped"] = k2
    cleanup["users_without_train_rows"] = int((np.bincount(train.users.numpy(), minlength=n_users) == 0).sum())
    ds = Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, train=train, valid=valid, test=test,
                 user_text=_texts(folder / "usr_prf.pkl", n_users, trusted, cleanup, "users"),
                 item_text=_texts(folder / "itm_prf.pkl", n_items, trusted, cleanup, "items"),
                 user_raw_ids=list(range(n_users)), item_raw_ids=list(range(n_items)),
                 user_text_emb=_emb(folder / "usr_emb_np.pkl", n_users, trusted),
                 item_text_emb=_emb(folder / "itm_emb_np.pkl", n_items, trusted),
                 meta={"source": str(folder), "format": "rlmrec", "cleanup": cleanup, "noise": "none"})
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
