"""Every loader on fixtures written here (LightGCN, RecBole, RLMRec, CSV/TSV), and clear
errors that name the file and the line."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from llmhni_ext.data import DataError, load_dataset, load_lightgcn_dir
from llmhni_ext.data.recbole import load_recbole_inter
from llmhni_ext.data.rlmrec import load_rlmrec_dir
from llmhni_ext.data.tabular import load_table


def pairs(it):
    return sorted(zip(it.users.tolist(), it.items.tolist()))


# -- LightGCN ------------------------------------------------------------------------------
def write_lightgcn(tmp_path, train, test, valid=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "train.txt").write_text(train)
    (tmp_path / "test.txt").write_text(test)
    if valid is not None:
        (tmp_path / "valid.txt").write_text(valid)
    return tmp_path


def test_lightgcn_fixture_ids_kept_and_cleanups(tmp_path):
    d = write_lightgcn(tmp_path / "g", "0 1 2 2\n1 0\n3\n1 4\n", "0 3 1\n2 4\n", "1 2\n")
    ds = load_lightgcn_dir(d)
    assert (ds.n_users, ds.n_items) == (4, 5)
    assert pairs(ds.train) == [(0, 1), (0, 2), (1, 0), (1, 4)]
    assert pairs(ds.valid) == [(1, 2)]
    assert pairs(ds.test) == [(0, 3), (2, 4)]          # (0, 1) is in train: dropped
    c = ds.meta["cleanup"]
    assert c["duplicates_dropped_train"] == 1 and c["empty_user_lines_train"] == 1
    assert c["repeated_user_lines_train"] == 1 and c["test_rows_in_train_or_valid_dropped"] == 1
    assert c["users_without_train_rows"] == 2           # users 2 and 3
    assert load_dataset(str(d)).n_items == 5            # by path


def test_lightgcn_without_valid_carves_by_seed(tmp_path):
    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, [u] + list(rng.choice(50, 20, replace=False)))) for u in range(30)]
    d = write_lightgcn(tmp_path / "g", "\n".join(lines) + "\n", "0 49\n")
    assert len(load_lightgcn_dir(d).valid) == 30 * 2          # 0.1 by default, as documented
    assert len(load_lightgcn_dir(d, valid_ratio=0).valid) == 0
    a, b = load_lightgcn_dir(d, valid_ratio=0.2, seed=1), load_lightgcn_dir(d, valid_ratio=0.2, seed=1)
    assert len(a.valid) == 30 * 4 and pairs(a.valid) == pairs(b.valid)
    assert pairs(load_lightgcn_dir(d, valid_ratio=0.2, seed=2).valid) != pairs(a.valid)


@pytest.mark.parametrize("train,line,msg", [("0 1 2\n1 x 3\n", 2, "integers"), ("0 1\n\n2 -3\n", 3, "negative")])
def test_lightgcn_errors_name_file_and_line(tmp_path, train, line, msg):
    d = write_lightgcn(tmp_path / "g", train, "0 2\n")
    with pytest.raises(DataError, match=msg) as e:
        load_lightgcn_dir(d)
    assert e.value.line == line and e.value.path.endswith("train.txt")
    assert f"train.txt:{line}:" in str(e.value)


def test_lightgcn_bad_encoding_names_line(tmp_path):
    d = tmp_path / "g"
    d.mkdir()
    (d / "train.txt").write_bytes(b"0 1\n1 2\n2 \xff3\n")
    (d / "test.txt").write_text("0 2\n")
    with pytest.raises(DataError, match="utf-8") as e:
        load_lightgcn_dir(d)
    assert e.value.line == 3


def test_lightgcn_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.txt"):
        load_lightgcn_dir(tmp_path)


# -- RecBole ------------------------------------------------------------------------------
INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" +
         "".join(f"u{u}\ti{(u * 7 + k) % 40}\t{1 + (u + k) % 5}\t{1000 + 10 * k + u}\n"
                 for u in range(25) for k in range(12)))


def test_recbole_single_file_random_split(tmp_path):
    (tmp_path / "toy.inter").write_text(INTER + "u0\ti0\t5\t99999\n")  # a duplicate of (u0, i0)
    (tmp_path / "toy.item").write_text("item_id:token\tmovie_title:token_seq\tgenre:token_seq\n" +
                                       "".join(f"i{i}\tTitle {i}\tDrama Comedy\n" for i in range(40)))
    ds = load_recbole_inter(tmp_path / "toy.inter", seed=0)
    assert ds.n_users == 25 and ds.n_items == 40
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 300
    assert ds.meta["cleanup"]["duplicates_dropped"] == 1
    # the later duplicate (timestamp 99999, rating 5) was kept
    u0 = ds.user_raw_ids.index("u0")
    i0 = ds.item_raw_ids.index("i0")
    for it in (ds.train, ds.valid, ds.test):
        m = (it.users == u0) & (it.items == i0)
        if m.any():
            assert it.timestamps[m].item() == 99999 and it.ratings[m].item() == 5
    assert ds.item_text[ds.item_raw_ids.index("i3")] == "movie title: Title 3. genre: Drama Comedy."
    assert ds.user_text is None
    same = load_dataset(str(tmp_path), seed=0)          # the folder, by format
    assert pairs(same.test) == pairs(ds.test)
    nat = load_recbole_inter(tmp_path / "toy.inter", noise="natural")
    assert bool((nat.test.ratings >= 4).all())


def test_recbole_benchmark_files_fixed_split(tmp_path):
    head = "user_id:token\titem_id:token\n"
    (tmp_path / "b.train.inter").write_text(head + "1\t10\n1\t11\n2\t10\n")
    (tmp_path / "b.valid.inter").write_text(head + "1\t12\n")
    (tmp_path / "b.test.inter").write_text(head + "2\t11\n1\t10\n")
    ds = load_recbole_inter(tmp_path)
    assert ds.user_raw_ids == [1, 2] and ds.item_raw_ids == [10, 11, 12]
    assert pairs(ds.train) == [(0, 0), (0, 1), (1, 0)] and pairs(ds.valid) == [(0, 2)]
    assert pairs(ds.test) == [(1, 1)] and ds.meta["cleanup"]["test_rows_in_train_or_valid_dropped"] == 1
    assert ds.train.ratings is None


@pytest.mark.parametrize("body,line,msg", [
    ("user_id\titem_id\n1\t2\n", 1, "name:type"),
    ("user_id:token\titem_id:token\n1\t2\n3\n", 3, "2 tab-separated fields"),
    ("user_id:token\titem_id:token\trating:float\n1\t2\t4\n1\t3\tgood\n", 3, "rating is not a number"),
])
def test_recbole_errors(tmp_path, body, line, msg):
    (tmp_path / "x.inter").write_text(body)
    with pytest.raises(DataError, match=msg) as e:
        load_recbole_inter(tmp_path / "x.inter")
    assert e.value.line == line and "x.inter" in str(e.value)


# -- RLMRec -------------------------------------------------------------------------------
def write_rlmrec(d, n_users=12, n_items=20, dim=1536, with_val=True, seed=0):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items))
    trn = sp.coo_matrix((dense > 0.6).astype(np.float32))
    val = sp.coo_matrix(((dense > 0.5) & (dense <= 0.55)).astype(np.float32))
    tst = sp.csr_matrix(((dense > 0.55) & (dense <= 0.6)).astype(np.float64))
    for name, m in (("trn_mat.pkl", trn), ("val_mat.pkl", val), ("tst_mat.pkl", tst)):
        if name == "val_mat.pkl" and not with_val:
            continue
        with open(d / name, "wb") as f:
            pickle.dump(m, f)
    with open(d / "usr_prf.pkl", "wb") as f:
        pickle.dump({u: {"profile": f"user {u} likes  jazz", "reasoning": "because"} for u in range(n_users - 1)}, f)
    with open(d / "itm_prf.pkl", "wb") as f:
        pickle.dump({i: {"profile": f"item {i}", "reasoning": "r"} for i in range(n_items)}, f)
    with open(d / "usr_emb_np.pkl", "wb") as f:
        pickle.dump(rng.standard_normal((n_users, dim)).astype(np.float64), f)
    with open(d / "itm_emb_np.pkl", "wb") as f:
        pickle.dump(rng.standard_normal((n_items, dim)).astype(np.float32), f)
    return dense


def test_rlmrec_fixture(tmp_path):
    dense = write_rlmrec(tmp_path / "amazon")
    ds = load_dataset(str(tmp_path / "amazon"))
    assert ds.name == "amazon" and (ds.n_users, ds.n_items) == (12, 20)
    exp = sorted(zip(*np.nonzero(dense > 0.6)))
    assert pairs(ds.train) == [(int(a), int(b)) for a, b in exp]
    assert len(ds.test) == int(((dense > 0.55) & (dense <= 0.6)).sum())
    assert ds.user_text[0] == "user 0 likes jazz" and ds.user_text[11] == ""
    assert ds.meta["cleanup"]["users_without_profile"] == 1
    assert ds.item_text[3] == "item 3"
    assert ds.user_text_emb.shape == (12, 1536) and ds.user_text_emb.dtype == np.float32
    assert ds.item_text_emb.shape == (20, 1536)


def test_rlmrec_optional_val_and_bad_files(tmp_path):
    write_rlmrec(tmp_path / "a", with_val=False)
    assert len(load_rlmrec_dir(tmp_path / "a").valid) == 0
    with open(tmp_path / "a" / "itm_emb_np.pkl", "wb") as f:
        pickle.dump(np.zeros((3, 8)), f)
    with pytest.raises(DataError, match=r"itm_emb_np.pkl.*shape \(20, d\)"):
        load_rlmrec_dir(tmp_path / "a")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_rlmrec_refuses_arbitrary_pickles(tmp_path):
    write_rlmrec(tmp_path / "a")
    with open(tmp_path / "a" / "usr_prf.pkl", "wb") as f:
        pickle.dump({0: Evil()}, f)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_rlmrec_dir(tmp_path / "a")
    (tmp_path / "a" / "trn_mat.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="trn_mat.pkl: cannot unpickle"):
        load_rlmrec_dir(tmp_path / "a")


# -- CSV / TSV ----------------------------------------------------------------------------
def test_table_csv_with_header_and_text(tmp_path):
    rows = ["userId,movieId,rating,timestamp,title,bio"]
    rows += [f"{u},{100 + (u * 3 + k) % 30},{1 + k % 5},{k},\"Movie {100 + (u * 3 + k) % 30}, the sequel\",\"bio of {u}\""
             for u in range(20) for k in range(10)]
    p = tmp_path / "t.csv"
    p.write_text("\n".join(rows) + "\n")
    ds = load_table(p, item_text_col="title", user_text_col="bio", seed=1)
    assert ds.n_users == 20 and ds.n_items == 30 and ds.user_raw_ids[:3] == [0, 1, 2]
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 200
    assert ds.item_text[0] == "Movie 100, the sequel" and ds.user_text[5] == "bio of 5"
    assert ds.train.timestamps is not None and ds.train.ratings is not None
    again = load_dataset(str(p), item_text_col="title", user_text_col="bio", seed=1)
    assert pairs(again.valid) == pairs(ds.valid)


def test_table_tsv_headerless_with_split_column(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("a\tx\t5\t1\ttrain\na\ty\t4\t2\ttest\nb\tx\t3\t3\tvalid\nb\ty\t1\t4\ttrain\n")
    ds = load_table(p, split_col=4)
    assert ds.user_raw_ids == ["a", "b"] and ds.item_raw_ids == ["x", "y"]
    assert pairs(ds.train) == [(0, 0), (1, 1)] and pairs(ds.test) == [(0, 1)] and pairs(ds.valid) == [(1, 0)]


@pytest.mark.parametrize("body,line,msg", [
    ("user,item,rating\n1,2,5\n1,3\n", 3, "expected 3 fields"),
    ("user,item,rating\n1,2,5\n1,3,great\n", 3, "rating is not a number"),
    ("user,item,rating\n1,2,5\n,3,4\n", 3, "empty user or item"),
    ("u,i\n1,2\n", 1, "no user column"),
])
def test_table_errors(tmp_path, body, line, msg):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(DataError, match=msg) as e:
        load_table(p)
    assert e.value.line == line and "bad.csv" in str(e.value)


def test_table_multiline_quoted_field_line_numbers(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text('user,item,rating,text\n1,2,5,"two\nlines"\n1,3,x,"ok"\n')
    with pytest.raises(DataError) as e:
        load_table(p, item_text_col="text")
    assert e.value.line == 4


def test_interactions_and_dataset_checks():
    from llmhni_ext.data import Dataset, Interactions
    with pytest.raises(ValueError, match="equal length"):
        Interactions(torch.tensor([0, 1]), torch.tensor([0]))
    it = Interactions(torch.tensor([0, 3]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="user id out of range"):
        Dataset("x", 2, 2, it, Interactions.empty(), Interactions.empty(), user_raw_ids=[0, 1], item_raw_ids=[0, 1])


@pytest.mark.parametrize("sep,eol,final", [(" ", "\n", True), ("\t", "\r\n", False), ("  ", "\n", False)])
def test_lightgcn_whitespace_variants_parse_alike(tmp_path, sep, eol, final):
    rng = np.random.default_rng(1)
    rows = [[u] + sorted(rng.choice(60, 1 + u % 7, replace=False).tolist()) for u in range(25)]
    text = eol.join(sep.join(map(str, r)) for r in rows) + (eol if final else "")
    d = write_lightgcn(tmp_path / "g", text, "0 59\n")
    ds = load_lightgcn_dir(d)
    exp = sorted((r[0], i) for r in rows for i in r[1:])
    assert pairs(ds.train) == exp


def test_fast_int_parser_matches_python_on_random_text():
    from llmhni_ext.data.parsing import fast_int_lines
    rng = np.random.default_rng(0)
    for _ in range(20):
        lines = [" ".join(str(x) for x in rng.integers(0, 10 ** rng.integers(1, 12), rng.integers(0, 6)))
                 for _ in range(rng.integers(0, 30))]
        text = "\n".join(lines) + ("\n" if rng.random() < 0.5 else "")
        vals, counts = fast_int_lines(text.encode())
        assert vals.tolist() == [int(t) for ln in lines for t in ln.split()]
        exp_counts = [len(ln.split()) for ln in text.split("\n")]
        if text.endswith("\n"):
            exp_counts = exp_counts[:-1]
        assert counts.tolist() == exp_counts
    assert fast_int_lines(b"1 -2\n") is None and fast_int_lines(b"1 2.5\n") is None


def test_table_ids_with_leading_zeros_stay_distinct(tmp_path):
    p = tmp_path / "z.csv"
    p.write_text("user,item\n7,1\n007,2\n7,3\n007,1\n7,2\n007,3\n")
    ds = load_table(p, ratios=(1, 0, 0))
    assert ds.user_raw_ids == ["007", "7"] and ds.item_raw_ids == [1, 2, 3]
    assert len(ds.train) == 6
