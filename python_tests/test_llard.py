"""LLaRD's data files, imported G' judgments and the paper's protocol."""
import json
import pickle

import numpy as np
import pytest
import torch

from llmhni_ext.config import PAPER_PROTOCOL_NOTE, RunConfig, from_dict
from llmhni_ext.data import Dataset, Interactions, load_dataset, resolve_data_root
from llmhni_ext.data.dataset import DataError
from llmhni_ext.data.llard import compare_with_split, load_llard_dir, read_user_lists
from llmhni_ext.pipeline import paper_protocol, run_training
from llmhni_ext.signals import SignalsConfig
from llmhni_ext.signals.imported import apply_to_train, imported_judgments, read_edge_file
from llmhni_ext.typed import ConfigError

ROOT = resolve_data_root()
needs_llard = pytest.mark.skipif(not (ROOT / "llard" / "amazon_book" / "traindata.npy").is_file()
                                 or not (ROOT / "rlmrec-amazon-book" / "trn_mat.pkl").is_file(),
                                 reason=f"LLaRD and RLMRec Amazon-book files not in {ROOT}")


def save_lists(path, obj):
    """A file as LLaRD writes it: np.save of a Python object (a 0-d object array)."""
    np.save(path, np.array(obj, dtype=object), allow_pickle=True)
    return path


def write_folder(folder, train, test, aug=None):
    (folder / "rel_k").mkdir(parents=True, exist_ok=True)
    save_lists(folder / "traindata.npy", train)
    save_lists(folder / "testdata.npy", test)
    if aug is not None:
        save_lists(folder / "rel_k" / "aug_traindata.npy", aug)
    return folder


# ------------------------------------------------------------------ reading the .npy files

def test_read_user_lists_round_trip(tmp_path):
    d = {0: [1, 2, 3], 5: [0], 2: []}
    assert read_user_lists(save_lists(tmp_path / "a.npy", d)) == d


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("case", ["exec in a value", "exec as the dict", "os.system header"])
def test_hostile_npy_never_runs_code(tmp_path, case):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    if case == "exec in a value":
        save_lists(path, {0: [1, _Exec(marker)]})
    elif case == "exec as the dict":
        save_lists(path, _Exec(marker))
    else:
        good = save_lists(tmp_path / "good.npy", {0: [1]}).read_bytes()
        hl = int.from_bytes(good[8:10], "little")
        path.write_bytes(good[:10 + hl] + b"cos\nsystem\n(Vtouch " + str(marker).encode() + b"\ntR.")
    with pytest.raises(DataError, match=r"evil\.npy.*refusing to load"):
        read_user_lists(path)
    assert not marker.exists()


@pytest.mark.parametrize("obj, match", [
    ({"a": [1]}, "key 'a' is not a non-negative int"),
    ({-1: [1]}, "key -1"),
    ({0: (1, 2)}, "expected a list of items, found tuple"),
    ({0: [1, "x"]}, "item 'x'"),
    ({0: [1.5]}, "item 1.5"),
    ("hello", "expected a dict"),
    ([1, 2], "0-d object array"),
])
def test_npy_of_the_wrong_shape_is_refused(tmp_path, obj, match):
    with pytest.raises(DataError, match=match):
        read_user_lists(save_lists(tmp_path / "x.npy", obj))


def test_npy_plain_array_truncated_and_garbage(tmp_path):
    np.save(tmp_path / "ints.npy", np.arange(5))
    with pytest.raises(DataError, match="0-d object array"):
        read_user_lists(tmp_path / "ints.npy")
    full = save_lists(tmp_path / "t.npy", {0: list(range(100))}).read_bytes()
    (tmp_path / "t.npy").write_bytes(full[:-40])
    with pytest.raises(DataError, match="cannot unpickle"):
        read_user_lists(tmp_path / "t.npy")
    (tmp_path / "g.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DataError, match="not a .npy file"):
        read_user_lists(tmp_path / "g.npy")


# ------------------------------------------------------------------ the folder loader

def test_llard_folder_counts_out_of_range_and_carves_valid(tmp_path):
    train = {u: [(u + k) % 20 for k in range(8)] for u in range(10)}
    test = {u: [(u + 10) % 20] for u in range(10)}
    write_folder(tmp_path / "d", train, test)
    ds = load_llard_dir(tmp_path / "d", n_users=10, n_items=20, valid_ratio=0.25, seed=1)
    assert len(ds.train) + len(ds.valid) == 80 and len(ds.valid) == 20 and len(ds.test) == 10
    assert load_llard_dir(tmp_path / "d", n_users=10, n_items=20, seed=1).valid.keys(20).tolist() == \
        ds.valid.keys(20).tolist()                       # the carving follows the seed
    save_lists(tmp_path / "d" / "traindata.npy", {**train, 3: train[3] + [9999999]})
    ds2 = load_llard_dir(tmp_path / "d", n_users=10, n_items=20, valid_ratio=0)
    assert ds2.meta["cleanup"]["train_out_of_range_dropped"] == 1 and len(ds2.train) == 80
    with pytest.raises(DataError, match="item id 9999999 is far beyond"):      # sizes guessed: refused
        load_llard_dir(tmp_path / "d", valid_ratio=0)


def test_compare_with_split():
    tr = Interactions(np.array([0, 0, 1]), np.array([0, 1, 2]))
    va = Interactions(np.array([1]), np.array([0]))
    te = Interactions(np.array([2]), np.array([1]))
    llard = Dataset("x", 3, 3, train=Interactions(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 0])),
                    valid=Interactions.empty(), test=te, user_raw_ids=[0, 1, 2], item_raw_ids=[0, 1, 2])
    c = compare_with_split(llard, np.sort(tr.keys(3)), np.sort(va.keys(3)), np.sort(te.keys(3)))
    assert c["equal"]
    c = compare_with_split(llard, np.sort(tr.keys(3)), np.zeros(0, np.int64), np.sort(te.keys(3)))
    assert not c["equal"] and c["llard_train_not_in_train_plus_valid"] == 1


# ------------------------------------------------------------------ imported G'

def small_ds(n_users=4, n_items=10):
    tr = Interactions(np.array([0, 0, 1, 1, 2, 3]), np.array([0, 1, 2, 3, 4, 5]))
    va = Interactions(np.array([0, 2]), np.array([6, 7]))
    te = Interactions(np.array([1, 3]), np.array([8, 9]))
    return Dataset("small", n_users, n_items, train=tr, valid=va, test=te, user_raw_ids=list(range(n_users)),
                   item_raw_ids=list(range(n_items)))


def test_edge_file_formats(tmp_path):
    (tmp_path / "g.tsv").write_text("# G'\nuser\titem\n0\t0\n0 0\n1,2\n99 1\n")
    g = read_edge_file(tmp_path / "g.tsv", 4, 10)
    assert g["format"].startswith("graph") and g["keys"].tolist() == [0, 12]
    assert g["counts"] == {"file_pairs": 4, "out_of_range_dropped": 1, "duplicates_dropped": 1}
    (tmp_path / "d.tsv").write_text("op user item\n+ 0 5\n- 1 2\nremove 0 1\n")
    d = read_edge_file(tmp_path / "d.tsv", 4, 10)
    assert d["added"].tolist() == [5] and d["removed"].tolist() == [1, 12]
    for text, match in (("+ 0 1\n0 1\n", "mixes"), ("* 0 1\n", "op must be"), ("0 1 2 3\n", "found 4 fields"),
                        ("+ 0 1\n- 0 1\n", "both added and removed"), ("0 1\n0 x\n", "must be integers")):
        (tmp_path / "bad.tsv").write_text(text)
        with pytest.raises(DataError, match=match):
            read_edge_file(tmp_path / "bad.tsv", 4, 10)


def test_imported_graph_against_its_base(tmp_path):
    ds = small_ds()
    base = {0: [0, 1, 6], 1: [2, 3], 2: [4, 7], 3: [5]}          # train + valid
    aug = {0: [0, 6, 2], 1: [2, 3, 8], 2: [4, 7], 3: [5, 3, 9999999]}   # -(0,1), +(0,2), +(1,8) test, +(3,3)
    folder = write_folder(tmp_path / "l" / "amazon_book", base, {1: [8], 3: [9]}, aug)
    for policy, added in (("drop", [[0, 3], [2, 3]]), ("keep", [[0, 1, 3], [2, 8, 3]])):
        cfg = SignalsConfig(judge="imported", judge_import=str(folder / "rel_k" / "aug_traindata.npy"),
                            judge_import_heldout=policy)
        hard, noisy, judg, info = imported_judgments(ds, cfg)
        assert noisy.tolist() == [[0], [1]]
        assert sorted(map(tuple, hard.T.tolist())) == sorted(zip(*added))
        assert info["removed"] == 1 and info["added"] == 3 and info["added_in_test"] == 1
        assert info["out_of_range_dropped"] == 1 and info["base"].endswith("traindata.npy")
        assert info["base_check"]["train_not_in_base"] == 0
    g = apply_to_train(ds, hard, noisy)
    assert sorted(g.train.keys(10).tolist()) == sorted([0, 12, 13, 24, 35, 2, 18, 33])
    ds_paper = paper_protocol(ds)          # valid merged into train; the test split is never added
    hard, _, _, info = imported_judgments(ds_paper, SignalsConfig(judge="imported", judge_import=str(
        folder / "rel_k" / "aug_traindata.npy")))
    assert info["added_in_valid_not_added"] == 0 and info["added_in_test"] == 1 and hard.shape[1] == 2


def test_imported_needs_a_file_and_llard_needs_a_llard_dataset(tmp_path):
    with pytest.raises(ValueError, match="needs judge_import"):
        SignalsConfig(judge="imported")
    with pytest.raises(ValueError, match="judge_import_heldout"):
        SignalsConfig(judge="imported", judge_import="x", judge_import_heldout="maybe")
    with pytest.raises(ValueError, match="not one: give a file path"):
        imported_judgments(small_ds(), SignalsConfig(judge="imported", judge_import="llard"))
    with pytest.raises(FileNotFoundError):
        imported_judgments(small_ds(), SignalsConfig(judge="imported", judge_import=str(tmp_path / "none.tsv")))


# ------------------------------------------------------------------ the paper's protocol

def test_paper_protocol_trains_on_train_plus_valid_and_selects_on_test(tmp_path):
    from llmhni_ext.data import make_world
    ds, _ = make_world(seed=0, n_users=60, n_items=80)
    cfg = RunConfig()
    cfg.method.name, cfg.model.dim, cfg.train.epochs, cfg.train.progress = "bpr", 8, 2, False
    cfg.data.protocol = "paper"
    view = paper_protocol(ds)
    assert len(view.train) == len(np.union1d(ds.train.keys(80), ds.valid.keys(80)))
    assert view.valid is ds.test and view.meta["protocol"] == "paper"
    res = run_training(cfg, out_dir=str(tmp_path / "r"), dataset=view)
    assert res["protocol"] == "paper" and res["protocol_note"] == PAPER_PROTOCOL_NOTE
    assert res["test"]["recall@20"] == pytest.approx(res["valid"]["recall@20"])   # test masks train only
    assert json.loads((tmp_path / "r" / "results.json").read_text())["protocol_note"] == PAPER_PROTOCOL_NOTE
    with pytest.raises(ConfigError, match="data.protocol"):
        from_dict({"data": {"protocol": "optimistic"}})
    with pytest.raises(ConfigError, match="data.graph"):
        from_dict({"data": {"graph": "imported"}})          # without signals.judge_import


# ------------------------------------------------------------------ the shared files

@needs_llard
def test_llard_amazon_book_is_rlmrecs_split():
    ds = load_dataset("llard-amazon-book")
    check = ds.meta["llard"]["check"]
    assert check["equal"] and check["llard_train"] == 160_754 and check["llard_test"] == 40_106
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (120_464, 40_290, 40_106)
    assert ds.user_text is not None


@needs_llard
def test_llard_qwen_graph_on_amazon_book():
    ds = load_dataset("llard-amazon-book")
    hard, noisy, _, info = imported_judgments(ds, SignalsConfig(judge="imported", judge_import="llard"))
    assert info["removed"] == 10_819 and info["out_of_range_dropped"] == 156
    assert info["added"] == 10_735 - 156 and info["added_in_test"] == 192
    assert noisy.shape[1] == info["removed_in_train"] and hard.shape[1] == info["added"] - 192


@pytest.mark.skipif(not (ROOT / "llard" / "yelp" / "traindata.npy").is_file(), reason="LLaRD's Yelp not present")
def test_llard_yelp_loads_with_a_carved_validation_split():
    ds = load_dataset("llard-yelp")
    assert (ds.n_users, ds.n_items) == (11_091, 11_010)
    assert len(ds.train) + len(ds.valid) == 222_099 and len(ds.test) == 55_436
    _, _, _, info = imported_judgments(ds, SignalsConfig(judge="imported", judge_import="llard"))
    assert info["out_of_range_dropped"] == 162 and info["added_in_test"] == 145


def test_table_rows_say_how_they_were_made():
    from llmhni_ext.compare import method_label
    r = {"method": "dns", "protocol": "paper", "protocol_note": PAPER_PROTOCOL_NOTE,
         "graph_import": {"source": "/x/rel_k/aug_traindata.npy"},
         "signals": {"logical": {"judge": "imported", "source": "/y/g.tsv"}}}
    label = method_label(r)
    assert "G' imported: g.tsv" in label and "trained on imported G': aug_traindata.npy" in label
    assert PAPER_PROTOCOL_NOTE in label
    assert method_label({"method": "bpr", "protocol": "validated"}) == "bpr"
