"""A synthetic world with ground truth, for fast tests and for measuring how well
hard and noisy samples are told apart.

Latent model. There are ``n_topics`` themes (space adventure, romance, horror, ...),
each with a vocabulary of real English words. Every item has a main theme and
sometimes a secondary one (``item_mix``, rows sum to 1) and a Zipf-like popularity.
Every user loves one theme, often likes a second, and dislikes one or two others;
one of the disliked themes is the *decoy* of the user's main theme (a fixed pairing
of themes). The true affinity is ``a(u, i) = <user_pref[u], item_mix[i]>``; the user
likes the item when ``a >= like_threshold`` and dislikes it when ``a <= 0``.

Observed training positives of a user come in three kinds:

* clean: liked items, drawn by popularity;
* hard (``hard_ratio``): liked but unpopular items, preferring the user's secondary
  theme: true positives a popularity-driven recommender scores low;
* noisy (``noise_ratio``): disliked items, mostly popular items of the user's decoy
  theme (so users of one theme share the same wrong clicks and collaborative
  filtering learns them), the rest any disliked item.

Validation and test hold liked items only. For any (user, item) pair the truth tells
its kind: a training positive's kind, else ``FALSE_NEG`` (liked but not observed: the
sampler should avoid it), ``HARD_NEG`` (disliked, and of the decoy theme or popular:
a recommender scores it high) or ``EASY_NEG``. Texts are generated from the same
latent preferences (themes and their words, with ``text_noise`` of the words swapped
for random ones), so a real text encoder and a real language model get a real but
imperfect signal. Everything is determined by ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .dataset import Dataset, Interactions

THEMES: List[Tuple[str, List[str]]] = [
    ("space adventure", ["space", "galaxy", "starship", "alien", "planet", "astronaut", "orbit", "rocket",
                         "nebula", "robot", "asteroid", "cosmic", "laser", "moon"]),
    ("romance", ["love", "romance", "wedding", "kiss", "heart", "couple", "date", "passion", "valentine",
                 "flirt", "bride", "longing", "sweetheart", "affection"]),
    ("horror", ["ghost", "haunted", "blood", "scream", "zombie", "nightmare", "curse", "demon", "vampire",
                "graveyard", "terror", "creepy", "monster", "possessed"]),
    ("comedy", ["funny", "laugh", "joke", "prank", "silly", "hilarious", "parody", "goofy", "sitcom", "clown",
                "witty", "slapstick", "gag", "banter"]),
    ("war", ["soldier", "battle", "army", "trench", "general", "tank", "platoon", "invasion", "medal",
             "frontline", "sergeant", "siege", "bomber", "wartime"]),
    ("western", ["cowboy", "ranch", "sheriff", "saloon", "outlaw", "desert", "horse", "frontier", "gunslinger",
                 "cattle", "canyon", "bandit", "rodeo", "stagecoach"]),
    ("crime", ["detective", "heist", "gangster", "murder", "police", "mafia", "robbery", "investigation",
               "smuggler", "swindle", "prison", "cop", "evidence", "suspect"]),
    ("sports", ["football", "coach", "team", "championship", "stadium", "baseball", "boxing", "athlete",
                "tournament", "goal", "training", "match", "underdog", "victory"]),
    ("music", ["band", "concert", "singer", "guitar", "musical", "song", "dance", "rock", "jazz", "melody",
               "stage", "choir", "album", "rhythm"]),
    ("cooking", ["chef", "kitchen", "recipe", "restaurant", "bakery", "cuisine", "dinner", "wine", "spice",
                 "dessert", "feast", "menu", "flavor", "cafe"]),
    ("history", ["ancient", "empire", "king", "archive", "castle", "revolution", "pharaoh", "medieval",
                 "biography", "dynasty", "museum", "chronicle", "queen", "historian"]),
    ("animation for children", ["cartoon", "puppy", "kids", "toy", "fairy", "princess", "talking animals",
                                "magic", "dragon", "unicorn", "playground", "bedtime", "teddy bear", "kitten"]),
]
_ADJ = ["Last", "Silent", "Golden", "Broken", "Hidden", "Endless", "Wild", "Crimson", "Lonely", "Secret",
        "Final", "Burning", "Little", "Midnight", "Frozen", "Lost"]
_OCCUPATIONS = ["student", "engineer", "teacher", "nurse", "writer", "programmer", "artist", "librarian",
                "lawyer", "retired person", "salesman", "scientist", "doctor", "homemaker"]

#: pair kinds (``WorldTruth.kind``)
POS_CLEAN, POS_HARD, POS_NOISY, FALSE_NEG, HARD_NEG, EASY_NEG = range(6)
KIND_NAMES = ("clean_positive", "hard_positive", "noisy_positive", "false_negative", "hard_negative",
              "easy_negative")


@dataclass
class WorldTruth:
    """Ground truth of a synthetic world; all lookups take (users, items) arrays/tensors of equal length."""

    user_pref: np.ndarray            # [n_users, n_topics] float32: +1 loved, +0.6 liked, -1 disliked, 0 neutral
    item_mix: np.ndarray             # [n_items, n_topics] float32, rows sum to 1
    item_topic: np.ndarray           # [n_items] main theme
    item_popularity: np.ndarray      # [n_items] float64, sums to 1
    user_decoy: np.ndarray           # [n_users] the decoy theme whose popular items the user clicks by mistake
    topic_names: List[str]
    like_threshold: float
    train_kind: torch.Tensor         # per train row: POS_CLEAN, POS_HARD or POS_NOISY
    _train_keys: np.ndarray = field(repr=False, default=None)   # sorted user*n_items+item of train
    _train_kind_sorted: np.ndarray = field(repr=False, default=None)
    _popular_cut: float = 0.0

    @property
    def n_items(self) -> int:
        return self.item_mix.shape[0]

    @staticmethod
    def _np(x) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy().astype(np.int64)
        return np.asarray(x, dtype=np.int64)

    def affinity(self, users, items) -> torch.Tensor:
        """True affinity ``<user_pref[u], item_mix[i]>`` in [-1, 1] (float32)."""
        u, i = self._np(users), self._np(items)
        return torch.from_numpy(np.einsum("nk,nk->n", self.user_pref[u], self.item_mix[i]).astype(np.float32))

    def relevant(self, users, items) -> torch.Tensor:
        """True where the user truly likes the item (a hard sample: keep the edge / add it)."""
        return self.affinity(users, items) >= self.like_threshold

    def kind(self, users, items) -> torch.Tensor:
        """Pair kind codes (see ``KIND_NAMES``)."""
        u, i = self._np(users), self._np(items)
        keys = u * np.int64(self.n_items) + i
        out = np.full(len(keys), EASY_NEG, dtype=np.int64)
        a = self.affinity(u, i).numpy()
        out[a >= self.like_threshold] = FALSE_NEG
        hard_neg = (a <= 0) & ((self.item_topic[i] == self.user_decoy[u]) |
                               (self.item_popularity[i] >= self._popular_cut))
        out[hard_neg] = HARD_NEG
        if len(self._train_keys):
            pos = np.searchsorted(self._train_keys, keys)
            pos[pos == len(self._train_keys)] = len(self._train_keys) - 1
            hit = self._train_keys[pos] == keys
            out[hit] = self._train_kind_sorted[pos[hit]]
        return torch.from_numpy(out)

    def kind_names(self, users, items) -> List[str]:
        return [KIND_NAMES[k] for k in self.kind(users, items).tolist()]

    def score_verdicts(self, users, items, is_hard) -> Dict[str, float]:
        """How well verdicts separate hard (truly liked) from noisy (not liked) pairs.

        ``is_hard``: bool per pair, the verdict (True = hard: keep/add; False = noisy: drop).
        Returns accuracy, and precision/recall/F1 of the *noisy* verdicts, with counts.
        """
        truth_hard = self.relevant(users, items).numpy()
        pred_hard = np.asarray(is_hard.cpu() if isinstance(is_hard, torch.Tensor) else is_hard, dtype=bool)
        if pred_hard.shape != truth_hard.shape:
            raise ValueError(f"is_hard has shape {pred_hard.shape}, expected {truth_hard.shape}")
        tp = int((~pred_hard & ~truth_hard).sum())
        fp = int((~pred_hard & truth_hard).sum())
        fn = int((pred_hard & ~truth_hard).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        return {"accuracy": float((pred_hard == truth_hard).mean()) if len(truth_hard) else 0.0,
                "noisy_precision": prec, "noisy_recall": rec,
                "noisy_f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                "n": int(len(truth_hard)), "n_truly_noisy": int((~truth_hard).sum()),
                "n_predicted_noisy": int((~pred_hard).sum())}


def _sample(rng, pool: np.ndarray, weights: Optional[np.ndarray], k: int) -> np.ndarray:
    """``k`` distinct elements of ``pool``, with probability proportional to ``weights``
    (successive sampling without replacement, by the Gumbel-top-k trick)."""
    k = min(k, len(pool))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if weights is None:
        return pool[rng.permutation(len(pool))[:k]]
    g = np.log(weights) + rng.gumbel(size=len(pool))
    return pool[np.argpartition(-g, k - 1)[:k]] if k < len(pool) else pool[np.argsort(-g)]


def _words(rng, topic: int, k: int, n_topics: int, text_noise: float) -> List[str]:
    vocab = THEMES[topic][1]
    picked = list(rng.choice(vocab, size=min(k, len(vocab)), replace=False))
    for j in range(len(picked)):
        if rng.random() < text_noise:
            other = int(rng.integers(0, n_topics))
            picked[j] = THEMES[other][1][int(rng.integers(0, len(THEMES[other][1])))]
    return picked


def _and(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def make_world(n_users: int = 300, n_items: int = 600, *, seed: int = 0, n_topics: int = 8,
               interactions_per_user: int = 20, hard_ratio: float = 0.2, noise_ratio: float = 0.2,
               valid_ratio: float = 0.1, test_ratio: float = 0.2, like_threshold: float = 0.45,
               text_noise: float = 0.1, mention_dislikes: bool = True,
               decoy_share: float = 0.7) -> Tuple[Dataset, WorldTruth]:
    """A synthetic data set and its ground truth (see the module docstring).

    ``interactions_per_user`` is the mean number of training positives per user (at
    least 4 each); ``hard_ratio``/``noise_ratio`` are the shares of hard and noisy ones;
    valid/test get ``valid_ratio``/``test_ratio`` times that many liked items.
    """
    if not 2 <= n_topics <= len(THEMES):
        raise ValueError(f"n_topics must be in [2, {len(THEMES)}], got {n_topics}")
    if n_users < 1 or n_items < 4 * n_topics:
        raise ValueError(f"need n_users >= 1 and n_items >= 4 * n_topics, got {n_users}, {n_items}")
    if not (0 <= hard_ratio and 0 <= noise_ratio and hard_ratio + noise_ratio < 1):
        raise ValueError(f"hard_ratio and noise_ratio must be >= 0 with sum < 1, got {hard_ratio}, {noise_ratio}")
    if interactions_per_user < 1 or valid_ratio < 0 or test_ratio < 0:
        raise ValueError("interactions_per_user must be >= 1 and valid/test ratios >= 0")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x776F726C64]))
    K = n_topics

    # items
    item_topic = rng.integers(0, K, size=n_items)
    item_mix = np.zeros((n_items, K), dtype=np.float32)
    item_mix[np.arange(n_items), item_topic] = 1.0
    has2 = rng.random(n_items) < 0.3
    second = (item_topic + rng.integers(1, K, size=n_items)) % K
    item_mix[has2, item_topic[has2]] = 0.75
    item_mix[has2, second[has2]] = 0.25
    ranks = rng.permutation(n_items)
    pop = 1.0 / (ranks + 10.0) ** 0.9
    pop /= pop.sum()
    popular_cut = float(np.quantile(pop, 0.75))
    median_pop = float(np.median(pop))

    # users
    decoy_of = (np.arange(K) + 1 + rng.permutation(K - 1)[0]) % K if K > 1 else np.zeros(1, int)
    decoy_of[decoy_of == np.arange(K)] = (decoy_of[decoy_of == np.arange(K)] + 1) % K
    user_pref = np.zeros((n_users, K), dtype=np.float32)
    main = rng.integers(0, K, size=n_users)
    user_decoy = decoy_of[main]
    second_like = np.full(n_users, -1)
    disliked: List[List[int]] = []
    for u in range(n_users):
        user_pref[u, main[u]] = 1.0
        others = [t for t in range(K) if t not in (main[u], user_decoy[u])]
        if rng.random() < 0.6 and others:
            s = int(rng.choice(others))
            second_like[u] = s
            user_pref[u, s] = 0.6
            others.remove(s)
        d = [int(user_decoy[u])]
        if others and rng.random() < 0.5:
            d.append(int(rng.choice(others)))
        for t in d:
            user_pref[u, t] = -1.0
        disliked.append(d)

    # interactions
    rows_u: List[np.ndarray] = []
    rows_i: List[np.ndarray] = []
    rows_kind: List[np.ndarray] = []
    split_rows = {"valid": ([], []), "test": ([], [])}
    shortfall = 0
    for u in range(n_users):
        a = item_mix @ user_pref[u]
        liked_m = a >= like_threshold
        bad_m = a <= 0
        avail = np.ones(n_items, dtype=bool)
        n_u = max(4, int(round(rng.lognormal(np.log(interactions_per_user), 0.4))))
        n_noisy = int(round(noise_ratio * n_u))
        n_hard = int(round(hard_ratio * n_u))
        n_clean = n_u - n_noisy - n_hard
        n_val, n_test = int(round(valid_ratio * n_u)), int(round(test_ratio * n_u))
        # hard: unpopular liked items, secondary theme preferred
        tail = np.flatnonzero(liked_m & (pop <= median_pop))
        w_hard = 1.0 / pop[tail] * np.where(item_topic[tail] == second_like[u], 3.0, 1.0)
        hard = _sample(rng, tail, w_hard, n_hard)
        avail[hard] = False
        picks = []
        for k in (n_clean, n_val, n_test):  # clean positives, then valid, then test: liked, by popularity
            rest = np.flatnonzero(liked_m & avail)
            got = _sample(rng, rest, pop[rest], k)
            avail[got] = False
            picks.append(got)
        clean, val, tst = picks
        n_dec = int(round(decoy_share * n_noisy))
        dec_pool = np.flatnonzero(bad_m & (item_topic == user_decoy[u]))
        noisy_dec = _sample(rng, dec_pool, pop[dec_pool], n_dec)
        avail[noisy_dec] = False
        other_bad = np.flatnonzero(bad_m & avail)
        noisy = np.concatenate([noisy_dec, _sample(rng, other_bad, None, n_noisy - len(noisy_dec))])
        shortfall += (n_hard - len(hard)) + (n_clean - len(clean)) + (n_noisy - len(noisy)) + \
                     (n_val - len(val)) + (n_test - len(tst))
        items_u = np.concatenate([clean, hard, noisy]).astype(np.int64)
        kinds = np.concatenate([np.full(len(clean), POS_CLEAN), np.full(len(hard), POS_HARD),
                                np.full(len(noisy), POS_NOISY)])
        perm = rng.permutation(len(items_u))
        rows_u.append(np.full(len(items_u), u, dtype=np.int64))
        rows_i.append(items_u[perm])
        rows_kind.append(kinds[perm])
        split_rows["valid"][0].append(np.full(len(val), u, dtype=np.int64))
        split_rows["valid"][1].append(val.astype(np.int64))
        split_rows["test"][0].append(np.full(len(tst), u, dtype=np.int64))
        split_rows["test"][1].append(tst.astype(np.int64))

    tu, ti, tk = np.concatenate(rows_u), np.concatenate(rows_i), np.concatenate(rows_kind)

    def stars(kinds: np.ndarray) -> np.ndarray:
        r = np.empty(len(kinds), dtype=np.float32)
        table = {POS_CLEAN: ([3, 4, 5], [0.1, 0.4, 0.5]), POS_HARD: ([3, 4, 5], [0.3, 0.6, 0.1]),
                 POS_NOISY: ([1, 2, 3], [0.35, 0.45, 0.2])}
        for k, (vals, p) in table.items():
            m = kinds == k
            r[m] = rng.choice(vals, size=int(m.sum()), p=p)
        return r

    t0 = 880_000_000
    train = Interactions(tu, ti, stars(tk), t0 + rng.integers(0, 10_000_000, size=len(tu)))

    def held(name):
        us, its = np.concatenate(split_rows[name][0]), np.concatenate(split_rows[name][1])
        return Interactions(us, its, stars(np.zeros(len(us), dtype=np.int64)),
                            t0 + 10_000_000 + rng.integers(0, 1_000_000, size=len(us)))

    valid, test = held("valid"), held("test")

    # texts
    names = [THEMES[k][0] for k in range(K)]
    item_titles, item_bodies, item_texts = [], [], []
    for i in range(n_items):
        t = int(item_topic[i])
        noun = _words(rng, t, 1, K, 0.0)[0].title()
        title = f"The {_ADJ[int(rng.integers(0, len(_ADJ)))]} {noun} ({1960 + int(rng.integers(0, 60))})"
        body = f"A {names[t]} story about {_and(_words(rng, t, 3, K, text_noise))}."
        if has2[i]:
            s = int(second[i])
            body += f" With touches of {names[s]}: {_and(_words(rng, s, 2, K, text_noise))}."
        item_titles.append(title)
        item_bodies.append(body)
        item_texts.append(f"{title}. Genres: {names[t]}{', ' + names[int(second[i])] if has2[i] else ''}. {body}")
    user_texts, user_profiles, user_demo = [], [], []
    for u in range(n_users):
        demo = f"A {int(rng.integers(18, 70))}-year-old {_OCCUPATIONS[int(rng.integers(0, len(_OCCUPATIONS)))]}."
        prof = f"Loves {names[main[u]]} films full of {_and(_words(rng, int(main[u]), 3, K, text_noise))}."
        if second_like[u] >= 0:
            s = int(second_like[u])
            prof += f" Also enjoys {names[s]}, especially {_and(_words(rng, s, 2, K, text_noise))}."
        if mention_dislikes:
            prof += " Dislikes " + _and([names[d] for d in disliked[u]]) + "."
        user_profiles.append(prof)
        user_demo.append(demo)
        user_texts.append(f"{demo} {prof}")

    keys = tu * np.int64(n_items) + ti
    order = np.argsort(keys, kind="stable")
    truth = WorldTruth(user_pref=user_pref, item_mix=item_mix, item_topic=item_topic.astype(np.int64),
                       item_popularity=pop, user_decoy=user_decoy.astype(np.int64), topic_names=names,
                       like_threshold=like_threshold, train_kind=torch.from_numpy(tk.astype(np.int64)),
                       _train_keys=keys[order], _train_kind_sorted=tk[order].astype(np.int64),
                       _popular_cut=popular_cut)
    counts = {KIND_NAMES[k]: int((tk == k).sum()) for k in (POS_CLEAN, POS_HARD, POS_NOISY)}
    ds = Dataset(
        name="synthetic", n_users=n_users, n_items=n_items, train=train, valid=valid, test=test,
        user_text=user_texts, item_text=item_texts,
        user_raw_ids=list(range(n_users)), item_raw_ids=list(range(n_items)),
        train_noise=torch.from_numpy(tk == POS_NOISY),
        user_fields={"profile": user_profiles, "demographics": user_demo},
        item_fields={"title": item_titles, "genres": [names[t] for t in item_topic], "profile": item_bodies},
        meta={"source": "synthetic", "seed": seed, "noise": "synthetic",
              "ratings": "1-5 stars (synthetic)",
              "world": {"n_topics": K, "interactions_per_user": interactions_per_user, "hard_ratio": hard_ratio,
                        "noise_ratio": noise_ratio, "valid_ratio": valid_ratio, "test_ratio": test_ratio,
                        "like_threshold": like_threshold, "text_noise": text_noise,
                        "decoy_share": decoy_share, "train_kinds": counts, "shortfall": int(shortfall)},
              "cleanup": {}},
        truth=truth,
    )
    return ds, truth
