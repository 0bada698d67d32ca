"""RecBole's LightGCN and Trainer, with llmhni's sampler and fused propagation.

Everything but two lines is RecBole's own pipeline: ``data_preparation`` comes from
``llmhni_ext.integrations.recbole`` (RecBole's, with llmhni's sampler in the training
dataloader) and the model class from ``lightgcn_class()`` (RecBole's LightGCN whose
``forward`` is the fused propagation). RecBole 1.2.1 needs numpy<2, scipy<1.13, pandas<3,
setuptools<81 and, for its own checkpoints, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1:

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 python examples/recbole_lightgcn.py --data-path DIR --dataset ml-100k --seed 0
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 python examples/recbole_lightgcn.py --data-path DIR --dataset ml-100k --stock

``--stock`` runs RecBole's own pipeline (its sampler and LightGCN) on the same settings, the
peer for timings; ``--worker 2`` samples in two DataLoader workers (RecBole's ``worker``).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def run(config, mode=None, stock: bool = False):
    """Trains and tests RecBole's LightGCN with llmhni inside (``stock``: RecBole alone);
    returns RecBole's results."""
    from recbole.data import create_dataset
    from recbole.data import data_preparation as recbole_data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    from llmhni_ext.integrations.recbole import data_preparation, lightgcn_class
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    if stock:
        train_data, valid_data, test_data = recbole_data_preparation(config, dataset)
        model = LightGCN(config, train_data.dataset).to(config["device"])
    else:
        train_data, valid_data, test_data = data_preparation(config, dataset, mode=mode)
        model = lightgcn_class()(config, train_data.dataset).to(config["device"])
        if mode in ("dns", "llmhni"):
            train_data.sampler_of_llmhni.attach_model(model)
    trainer = Trainer(config, model)
    t0 = time.perf_counter()
    best_valid, best_result = trainer.fit(train_data, valid_data, show_progress=config["show_progress"])
    fit_s = time.perf_counter() - t0
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    return {"best_valid_score": best_valid, "valid_result": dict(best_result), "test_result": dict(test_result),
            "fit_seconds": fit_s}


def main(argv=None) -> int:
    from recbole.config import Config
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-path", required=True, help="folder holding <dataset>/<dataset>.inter")
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--mode", choices=["uniform", "dns"], default="uniform")
    p.add_argument("--seed", type=int, default=2020, help="RecBole's seed (its default 2020)")
    p.add_argument("--worker", type=int, default=0, help="DataLoader workers (RecBole's worker)")
    p.add_argument("--stock", action="store_true", help="RecBole's own sampler and LightGCN (the peer)")
    args = p.parse_args(argv)
    config = Config(model="LightGCN", dataset=args.dataset,
                    config_dict={"data_path": args.data_path, "epochs": args.epochs, "use_gpu": False,
                                 "seed": args.seed, "worker": args.worker,
                                 "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user",
                                               "mode": "full"},
                                 "metrics": ["Recall", "NDCG"], "topk": [20], "valid_metric": "Recall@20"})
    res = run(config, mode=args.mode, stock=args.stock)
    print(f"test Recall@20 {res['test_result']['recall@20']:.4f}  NDCG@20 {res['test_result']['ndcg@20']:.4f}  "
          f"({res['fit_seconds'] / args.epochs:.2f} s per epoch of training and validation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
