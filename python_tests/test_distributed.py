"""Training as several processes on torch.distributed (gloo, this machine): data parallel
steps equal one process with the same global batch up to summation order, sharded evaluation
equals one process exactly, every rank resumes from the same checkpoint, and a rank that dies
stops the others with an error instead of a hang."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

QUICK = ["--dataset", "synthetic", "--epochs", "2", "--no-progress", "--threads", "1", "--dim", "16",
         "--layers", "2", "--batch-size", "512"]


def _train(tmp, out, *extra):
    cmd = [sys.executable, "-m", "llmhni_ext.cli", "train", *QUICK, "--cache-dir", str(tmp / "cache"),
           "--out", str(tmp / out), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((tmp / out / "results.json").read_text()), r.stdout


def _params(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("method,backbone", [("bpr", "lightgcn"), ("dns", "lightgcn"), ("tce", "lightgcn"),
                                              ("sgl", "lightgcn"), ("llmhni", "lightgcn"), ("bpr", "ngcf")])
def test_two_processes_equal_one_up_to_summation_order(tmp_path, method, backbone):
    """Shards for the per-row terms, the whole batch (weighted 1/world) for the coupled ones
    (InfoNCE over the batch's nodes, T-CE's top-k): every method equals one process; LightGCN's
    and NGCF's propagations run partitioned."""
    # the judge is not what this tests: the fast embedding judge keeps the run independent of the
    # machine's speed (a language-model judge on a CPU judges as many users as its time budget allows)
    fast = ["--set", "signals.judge=embedding", "--set", "signals.encoder=hashing"] if method == "llmhni" else []
    one, _ = _train(tmp_path, "one", "--method", method, "--backbone", backbone, *fast)
    two, out = _train(tmp_path, "two", "--method", method, "--backbone", backbone, "--nproc", "2", *fast)
    assert two["distributed"]["block_nnz"]                                  # the graph was partitioned
    assert "(2 processes)" in out and out.count("best epoch") == 1          # rank 0 alone reports
    assert one["test"] == pytest.approx(two["test"], abs=1e-6)
    a, b = _params(tmp_path / "one" / "best.pt"), _params(tmp_path / "two" / "best.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)            # Adam amplifies the last bits
    if method == "bpr" and backbone == "lightgcn":
        again, _ = _train(tmp_path, "two-again", "--method", method, "--nproc", "2")
        assert again["test"] == two["test"]                                 # run to run: identical


def test_every_rank_resumes_from_the_same_checkpoint(tmp_path):
    full, _ = _train(tmp_path, "full", "--method", "bpr", "--nproc", "2")
    _train(tmp_path, "part", "--method", "bpr", "--nproc", "2", "--epochs", "1")
    resumed, out = _train(tmp_path, "part", "--method", "bpr", "--nproc", "2", "--resume")
    assert "resumed from" in out
    assert resumed["test"] == full["test"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ranking_worker(rank, world, port, q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    from llmhni_ext.distributed import from_env
    from llmhni_ext.evaluate import full_ranking, interactions_csr
    dist = from_env(torch.device("cpu"), timeout_s=60)
    g = torch.Generator().manual_seed(0)
    u, i = torch.randn(57, 8, generator=g), torch.randn(91, 8, generator=g)
    truth = interactions_csr(torch.randint(0, 57, (300,), generator=g), torch.randint(0, 91, (300,), generator=g), 57, 91)
    ex = interactions_csr(torch.randint(0, 57, (400,), generator=g), torch.randint(0, 91, (400,), generator=g), 57, 91)
    got = full_ranking(u, i, truth, ex, user_batch=7, dist=dist)
    want = full_ranking(u, i, truth, ex)
    q.put((rank, got == want, got))
    torch.distributed.destroy_process_group()


def _spawn(target, world: int, answers: int):
    """Run ``target(rank, world, port, queue)`` as ``world`` processes; the first ``answers`` puts."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=target, args=(r, world, port, q)) for r in range(world)]
    for p in procs:
        p.start()
    res = [q.get(timeout=120) for _ in range(answers)]
    for p in procs:
        p.join(30)
    return res


def test_sharded_evaluation_equals_one_process_exactly():
    res = _spawn(_ranking_worker, 3, 3)
    assert all(ok for _, ok, _ in res), res


def _dying_worker(rank, world, port, q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    from llmhni_ext.distributed import from_env
    dist = from_env(torch.device("cpu"), timeout_s=20)
    dist.all_reduce_(torch.ones(1))
    if rank == 1:
        os._exit(3)                                    # dies without a word
    t0 = time.monotonic()
    try:
        for _ in range(100):
            dist.all_reduce_(torch.ones(1))
        q.put(("no error", time.monotonic() - t0))
    except Exception as e:  # noqa: BLE001
        q.put((type(e).__name__ + ": " + str(e)[:200], time.monotonic() - t0))


def test_a_rank_that_dies_stops_the_others_within_the_timeout():
    (msg, secs), = _spawn(_dying_worker, 2, 1)
    assert msg != "no error" and secs < 60, (msg, secs)


def _views_worker(rank, world, port, q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    from llmhni_ext.contrastive import edge_drop_views
    from llmhni_ext.distributed import PartitionedGraph, edge_drop_views as block_views, from_env
    from llmhni_ext.graph import normalized_bipartite_adj
    dist = from_env(torch.device("cpu"), timeout_s=60)
    g = torch.Generator().manual_seed(1)
    adj = normalized_bipartite_adj(torch.randint(0, 40, (500,), generator=g), torch.randint(0, 70, (500,), generator=g),
                                   40, 70)
    pg = PartitionedGraph(adj, dist)
    ok = []
    for num, off in ((2, 6), (1, 7)):
        whole = edge_drop_views(adj, 0.7, num_views=num, seed=2**63 + 5, offset=off)
        mine = block_views(pg, 0.7, num, 2**63 + 5, off)
        for w, m in zip(whole, mine):
            dense = w.to_dense()[pg.lo:pg.hi]
            ok.append(torch.equal(dense, m.block.to_dense()))
    q.put((rank, all(ok)))


def test_partitioned_edge_dropped_views_are_the_rows_of_the_whole_graphs_views():
    res = _spawn(_views_worker, 3, 3)
    assert all(ok for _, ok in res), res
