"""Data sets for llmhni: loaders, data root and verified downloads, noise, synthetic world.

Everything returns one :class:`Dataset` (train/valid/test :class:`Interactions` with
internal contiguous ids, id maps, optional user/item texts, per-train-row noise labels,
``meta`` with provenance and counted clean-ups). Entry point::

    from llmhni_ext.data import load_dataset
    ds = load_dataset("ml-100k", noise=0.2, seed=0)
    print(ds.summary())

Names: ``ml-100k`` (raw files + LLM profiles), ``ml-1m`` and ``lastfm`` (LightGCN format
under ``<root>/lightgcn-format/``), ``lastfm-hetrec`` (raw HetRec 2011), ``synthetic``.
A path instead of a name loads a folder or file by its format (LightGCN folder,
RLMRec folder, RecBole ``.inter``, CSV/TSV table).
"""
from .dataset import DataError, Dataset, Interactions
from .download import DownloadError
from .loaders import load_dataset, DATASETS
from .lightgcn_format import load_lightgcn_dir
from .movielens import load_ml100k
from .noise import apply_noise, inject_noise, natural_noise
from .root import resolve_data_root

__all__ = ["Dataset", "Interactions", "DataError", "DownloadError", "load_dataset", "DATASETS",
           "load_lightgcn_dir", "load_ml100k", "inject_noise", "natural_noise", "apply_noise",
           "resolve_data_root"]
