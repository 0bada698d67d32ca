"""The language-model stage's two models on the CPU, candidate backends side by side in one run.

    PYTHONPATH=. python bench/lm_backends.py [--texts 600] [--users 32] [--threads 2]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 PYTHONPATH=. python bench/lm_backends.py

(the second line emulates a CPU without AVX-512 for torch's own kernels, oneDNN and MKL; fbgemm,
which serves torch's int8 ``x86`` engine, picks its kernels from the CPU and is not capped, so
its int8 rows are optimistic there).

**Encoder** (the bundled all-MiniLM-L6-v2 on a random sample of ML-100K's texts, or
``--dataset``'s): texts/s, and the cosine of each embedding to the float32 reference's (min and
mean); candidates: float32 (the reference), bfloat16 (where the CPU has bf16 units), torch int8
dynamic quantization, a shorter ``max_seq_length`` (128), both, and ONNX Runtime in float32 and
int8 (per-channel) when ``onnxruntime`` and ``onnx`` are installed (its kernels pick their
instruction set from the CPU: the emulation does not cap them). OpenVINO, CTranslate2 and llama.cpp
are not measured here yet.

**Judge** (the bundled Gemma-3-270M by likelihood on ``--users`` users' candidates, 2 low-scored
positives and 1 non-interaction each): seconds per user, the Pearson correlation of every
log-likelihood with the float32 reference's, and the share of pairs whose verdict (hard: High in
both views; else noisy) is the reference's, with the reference's thresholds recomputed per
candidate as the stage does; candidates: float32, bfloat16 (bf16 units only), int8 on the output
head only (per-channel weights), int8 on every linear layer.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _has_bf16() -> bool:
    """bf16 units, unless the run emulates a CPU without AVX-512 (ATEN_CPU_CAPABILITY=avx2)."""
    if os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "avx", "default"):
        return False
    try:
        flags = open("/proc/cpuinfo").read(1 << 16)
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _int8(model, only=None):
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    import warnings
    m = copy.deepcopy(model)
    spec = {torch.nn.Linear: per_channel_dynamic_qconfig} if only is None else {only: per_channel_dynamic_qconfig}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(m, spec, dtype=torch.qint8)


# ------------------------------------------------------------------------------ encoder

def bench_encoder(texts, rows):
    from llmhni_ext.signals.encoders import MiniLMEncoder

    def run(label, make):
        enc = make()
        t = time.perf_counter()
        x = enc.encode(texts)
        return label, x, time.perf_counter() - t

    ref_label, ref, ref_s = run("float32, max_seq 256 (reference)", lambda: MiniLMEncoder(dtype=torch.float32))
    rows.append(("encoder", ref_label, len(texts) / ref_s, 1.0, "1.0000 / 1.0000"))

    def short(enc, n=128):
        enc.model.max_seq_length = n
        return enc

    def quant(enc):
        enc.model = _int8(enc.model)
        return enc

    cands = [("int8 dynamic (torch)", lambda: quant(MiniLMEncoder(dtype=torch.float32))),
             ("float32, max_seq 128", lambda: short(MiniLMEncoder(dtype=torch.float32))),
             ("int8 dynamic + max_seq 128", lambda: short(quant(MiniLMEncoder(dtype=torch.float32))))]
    if _has_bf16():
        cands.insert(0, ("bfloat16 (bf16 units; differs across CPUs)", lambda: MiniLMEncoder(dtype=torch.bfloat16)))
    import importlib.util
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        cands += [("ONNX Runtime float32", lambda: _OnnxEncoder(int8=False)),
                  ("ONNX Runtime int8 dynamic (per-channel)", lambda: _OnnxEncoder(int8=True))]
    else:
        rows.append(("encoder", "ONNX Runtime: not installed (pip install onnxruntime onnx)", None, None, ""))
    for label, make in cands:
        label, x, s = run(label, make)
        cos = (x * ref).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(ref, axis=1))
        rows.append(("encoder", label, len(texts) / s, ref_s / s, f"{cos.min():.4f} / {cos.mean():.4f}"))


class _OnnxEncoder:
    """MiniLM's transformer exported to ONNX and run by ONNX Runtime (optionally int8 dynamic,
    per-channel weights), with sentence-transformers' mean pooling; batches sorted by length."""

    def __init__(self, int8: bool, batch: int = 64) -> None:
        import tempfile
        import warnings

        import onnxruntime as ort
        from llmhni_ext.signals.encoders import MiniLMEncoder
        st = MiniLMEncoder(dtype=torch.float32).model
        self.tok, self.max_len, self.batch = st[0].tokenizer, st.max_seq_length, batch
        bert = st[0].auto_model.eval()

        class Body(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, ids, mask):
                return self.m(input_ids=ids, attention_mask=mask).last_hidden_state

        d = tempfile.mkdtemp(prefix="llmhni-onnx-")
        path = os.path.join(d, "minilm.onnx")
        ex = self.tok(["a b", "c"], padding=True, return_tensors="pt")
        axes = {"ids": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "h": {0: "b", 1: "t"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Body(bert), (ex["input_ids"], ex["attention_mask"]), path, input_names=["ids", "mask"],
                              output_names=["h"], dynamic_axes=axes, opset_version=17, dynamo=False)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic
            q = os.path.join(d, "minilm.int8.onnx")
            quantize_dynamic(path, q, weight_type=QuantType.QInt8, per_channel=True)
            path = q
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def encode(self, texts):
        order = np.argsort([-len(t) for t in texts])
        out = None
        for b in range(0, len(texts), self.batch):
            ii = order[b:b + self.batch]
            e = self.tok([texts[i] for i in ii], padding=True, truncation=True, max_length=self.max_len, return_tensors="np")
            h = self.session.run(None, {"ids": e["input_ids"].astype(np.int64), "mask": e["attention_mask"].astype(np.int64)})[0]
            m = e["attention_mask"][..., None].astype(np.float32)
            pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out = np.zeros((len(texts), pooled.shape[1]), np.float32) if out is None else out
            out[ii] = pooled
        return out


# ------------------------------------------------------------------------------ judge

def bench_judge(ds, n_users, cache_dir, rows):
    from llmhni_ext.signals.candidates import propose_candidates
    from llmhni_ext.signals.judges.base import JudgeInputs, UserTask
    from llmhni_ext.signals.judges.local_lm import LocalLMJudge, load_causal_lm
    from llmhni_ext.signals.judgment_cache import JudgmentCache
    from llmhni_ext.signals.logical import judge_texts

    model, tok, mid = load_causal_lm(None, cache_dir=cache_dir, dtype=torch.float32, log=lambda m: None)
    g = torch.Generator().manual_seed(0)
    ue, ie = torch.randn(ds.n_users, 32, generator=g), torch.randn(ds.n_items, 32, generator=g)
    cands = propose_candidates(ue, ie, ds.user_positives("train"), n_pos=2, n_neg=1, n_context=3)
    tasks = [UserTask(c.user, c.positives + c.negatives, c.context) for c in cands[:n_users]]
    prof, itext, iname = judge_texts(ds)
    inputs = JudgeInputs("bench", "movie", prof, itext, iname)

    def run(m):
        j = LocalLMJudge(m, tok, mid)
        cache = JudgmentCache(None)
        t = time.perf_counter()
        j.run(tasks, inputs, cache)
        secs = time.perf_counter() - t
        scores = {(r["user"], r["item"], r["perspective"], r["role"]): r["score"] for r in cache.records()}
        labels, _ = j.labels(tasks, inputs, cache)
        verdict = {(t.user, i): labels.get((t.user, i, "user")) == labels.get((t.user, i, "item")) == "High"
                   for t in tasks for i in t.items}
        return secs, scores, verdict

    ref_s, ref_sc, ref_v = run(model)
    rows.append(("judge", "float32 (reference)", ref_s / len(tasks), 1.0, "1.00000 / 100.0%"))
    cands = [("int8 output head (per-channel)", lambda: _int8(model, "lm_head")),
             ("int8 every linear layer (per-channel)", lambda: _int8(model))]
    if _has_bf16():
        cands.insert(0, ("bfloat16 (bf16 units; differs across CPUs)", lambda: copy.deepcopy(model).to(torch.bfloat16)))
    for label, make in cands:
        s, sc, v = run(make())
        keys = sorted(set(ref_sc) & set(sc))
        a, b = np.array([ref_sc[k] for k in keys]), np.array([sc[k] for k in keys])
        agree = np.mean([v[k] == ref_v[k] for k in ref_v])
        rows.append(("judge", label, s / len(tasks), ref_s / s, f"{np.corrcoef(a, b)[0, 1]:.5f} / {100 * agree:.1f}%"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--data-root", default=os.environ.get("LLMHNI_DATA_ROOT"))
    ap.add_argument("--texts", type=int, default=600, help="texts encoded per candidate (a random sample)")
    ap.add_argument("--users", type=int, default=32, help="users judged per candidate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", default=None, help="where the judge model is converted (default: llmhni's cache)")
    ap.add_argument("--skip", choices=["encoder", "judge"], action="append", default=[])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from llmhni_ext.data import load_dataset
    ds = load_dataset(a.dataset, a.data_root)
    print(f"# {os.uname().machine}, {a.threads} threads, torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 units {_has_bf16()}, "
          f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '')}", flush=True)
    rows = []
    if "encoder" not in a.skip:
        texts = list(ds.user_text) + list(ds.item_text)
        idx = np.random.default_rng(0).choice(len(texts), min(a.texts, len(texts)), replace=False)
        bench_encoder([texts[i] for i in idx], rows)
    if "judge" not in a.skip:
        bench_judge(ds, a.users, a.cache_dir, rows)
    print("| model | candidate | texts/s or s/user | speed-up | cosine min / mean, or LL correlation / same verdicts |")
    print("|---|---|---|---|---|")
    for model, label, speed, ratio, quality in rows:
        sp = "" if speed is None else (f"{speed:.1f}" if model == "encoder" else f"{speed:.3f}")
        print(f"| {model} | {label} | {sp} | {'' if ratio is None else f'{ratio:.2f}x'} | {quality} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
