"""LLaRD's data folders: ``<root>/llard/amazon_book`` and ``<root>/llard/yelp``.

LLaRD (Wang et al., WWW 2025) ships its training data as NumPy object arrays:
``traindata.npy`` and ``testdata.npy`` hold ``{user: [item, ...]}``, and
``rel_k/aug_traindata.npy`` the training graph after its LLM relation-knowledge step (a
Qwen model rated each user's interactions and proposed items: removed and added pairs).
``rel_k/uu_data.npy`` holds the LLM's user-user relations in the same form.

A NumPy object array is a pickle, so these files are never read with
``np.load(allow_pickle=True)``: :func:`read_user_lists` parses the ``.npy`` header itself and
unpickles the payload with an unpickler that admits exactly NumPy's array reconstruction
(``_reconstruct``, ``ndarray``, ``dtype``) and plain containers, then requires a 0-d object
array holding a dict of int -> list of int. Anything else is refused with the path and the
reason.

Names for :func:`llmhni_ext.data.load_dataset`:

* ``llard-amazon-book``: LLaRD's Amazon-book, which is RLMRec's split with RLMRec's ids
  (its train is RLMRec's train + valid, its test RLMRec's test). The loader checks that
  pair by pair against ``<root>/rlmrec-amazon-book/`` and then returns that data set (RLMRec's
  validation split and profiles), with the check recorded in ``meta["llard"]``.
* ``llard-yelp``: LLaRD's Yelp (RLMRec's Yelp; no profile texts). It has no validation
  split, so ``valid_ratio`` (default 0.25, RLMRec's 3:1:1 proportion) of each user's training
  pairs become one, drawn with the data seed.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .dataset import DataError, Dataset, Interactions
from .rlmrec import AllowListUnpickler
from .splitting import drop_seen, in_sorted, per_user_holdout

#: sha256 of the files as LLaRD publishes them (commit 936fe15), checked on load
LLARD_SHA256: Dict[str, str] = {
    "amazon_book/traindata.npy": "67ea24ebda3c2fecf9ce214ce11115aa7c1e63946feebb6ede35d42721f67fb0",
    "amazon_book/testdata.npy": "7784b25c6a6ced5eb4f4c9e3cf1a8339da52d0f7625389b1f7317bac09744d82",
    "amazon_book/rel_k/aug_traindata.npy": "da0b7a4db3c75b51d8b400ec4ee60f0d483e4ed8861dcba570281664150604a1",
    "amazon_book/rel_k/uu_data.npy": "744861f6d4e3fb3160b982a0c8ca8a21761f80150b8f4fcf3770acbac09812e6",
    "yelp/traindata.npy": "fbb9a9bb7c8b5615b0c19a04f9099a26dc601dad27a6b1b3edc22080f70224bf",
    "yelp/testdata.npy": "9f3b27206b76aed508d3a8b9b3a7791e02ca762e4cbec802b6aaf406e1bb7d94",
    "yelp/rel_k/aug_traindata.npy": "9c857db0fed6160a17d42ec6c9e13a41044d20ee7de77f0d5777fc6448fefaee",
    "yelp/rel_k/uu_data.npy": "8aa393c23bb622e9b81a03a999dfa68a5d1e085e08a84721630929a9fba5cee9",
}

#: the published sizes (RLMRec's): users, items
LLARD_SIZES = {"amazon_book": (11000, 9332), "yelp": (11091, 11010)}

_MAX_ID = 2 ** 31 - 1


def _allowed() -> Dict[Tuple[str, str], Any]:
    """The exact globals of a pickled NumPy object array (NumPy 1.x and 2.x module names)."""
    try:
        from numpy._core import multiarray as _ma
    except ImportError:  # NumPy < 2
        from numpy.core import multiarray as _ma
    out: Dict[Tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = _ma._reconstruct
    return out


class _UserListUnpickler(AllowListUnpickler):
    allowed = staticmethod(_allowed)
    refusal = "a LLaRD .npy file may hold only a NumPy object array of a dict int -> list of int"


def read_user_lists(path) -> Dict[int, List[int]]:
    """``{user: [item, ...]}`` from a LLaRD-style ``.npy`` file (see the module docstring).

    Raises :class:`DataError` naming the file for a wrong header, a refused global, a
    truncated payload, or a value that is not a dict of non-negative int -> list of
    non-negative int. Ids are not range-checked here (callers count those out of range)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            from numpy.lib import format as fmt
            version = fmt.read_magic(f)
            header = fmt.read_array_header_1_0(f) if version == (1, 0) else fmt.read_array_header_2_0(f)
            shape, fortran, dtype = header
            if dtype != np.dtype(object) or tuple(shape) != ():
                raise DataError(path, f"expected a 0-d object array (a pickled dict), found dtype {dtype} "
                                      f"and shape {tuple(shape)}")
            payload = f.read()
    except DataError:
        raise
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed header is a data error
        raise DataError(path, f"not a .npy file ({type(e).__name__}: {e})") from None
    try:
        arr = _UserListUnpickler(io.BytesIO(payload)).load()
    except Exception as e:  # noqa: BLE001 - every unpickling failure becomes a clear DataError
        raise DataError(path, f"cannot unpickle ({type(e).__name__}: {e})") from None
    if not (isinstance(arr, np.ndarray) and arr.dtype == object and arr.shape == ()):
        raise DataError(path, f"the payload is a {type(arr).__name__}, expected a 0-d object array")
    obj = arr.item()
    if not isinstance(obj, dict):
        raise DataError(path, f"the array holds a {type(obj).__name__}, expected a dict user -> list of items")
    out: Dict[int, List[int]] = {}
    for k, v in obj.items():
        if type(k) is not int or not 0 <= k <= _MAX_ID:
            raise DataError(path, f"key {k!r} is not a non-negative int")
        if not isinstance(v, list):
            raise DataError(path, f"user {k}: expected a list of items, found {type(v).__name__}")
        for x in v:
            if type(x) is not int or not 0 <= x <= 10 ** 12:
                raise DataError(path, f"user {k}: item {x!r} is not a non-negative int")
        out[k] = v
    return out


def user_lists_to_pairs(lists: Dict[int, List[int]]) -> Tuple[np.ndarray, np.ndarray]:
    """(users, items) int64 arrays of a ``{user: [items]}`` dict, in key then list order."""
    if not lists:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    users = np.concatenate([np.full(len(v), k, np.int64) for k, v in lists.items()])
    items = np.concatenate([np.asarray(v, np.int64) for v in lists.values()])
    return users, items


def clip_pairs(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
    """The in-range, de-duplicated pairs (sorted by key) and the counts of what was dropped."""
    ok = (users >= 0) & (users < n_users) & (items >= 0) & (items < n_items)
    bad_items = items[~ok]
    keys = np.unique(users[ok] * np.int64(n_items) + items[ok])
    counts = {"out_of_range": int((~ok).sum()), "duplicates": int(ok.sum() - len(keys))}
    if counts["out_of_range"]:
        vals, cnt = np.unique(bad_items, return_counts=True)
        top = int(vals[np.argmax(cnt)])
        counts["out_of_range_most_common_item"] = top
        counts["out_of_range_most_common_count"] = int(cnt.max())
    return keys // n_items, keys % n_items, counts


def _folder_of(data_root, key: str) -> Path:
    from .root import resolve_data_root
    folder = resolve_data_root(data_root) / "llard" / key
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: LLaRD's {key} is read from <data root>/llard/{key}/ "
                                f"(traindata.npy, testdata.npy, rel_k/); set --data-root or LLMHNI_DATA_ROOT")
    return folder


def _verify(folder: Path, key: str) -> None:
    from . import download as dl
    files = [f for f in LLARD_SHA256 if f.startswith(key + "/") and (folder.parent / f).is_file()]
    dl.verify_known(folder.parent, files, LLARD_SHA256)


def load_llard_dir(folder, *, name: Optional[str] = None, n_users: Optional[int] = None,
                   n_items: Optional[int] = None, valid_ratio: float = 0.25, seed: int = 0) -> Dataset:
    """A data set from a LLaRD folder (``traindata.npy``, ``testdata.npy``): ``valid_ratio`` of
    each user's training pairs (drawn with ``seed``) become the validation split (0: none).
    ``n_users`` / ``n_items`` default to the largest id in train and test plus one."""
    folder = Path(folder)
    for f in ("traindata.npy", "testdata.npy"):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder / f} not found (a LLaRD folder needs traindata.npy and testdata.npy)")
    tr_u, tr_i = user_lists_to_pairs(read_user_lists(folder / "traindata.npy"))
    te_u, te_i = user_lists_to_pairs(read_user_lists(folder / "testdata.npy"))
    allu, alli = np.concatenate([tr_u, te_u]), np.concatenate([tr_i, te_i])
    if not len(allu):
        raise DataError(folder / "traindata.npy", "train and test hold no pairs")

    def guess(ids: np.ndarray, kind: str) -> int:
        top, distinct = int(ids.max()), len(np.unique(ids))
        if top + 1 > 4 * distinct + 10_000:      # one stray id would size every table by it
            raise DataError(folder, f"{kind} id {top} is far beyond the {distinct} distinct {kind} ids; give "
                                    f"n_{kind}s= (the data set's size) so out-of-range ids are dropped and counted")
        return top + 1
    n_users = guess(allu, "user") if n_users is None else int(n_users)
    n_items = guess(alli, "item") if n_items is None else int(n_items)
    cleanup: Dict[str, int] = {}
    tr_u, tr_i, c1 = clip_pairs(tr_u, tr_i, n_users, n_items)
    te_u, te_i, c2 = clip_pairs(te_u, te_i, n_users, n_items)
    for tag, c in (("train", c1), ("test", c2)):
        cleanup[f"{tag}_out_of_range_dropped"] = c["out_of_range"]
        cleanup[f"{tag}_duplicates_dropped"] = c["duplicates"]
    full_train = Interactions(tr_u, tr_i)
    hold = per_user_holdout(tr_u, valid_ratio, np.random.default_rng(seed)) if valid_ratio > 0 \
        else np.zeros(len(tr_u), bool)
    train, valid = Interactions(tr_u[~hold], tr_i[~hold]), Interactions(tr_u[hold], tr_i[hold])
    test, k = drop_seen(full_train, Interactions(te_u, te_i), n_items)
    cleanup["test_rows_in_train_dropped"] = k
    cleanup["users_without_train_rows"] = int((np.bincount(train.users.numpy(), minlength=n_users) == 0).sum())
    return Dataset(name=name or folder.name, n_users=n_users, n_items=n_items, train=train, valid=valid, test=test,
                   user_raw_ids=list(range(n_users)), item_raw_ids=list(range(n_items)),
                   meta={"source": str(folder), "format": "llard", "seed": seed, "valid_ratio": valid_ratio,
                         "cleanup": cleanup, "noise": "none",
                         "llard": {"folder": str(folder), "train_pairs": int(len(full_train)),
                                   "valid_carved": bool(valid_ratio > 0)}})


def compare_with_split(llard: Dataset, train_keys: np.ndarray, valid_keys: np.ndarray,
                       test_keys: np.ndarray) -> Dict[str, Any]:
    """How LLaRD's train/test relate to another split of the same ids (sorted int64 keys
    ``user * n_items + item``): equal when LLaRD's train is train + valid and its test is test."""
    n = llard.n_items
    tv = np.union1d(train_keys, valid_keys)
    lt = np.union1d(llard.train.keys(n), llard.valid.keys(n))
    le = np.unique(llard.test.keys(n))
    out = {"llard_train": int(len(lt)), "llard_test": int(len(le)), "train_plus_valid": int(len(tv)),
           "test": int(len(test_keys)),
           "llard_train_not_in_train_plus_valid": int((~in_sorted(lt, tv)).sum()),
           "train_plus_valid_not_in_llard_train": int((~in_sorted(tv, lt)).sum()),
           "test_differences": int(len(np.setxor1d(le, test_keys)))}
    out["equal"] = (out["llard_train_not_in_train_plus_valid"] == 0 and out["train_plus_valid_not_in_llard_train"] == 0
                    and out["test_differences"] == 0)
    return out


def load_llard(key: str, data_root=None, *, seed: int = 0, verify: bool = True, valid_ratio: float = 0.25,
               rlmrec: Optional[Callable[[], Dataset]] = None, **options) -> Dataset:
    """``llard-amazon-book`` (``key="amazon_book"``) or ``llard-yelp`` (``key="yelp"``); see the
    module docstring. ``rlmrec`` loads RLMRec's Amazon-book (which LLaRD's ids are checked
    against and whose split is returned); :func:`llmhni_ext.data.load_dataset` passes it."""
    folder = _folder_of(data_root, key)
    if verify:
        _verify(folder, key)
    n_users, n_items = LLARD_SIZES[key]
    name = "llard-" + key.replace("_", "-")
    if key != "amazon_book":
        return load_llard_dir(folder, name=name, n_users=n_users, n_items=n_items, valid_ratio=valid_ratio, seed=seed)
    if rlmrec is None:
        raise ValueError("load_llard('amazon_book') needs rlmrec=, the loader of RLMRec's Amazon-book: "
                         "load it with llmhni_ext.data.load_dataset('llard-amazon-book')")
    llard = load_llard_dir(folder, name=name, n_users=n_users, n_items=n_items, valid_ratio=0.0, seed=seed)
    ab = rlmrec()
    if (ab.n_users, ab.n_items) != (n_users, n_items):
        raise DataError(folder, f"RLMRec's Amazon-book has {ab.n_users} users / {ab.n_items} items, LLaRD's "
                                f"{n_users} / {n_items}")
    check = compare_with_split(llard, np.sort(ab.train.keys(n_items)), np.sort(ab.valid.keys(n_items)),
                               np.unique(ab.test.keys(n_items)))
    if not check["equal"]:
        raise DataError(folder, f"LLaRD's Amazon-book differs from RLMRec's split: {check}")
    meta = dict(ab.meta, llard={"folder": str(folder), "same_ids_as": "rlmrec-amazon-book", "check": check,
                                "statement": f"LLaRD's train = RLMRec's train + valid ({check['llard_train']:,} pairs, "
                                             f"every pair found there), LLaRD's test = RLMRec's test "
                                             f"({check['llard_test']:,} pairs, identical)"})
    return ab.replace(name=name, meta=meta)


def default_graph_files(folder) -> Tuple[Path, Path]:
    """(G' file, its base graph) of a LLaRD folder: ``rel_k/aug_traindata.npy`` and ``traindata.npy``."""
    folder = Path(folder)
    return folder / "rel_k" / "aug_traindata.npy", folder / "traindata.npy"
