"""Golden training trajectories: every method's first steps on the tiny data set, recorded
bit for bit, so a refactor of the loop, the methods or their settings can prove it trains
exactly as before (``test_train_golden.py``).

Regenerate only when a change is MEANT to alter training (and say so in the commit)::

    cd python_tests && python _golden.py > golden/trajectories.json
"""
from __future__ import annotations

import hashlib
import json
import sys

import torch

from llmhni_ext.config import RunConfig
from llmhni_ext.methods import REGISTRY
from llmhni_ext.train import Trainer

from test_train_support import tiny_dataset, tiny_signals

#: (method, backbone) pairs: every method on LightGCN, the plain and LLMHNI ones on MF and NGCF too
CASES = [(m, "lightgcn") for m in REGISTRY] + [(m, b) for m in ("bpr", "dns", "llmhni") for b in ("mf", "ngcf")]


def trajectory(method: str, backbone: str, steps: int = 6):
    """The logged parts of the first ``steps`` steps (float.hex) and a hash of the weights after them."""
    ds = tiny_dataset(noise=20)
    cfg = RunConfig()
    cfg.method.name, cfg.model.backbone, cfg.model.dim, cfg.model.layers = method, backbone, 16, 2
    cfg.train.epochs, cfg.train.batch_size, cfg.train.progress, cfg.train.lr = 2, 64, False, 0.01
    cfg.method.aux_every = 2
    cfg.method.aux_max_nodes = 8
    cfg.method.bod_outer_batch = 32
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tr = Trainer(cfg.validate(), ds, signals=tiny_signals(ds))
        log = []
        for s in range(steps):
            epoch, index = divmod(s, tr.steps_per_epoch)
            out = tr.train_step(epoch, index)
            if index == tr.steps_per_epoch - 1:
                tr.method.on_epoch_end(epoch)
            log.append({k: float(v).hex() for k, v in sorted(out.items())})
        h = hashlib.sha256()
        for name, p in sorted(tr.model.state_dict().items()):
            h.update(name.encode())
            h.update(p.detach().contiguous().cpu().numpy().tobytes())
    finally:
        torch.set_num_threads(threads)
    return {"steps": log, "weights_sha256": h.hexdigest()}


def main() -> None:
    out = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__.split("+")[0],
           "cases": {f"{m}/{b}": trajectory(m, b) for m, b in CASES}}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
