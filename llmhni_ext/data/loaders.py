"""``load_dataset``: one entry point by name or by path."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .dataset import Dataset
from .root import resolve_data_root

DATASETS = ("ml-100k", "ml-1m", "lastfm", "lastfm-hetrec", "amazon-book", "llard-amazon-book", "llard-yelp",
            "synthetic")


def load_dataset(name: str, data_root: Optional[str] = None, *, split=None, noise="none", seed: int = 0,
                 split_seed: Optional[int] = None, **options) -> Dataset:
    """Load a data set by name (see ``DATASETS``) or a folder/file path by its format.

    ``noise``: ``"none"``, ``"natural"`` (ratings <= 2 labelled noisy in train, valid/test keep
    ratings >= 4) or an injected ratio such as ``0.2``. ``seed`` fixes every random choice
    (validation carving, random splits, injected pairs, the synthetic world). ``split``:
    for ml-100k ``"u1"`` (default) .. ``"u5"``, ``"ua"``, ``"ub"``; for data sets split at
    random, a (train, valid, test) ratio triple. ``split_seed`` (default: ``seed``) fixes the
    split alone, so runs with different noise seeds can share one split. Other ``options``
    go to the loader.
    """
    from .noise import apply_noise
    ds = _load_clean(name, data_root, split=split, seed=seed if split_seed is None else split_seed, **options)
    ds = apply_noise(ds, noise, seed)
    ds.meta.setdefault("noise_seed", seed)
    return ds


def _load_clean(name: str, data_root, *, split, seed: int, **options) -> Dataset:
    noise = "none"
    key = str(name).strip().lower()
    if key == "ml-100k":
        from .movielens import load_ml100k
        if split is not None:
            options["split"] = split
        return load_ml100k(data_root, noise=noise, seed=seed, **options)
    if key in ("ml-1m", "lastfm"):
        from .lightgcn_format import load_lightgcn_dir
        folder = resolve_data_root(data_root) / "lightgcn-format" / key
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found: {key} is read from the LightGCN-format files "
                                    f"(train.txt, valid.txt, test.txt) under <data root>/lightgcn-format/{key}/; "
                                    f"set --data-root or LLMHNI_DATA_ROOT")
        if split is not None:
            raise ValueError(f"{key} comes with a fixed split; split={split!r} is not supported")
        return load_lightgcn_dir(folder, name=key, noise=noise, seed=seed, **options)
    if key == "amazon-book":
        from . import download as dl
        from .rlmrec import load_rlmrec_dir
        folder = resolve_data_root(data_root) / "rlmrec-amazon-book"
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found: amazon-book (RLMRec's split with its profiles) is read from "
                                    f"<data root>/rlmrec-amazon-book/; set --data-root or LLMHNI_DATA_ROOT")
        if split is not None:
            raise ValueError(f"{key} comes with a fixed split; split={split!r} is not supported")
        verify = options.pop("verify", True)
        ds = load_rlmrec_dir(folder, name=key, noise=noise, seed=seed, **options)
        if verify:        # after parsing: a truncated or altered copy of the published files is refused
            dl.verify_known(folder, list(dl.AMAZON_BOOK_SHA256), dl.AMAZON_BOOK_SHA256)
        return ds
    if key in ("llard-amazon-book", "llard-yelp"):
        from .llard import load_llard
        if split is not None:
            raise ValueError(f"{key} comes with a fixed split; split={split!r} is not supported")
        verify = options.get("verify", True)
        return load_llard(key[len("llard-"):].replace("-", "_"), data_root, seed=seed,
                          rlmrec=lambda: load_dataset("amazon-book", data_root, verify=verify,
                                                      **{k: v for k, v in options.items() if k != "verify"}),
                          **options)
    if key == "lastfm-hetrec":
        from .lastfm import load_lastfm_hetrec
        if split is not None:
            options["ratios"] = split
        return load_lastfm_hetrec(data_root, noise=noise, seed=seed, **options)
    if key == "synthetic":
        from .synthetic import make_world
        if split is not None:
            raise ValueError("the synthetic world makes its own split; use valid_ratio=/test_ratio= instead of split=")
        ds, _truth = make_world(seed=seed, **options)
        return ds
    path = Path(name)
    if path.exists():
        return _load_path(path, split=split, noise=noise, seed=seed, **options)
    if any(sep in str(name) for sep in ("/", "\\")) or path.suffix.lower() in (".inter", ".csv", ".tsv", ".txt", ".pkl"):
        raise FileNotFoundError(f"{name} not found (it looks like a path; no such file or folder)")
    raise ValueError(f"unknown data set {name!r}: expected one of {', '.join(DATASETS)} or a path to a "
                     f"LightGCN/RLMRec folder, a RecBole .inter file or a CSV/TSV table")


def _load_path(path: Path, *, split, noise, seed, **options) -> Dataset:
    if path.is_dir():
        if (path / "trn_mat.pkl").is_file():
            from .rlmrec import load_rlmrec_dir
            return load_rlmrec_dir(path, noise=noise, seed=seed, **options)
        if (path / "traindata.npy").is_file():
            from .llard import load_llard_dir
            return load_llard_dir(path, seed=seed, **options)
        if (path / "train.txt").is_file():
            from .lightgcn_format import load_lightgcn_dir
            return load_lightgcn_dir(path, noise=noise, seed=seed, **options)
        inter = sorted(path.glob("*.inter"))
        if inter:
            from .recbole import load_recbole_inter
            if split is not None:
                options["ratios"] = split
            return load_recbole_inter(path, noise=noise, seed=seed, **options)
        raise ValueError(f"{path}: no known data format found (train.txt, trn_mat.pkl, traindata.npy or *.inter)")
    if path.suffix == ".inter":
        from .recbole import load_recbole_inter
        if split is not None:
            options["ratios"] = split
        return load_recbole_inter(path, noise=noise, seed=seed, **options)
    from .tabular import load_table
    if split is not None:
        options["ratios"] = split
    return load_table(path, noise=noise, seed=seed, **options)


def add_data_arguments(parser) -> None:
    """Add ``--dataset``, ``--data-root``, ``--noise``, ``--seed`` and ``--split-seed`` to an argparse parser."""
    parser.add_argument("--dataset", default="ml-100k",
                        help=f"data set name ({', '.join(DATASETS)}) or a path to a LightGCN/RLMRec folder, "
                             f"a RecBole .inter file or a CSV/TSV table")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the data sets (default: $LLMHNI_DATA_ROOT, else ../shared/data "
                             "if present, else ~/.cache/llmhni/data, where downloads go)")
    parser.add_argument("--noise", default="none",
                        help="'none', 'natural' (ratings <= 2 labelled noisy; test keeps ratings >= 4) or an "
                             "injected ratio such as 0.2")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the injected noise")
    parser.add_argument("--split-seed", type=int, default=None, help="seed of the split alone (default: --seed)")


def load_from_args(args, **options) -> Dataset:
    """``load_dataset`` with the options :func:`add_data_arguments` added."""
    return load_dataset(args.dataset, args.data_root, noise=args.noise, seed=args.seed,
                        split_seed=args.split_seed, **options)
