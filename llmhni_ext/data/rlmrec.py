"""RLMRec's data folders: pickled scipy matrices, profile dicts and text embeddings.

``trn_mat.pkl`` / ``val_mat.pkl`` / ``tst_mat.pkl``: n_users x n_items sparse matrices
(any scipy sparse type or a dense array; non-zero = interaction). ``usr_prf.pkl`` /
``itm_prf.pkl``: ``{index: {"profile": str, "reasoning": str}}`` (a plain string per
index is accepted too). ``usr_emb_np.pkl`` / ``itm_emb_np.pkl``: ``[n, d]`` arrays (1536-d
in RLMRec), stored as ``Dataset.user_text_emb`` / ``item_text_emb``.

Pickles can run code when loaded, so by default they are read with an unpickler that
admits an exact list of globals (NumPy's array and scalar reconstructors, ``numpy.dtype``,
SciPy's coo/csr/csc classes, latin-1 ``_codecs.encode``) and plain containers, and the
loaded matrices are rebuilt from their arrays and checked. Pass ``trusted=True`` only for
files you made yourself that need more (it uses plain :func:`pickle.load`).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .dataset import DataError, Dataset, Interactions
from .splitting import drop_seen

def _latin1_encode(obj, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles of NumPy arrays use it (str -> latin-1 bytes) and
    nothing else: any other codec or argument type is refused."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode with anything but (str, 'latin1')")
    return obj.encode("latin1")


def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    """The exact globals a pickled sparse matrix, array or profile dict needs (NumPy 1.x and
    2.x module names, SciPy's old and new module names); nothing that can call code."""
    import scipy.sparse as sp
    from numpy.lib import format as _fmt  # noqa: F401 - makes sure numpy is fully imported
    try:
        from numpy._core import multiarray as _ma, numeric as _num
    except ImportError:  # NumPy < 2
        from numpy.core import multiarray as _ma, numeric as _num
    out: Dict[Tuple[str, str], Any] = {("_codecs", "encode"): _latin1_encode}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = _ma._reconstruct
        out[(mod, "scalar")] = _ma.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        out[(mod, "_frombuffer")] = _num._frombuffer
    out[("numpy", "ndarray")] = np.ndarray
    out[("numpy", "dtype")] = np.dtype
    classes = set()
    for kind in ("coo", "csr", "csc"):
        for cls in (f"{kind}_matrix", f"{kind}_array"):
            if hasattr(sp, cls):
                classes.add(getattr(sp, cls))
                for mod in (f"scipy.sparse.{kind}", f"scipy.sparse._{kind}"):
                    out[(mod, cls)] = getattr(sp, cls)

    def reconstructor(cls, base, state):
        """``copyreg._reconstructor`` of protocol 0/1 pickles, for the classes above only."""
        if cls not in classes or base is not object or state is not None:
            raise pickle.UnpicklingError(f"refusing copyreg._reconstructor({getattr(cls, '__name__', cls)!r}, ...)")
        return object.__new__(cls)

    for mod in ("copyreg", "copy_reg"):
        out[(mod, "_reconstructor")] = reconstructor
    for mod in ("builtins", "__builtin__"):
        out[(mod, "object")] = object
    return out


class AllowListUnpickler(pickle.Unpickler):
    """Admits exactly the globals ``allowed()`` returns (built once per subclass) and nothing
    else, so no other class or function is ever called; a refusal says ``refusal``."""
    allowed: Callable[[], Dict[Tuple[str, str], Any]]
    refusal = ""
    _table: Optional[Dict[Tuple[str, str], Any]] = None

    def find_class(self, module: str, name: str):
        cls = type(self)
        if cls.__dict__.get("_table") is None:
            cls._table = cls.allowed()
        try:
            return cls._table[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: {cls.refusal}") from None


class _SafeUnpickler(AllowListUnpickler):
    """Admits exactly :func:`_allowed_globals`."""
    allowed = staticmethod(_allowed_globals)
    refusal = ("only scipy sparse matrices (coo/csr/csc), NumPy arrays and plain containers are allowed in an "
               "untrusted pickle (pass trusted=True only for files you made yourself)")


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
    if not (sp.issparse(m) or isinstance(m, np.ndarray) and m.ndim == 2):
        raise DataError(path, f"expected a scipy sparse matrix or a 2-D array, found {type(m).__name__}")
    try:  # rebuilt from its arrays, so a tampered object cannot smuggle in inconsistent state
        c = sp.coo_matrix(m)
        n_rows, n_cols = (int(x) for x in c.shape)
        row, col, data = (np.asarray(a) for a in (c.row, c.col, c.data))
        if not (np.issubdtype(row.dtype, np.integer) and np.issubdtype(col.dtype, np.integer)
                and np.issubdtype(data.dtype, np.number)):
            raise ValueError("row/col must be integers and data numbers")
        if row.shape != col.shape or row.shape != data.shape or row.ndim != 1:
            raise ValueError("row, col and data differ in length")
        if not (0 < n_rows < 2 ** 31 and 0 < n_cols < 2 ** 31):
            raise ValueError(f"shape {(n_rows, n_cols)} is empty or too large")
        if row.size and (row.min() < 0 or row.max() >= n_rows or col.min() < 0 or col.max() >= n_cols):
            raise ValueError("an entry lies outside the matrix's shape")
        m = sp.csr_matrix((data.astype(np.float64), (row.astype(np.int64), col.astype(np.int64))),
                          shape=(n_rows, n_cols))
    except (ValueError, TypeError, IndexError, AttributeError, OverflowError) as e:
        raise DataError(path, f"not a well-formed sparse matrix ({type(e).__name__}: {e})") from None
    m.sum_duplicates()
    if m.nnz and not np.isfinite(m.data).all():
        raise DataError(path, "the matrix holds non-finite values")
    m.eliminate_zeros()
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


def _csv_texts(path: Path, n: int, id_col: str, cleanup: Dict[str, int], tag: str):
    """(texts, raw ids) from a profile CSV ``<id_col>_int,<id_col>_raw,profile_text``."""
    from .parsing import read_csv_records
    head, records = read_csv_records(path)
    need = (f"{id_col}_int", f"{id_col}_raw", "profile_text")
    if any(c not in head for c in need):
        raise DataError(path, f"expected the columns {', '.join(need)}, found {', '.join(head)}", 1)
    ki, kr, kt = (head.index(c) for c in need)
    texts, raw = [""] * n, [None] * n
    unknown = 0
    for line, rec in records:
        if len(rec) != len(head):
            raise DataError(path, f"expected {len(head)} fields, found {len(rec)}", line)
        tok = rec[ki].strip()
        if not tok.isascii() or not tok.isdigit():
            raise DataError(path, f"{need[0]} is not an integer: {rec[ki]!r}", line)
        idx = int(tok)
        if idx >= n:
            unknown += 1
            continue
        texts[idx] = " ".join(rec[kt].split())
        raw[idx] = rec[kr].strip()
    cleanup[f"{tag}_profiles_unknown_index"] = unknown
    cleanup[f"{tag}_without_profile"] = sum(1 for t in texts if not t)
    return texts, raw


def load_rlmrec_dir(path, *, noise="none", seed: int = 0, trusted: bool = False,
                    name: Optional[str] = None) -> Dataset:
    """Load an RLMRec data folder (see the module docstring). ``val_mat.pkl`` is optional.
    Profiles may also come as CSVs ``*_user_profiles.csv`` / ``*_item_profiles.csv`` with the
    columns ``user_id_int,user_id_raw,profile_text`` (``item_...`` for items), as in the
    shared Amazon-book folder; their raw ids become the data set's raw ids."""
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
    user_text = _texts(folder / "usr_prf.pkl", n_users, trusted, cleanup, "users")
    item_text = _texts(folder / "itm_prf.pkl", n_items, trusted, cleanup, "items")
    user_raw, item_raw = list(range(n_users)), list(range(n_items))
    for kind, n in (("user", n_users), ("item", n_items)):
        csvs = sorted(folder.glob(f"*_{kind}_profiles.csv"))
        if (user_text if kind == "user" else item_text) is None and csvs:
            texts, raw = _csv_texts(csvs[0], n, f"{kind}_id", cleanup, kind + "s")
            ids = [r if r is not None else k for k, r in enumerate(raw)]
            if kind == "user":
                user_text, user_raw = texts, ids
            else:
                item_text, item_raw = texts, ids
    ds = Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, train=train, valid=valid, test=test,
                 user_text=user_text, item_text=item_text,
                 user_raw_ids=user_raw, item_raw_ids=item_raw,
                 user_text_emb=_emb(folder / "usr_emb_np.pkl", n_users, trusted),
                 item_text_emb=_emb(folder / "itm_emb_np.pkl", n_items, trusted),
                 meta={"source": str(folder), "format": "rlmrec", "cleanup": cleanup, "noise": "none"})
    from .noise import apply_noise
    return apply_noise(ds, noise, seed)
