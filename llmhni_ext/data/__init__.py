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
from .lastfm import load_lastfm_hetrec
from .lightgcn_format import load_lightgcn_dir
from .loaders import DATASETS, add_data_arguments, load_dataset, load_from_args
from .movielens import load_ml100k
from .noise import apply_noise, inject_noise, natural_noise
from .recbole import load_recbole_inter
from .rlmrec import load_rlmrec_dir
from .root import resolve_data_root
from .synthetic import KIND_NAMES, WorldTruth, make_world
from .tabular import load_table

__all__ = ["Dataset", "Interactions", "DataError", "DownloadError", "load_dataset", "DATASETS",
           "add_data_arguments", "load_from_args", "load_ml100k", "load_lightgcn_dir", "load_lastfm_hetrec",
           "load_recbole_inter", "load_rlmrec_dir", "load_table", "inject_noise", "natural_noise",
           "apply_noise", "resolve_data_root", "make_world", "WorldTruth", "KIND_NAMES"]
