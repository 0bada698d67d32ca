"""Loaders on the real shared data files (skipped where the data root lacks them)."""
import numpy as np
import pytest
import torch

from llmhni_ext.data import load_dataset, resolve_data_root

ROOT = resolve_data_root()
needs_ml100k = pytest.mark.skipif(not (ROOT / "ml-100k" / "u1.base").is_file() or
                                  not (ROOT / "ml-100k-llm-profiles").is_dir(),
                                  reason=f"ML-100K files not in the data root {ROOT}")
needs_lightgcn = pytest.mark.skipif(not (ROOT / "lightgcn-format" / "ml-1m").is_dir(),
                                    reason=f"LightGCN-format files not in {ROOT}")
needs_hetrec = pytest.mark.skipif(not (ROOT / "lastfm-hetrec2011-2k").is_dir(), reason=f"HetRec not in {ROOT}")


def _keys(it, n_items):
    return set((it.users * n_items + it.items).tolist())


@pytest.fixture(scope="module")
def ml100k():
    return load_dataset("ml-100k", download=False)


@needs_ml100k
def test_ml100k_default_split_sizes_and_ids(ml100k):
    ds = ml100k
    assert (ds.n_users, ds.n_items) == (943, 1682)
    assert len(ds.train) + len(ds.valid) == 80000 and len(ds.test) == 20000
    assert 0.08 < len(ds.valid) / 80000 < 0.1
    assert not (_keys(ds.train, ds.n_items) & _keys(ds.valid, ds.n_items))
    assert not (_keys(ds.train, ds.n_items) & _keys(ds.test, ds.n_items))
    assert ds.user_raw_ids[0] == 1 and ds.item_raw_ids[-1] == 1682
    assert ds.train.ratings is not None and set(torch.unique(ds.train.ratings).tolist()) == {1, 2, 3, 4, 5}
    assert ds.train_noise is None and ds.meta["split"] == "u1"
    # every user keeps training rows
    assert np.bincount(ds.train.users.numpy(), minlength=943).min() > 0
    assert "943 users" in ds.summary()


@needs_ml100k
def test_ml100k_texts_profiles_and_fallbacks(ml100k):
    ds = ml100k
    assert len(ds.user_text) == 943 and len(ds.item_text) == 1682
    assert all(t.strip() for t in ds.user_text) and all(t.strip() for t in ds.item_text)
    assert ds.item_text[0].startswith("Toy Story (1995). Genres: Animation, Children's, Comedy.")
    assert "Woody" in ds.item_text[0] and "##" not in ds.item_text[0] and "**" not in ds.item_text[0]
    assert "Dislikes" not in ds.item_text[0]
    # u.item is Latin-1: accents decode
    assert any("Misérables" in t for t in ds.item_fields["title"])
    c = ds.meta["cleanup"]
    assert c["items_without_profile"] == 91 and c["users_without_profile"] == 1
    no_prof = [u for u, p in enumerate(ds.user_fields["profile"]) if not p]
    assert len(no_prof) == 1
    t = ds.user_text[no_prof[0]]
    assert "year-old" in t and "Liked movies:" in t
    # fallback titles come from training rows only
    titles = set(ds.item_fields["title"][i] for i in ds.train.items[ds.train.users == no_prof[0]].tolist())
    liked = t.split("Liked movies: ")[1].rstrip(".").split("; ")
    assert liked and all(x in titles for x in liked)
    no_item = [i for i, p in enumerate(ds.item_fields["profile"]) if not p]
    assert len(no_item) == 91 and all("Genres:" in ds.item_text[i] or ds.item_fields["genres"][i] == ""
                                      for i in no_item)


@needs_ml100k
def test_ml100k_profile_options_and_seed():
    a = load_dataset("ml-100k", download=False, user_profile="summary_v2", item_profile="overview", seed=3)
    b = load_dataset("ml-100k", download=False, user_profile="none", item_profile="none", seed=3)
    c = load_dataset("ml-100k", download=False, seed=4)
    assert a.user_text[0] != b.user_text[0] and "year-old" in b.user_text[0]
    assert b.item_text[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert torch.equal(a.valid.users, b.valid.users) and torch.equal(a.valid.items, b.valid.items)
    assert not torch.equal(a.valid.items, c.valid.items)
    with pytest.raises(ValueError, match="user_profile"):
        load_dataset("ml-100k", download=False, user_profile="nope")
    with pytest.raises(ValueError, match="split"):
        load_dataset("ml-100k", download=False, split="u9")
    ub = load_dataset("ml-100k", download=False, split="ua")
    assert len(ub.test) == 9430 and ub.meta["text_leakage"] is True


@needs_ml100k
def test_ml100k_natural_noise():
    ds = load_dataset("ml-100k", download=False, noise="natural")
    assert ds.train_noise is not None and ds.train_noise.dtype == torch.bool
    assert torch.equal(ds.train_noise, ds.train.ratings <= 2)
    assert bool((ds.test.ratings >= 4).all()) and bool((ds.valid.ratings >= 4).all())
    assert len(ds.test) == int((load_dataset("ml-100k", download=False).test.ratings >= 4).sum())
    assert ds.meta["noise"] == "natural"


@needs_ml100k
def test_ml100k_injected_noise_through_load_dataset():
    ds = load_dataset("ml-100k", download=False, noise=0.1, seed=5)
    clean = 80000 - load_dataset("ml-100k", download=False, seed=5).valid.users.numel()
    assert int(ds.train_noise.sum()) == round(0.1 * clean)
    assert len(ds.train) == clean + round(0.1 * clean)


@needs_lightgcn
@pytest.mark.parametrize("name,users,train,valid,test", [("ml-1m", 6039, 590733, 80897, 164848),
                                                          ("lastfm", 1885, 64315, 9143, 18321)])
def test_lightgcn_shared_sizes(name, users, train, valid, test):
    ds = load_dataset(name)
    assert len(ds.train) == train and len(ds.valid) == valid and len(ds.test) == test
    assert ds.n_users >= users
    assert ds.user_text is None and ds.item_text is None
    assert not (_keys(ds.train, ds.n_items) & _keys(ds.test, ds.n_items))
    with pytest.raises(ValueError, match="natural noise needs ratings"):
        load_dataset(name, noise="natural")


@needs_hetrec
def test_lastfm_hetrec_raw():
    ds = load_dataset("lastfm-hetrec")
    assert ds.n_users == 1892 and ds.n_items == 17632
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 92834
    assert ds.item_text[0] == "MALICE MIZER" and ds.item_raw_ids[0] == 1
    assert ds.meta["ratings"] == "listening counts"
    with pytest.raises(ValueError, match="star ratings"):
        load_dataset("lastfm-hetrec", noise="natural")


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("no-such-set")


def _copy_root(tmp_path, edits):
    """A data root of symlinks to the shared files, with ``edits`` {relative path: bytes} written as real files."""
    root = tmp_path / "root"
    for sub in ("ml-100k", "ml-100k-llm-profiles"):
        (root / sub).mkdir(parents=True)
        for f in (ROOT / sub).iterdir():
            rel = f"{sub}/{f.name}"
            if rel in edits:
                (root / rel).write_bytes(edits[rel])
            else:
                (root / rel).symlink_to(f)
    return root


@needs_ml100k
@pytest.mark.parametrize("edit,line,msg", [
    (lambda b: b.replace(b"1\t3\t4\t878542960", b"1\t3\tfour\t878542960", 1), 3, "not an integer"),
    (lambda b: b.replace(b"1\t3\t4\t878542960", b"1\t3\t4", 1), 3, "expected 4 fields"),
    (lambda b: b.replace(b"1\t3\t4\t878542960", b"1\t1999\t4\t878542960", 1), 3, "item_id 1999 outside"),
    (lambda b: b.replace(b"1\t3\t4\t878542960", b"1\t3\t9\t878542960", 1), 3, "rating 9 outside"),
])
def test_ml100k_malformed_ratings_name_file_and_line(tmp_path, edit, line, msg):
    from llmhni_ext.data import DataError
    root = _copy_root(tmp_path, {"ml-100k/u1.base": edit((ROOT / "ml-100k" / "u1.base").read_bytes())})
    with pytest.raises(DataError, match=msg) as e:
        load_dataset("ml-100k", str(root), download=False)
    assert e.value.line == line and e.value.path.endswith("u1.base")


@needs_ml100k
def test_ml100k_duplicates_are_counted_and_bad_profile_csv_is_named(tmp_path):
    from llmhni_ext.data import DataError
    base = (ROOT / "ml-100k" / "u1.base").read_bytes()
    root = _copy_root(tmp_path, {"ml-100k/u1.base": base + b"1\t1\t2\t999999999\n"})
    with pytest.raises(DataError, match="does not match the published"):      # an altered copy
        load_dataset("ml-100k", str(root), download=False, valid_ratio=0.0)
    ds = load_dataset("ml-100k", str(root), download=False, valid_ratio=0.0, verify=False)
    assert ds.meta["cleanup"]["duplicates_dropped_train"] == 1 and len(ds.train) == 80000
    m = (ds.train.users == 0) & (ds.train.items == 0)
    assert ds.train.ratings[m].item() == 2                    # the latest row wins
    prof = (ROOT / "ml-100k-llm-profiles" / "users_structured_100k.csv").read_bytes()
    root2 = _copy_root(tmp_path / "b", {"ml-100k-llm-profiles/users_structured_100k.csv":
                                        prof.replace(b"\n2,", b"\nx2,", 1)})
    with pytest.raises(DataError, match="user_id is not an integer") as e:
        load_dataset("ml-100k", str(root2), download=False)
    assert e.value.line > 2 and "users_structured_100k.csv" in str(e.value)
    root3 = _copy_root(tmp_path / "c", {"ml-100k-llm-profiles/users_structured_100k.csv":
                                        prof[:200] + b"\xff\xfe" + prof[200:]})
    with pytest.raises(DataError, match="not valid utf-8") as e:
        load_dataset("ml-100k", str(root3), download=False)
    assert e.value.line == 3


@needs_ml100k
def test_split_seed_separates_split_from_noise():
    a = load_dataset("ml-100k", download=False, noise=0.1, seed=1, split_seed=0)
    b = load_dataset("ml-100k", download=False, noise=0.1, seed=2, split_seed=0)
    assert torch.equal(a.valid.items, b.valid.items)
    assert not torch.equal(a.train.items[-100:], b.train.items[-100:])


@needs_ml100k
def test_readable_titles_and_module_cli(capsys):
    from llmhni_ext.data.__main__ import main
    ds = load_dataset("ml-100k", download=False, user_profile="none", item_profile="none")
    assert "The Full Monty (1997)" in ds.item_fields["title"]
    assert main(["summary", "--dataset", "ml-100k", "--noise", "natural"]) == 0
    assert "noise=natural" in capsys.readouterr().out


AMAZON = ROOT / "rlmrec-amazon-book"


@pytest.mark.skipif(not (AMAZON / "trn_mat.pkl").is_file(), reason="needs ../shared/data/rlmrec-amazon-book")
def test_amazon_book_loads_by_name_with_profiles_and_raw_ids(tmp_path, monkeypatch):
    import shutil

    from llmhni_ext.data import DataError
    monkeypatch.setenv("LLMHNI_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_dataset("amazon-book", str(ROOT))
    assert (ds.n_users, ds.n_items) == (11000, 9332)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (120464, 40290, 40106)
    assert ds.user_raw_ids[0] == "A2PDSDPBAO255U" and ds.item_raw_ids[164] == "0345803493"
    assert ds.user_text[0].startswith("This user enjoys reading") and all(ds.item_text)
    root = tmp_path / "root"
    shutil.copytree(AMAZON, root / "rlmrec-amazon-book")
    prof = root / "rlmrec-amazon-book" / "amazon_item_profiles.csv"
    data = prof.read_bytes()
    prof.write_bytes(data[: data.rindex(b"\n", 0, len(data) // 2) + 1])      # half the profiles, parses fine
    with pytest.raises(DataError, match="amazon_item_profiles.csv.*does not match the published"):
        load_dataset("amazon-book", str(root))
    assert load_dataset("amazon-book", str(root), verify=False).meta["cleanup"]["items_without_profile"] > 0
