"""pytest-benchmark suite of the graph ops against their peers in the same run.

    PYTHONPATH=. python -m pytest bench/test_bench_graph.py --benchmark-group-by=group

Groups compare llmhni with torch.sparse.mm (CSR and COO) and scipy on the realistic
Yelp2018-sized graph (d = 64, 2 threads); `bench/propagation.py` prints the ratios.
Skipped when shared/bench/graphgen.py is absent.
"""
import pytest
import torch

import graphs

pytest.importorskip("pytest_benchmark")


@pytest.fixture(scope="module")
def yelp():
    try:
        u, i, nu, ni = graphs.interactions("yelp2018", "realistic")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    from llmhni_ext import graph
    adj = graph.normalized_bipartite_adj(u, i, nu, ni)
    x = torch.randn(adj.n_rows, 64)
    return {"u": u, "i": i, "nu": nu, "ni": ni, "adj": adj, "x": x, "csr": graphs.torch_csr(adj),
            "coo": graphs.torch_coo(adj), "scipy": graphs.scipy_csr(adj)}


@pytest.mark.benchmark(group="spmm yelp2018 realistic d=64")
def test_spmm_llmhni(benchmark, yelp):
    from llmhni_ext import graph
    benchmark(graph.spmm, yelp["adj"], yelp["x"])


@pytest.mark.benchmark(group="spmm yelp2018 realistic d=64")
def test_spmm_torch_csr(benchmark, yelp):
    benchmark(torch.sparse.mm, yelp["csr"], yelp["x"])


@pytest.mark.benchmark(group="spmm yelp2018 realistic d=64")
def test_spmm_scipy_csr(benchmark, yelp):
    xn = yelp["x"].numpy()
    benchmark(lambda: yelp["scipy"] @ xn)


def _fwd_bwd(prop, x):
    xg = x.clone().requires_grad_()
    g = torch.ones_like(x)

    def run():
        torch.autograd.grad(prop(xg), xg, g)
    return run


@pytest.mark.benchmark(group="LightGCN 3 layers fwd+bwd yelp2018")
def test_propagate_llmhni(benchmark, yelp):
    from llmhni_ext import graph
    benchmark(_fwd_bwd(lambda x: graph.propagate(yelp["adj"], x, 3), yelp["x"]))


@pytest.mark.benchmark(group="LightGCN 3 layers fwd+bwd yelp2018")
def test_propagate_torch_coo_recbole(benchmark, yelp):
    benchmark(_fwd_bwd(lambda x: graphs.recbole_propagate(yelp["coo"], x, 3), yelp["x"]))


@pytest.mark.benchmark(group="build normalised adjacency yelp2018")
def test_build_llmhni(benchmark, yelp):
    from llmhni_ext import graph
    benchmark(graph.normalized_bipartite_adj, yelp["u"], yelp["i"], yelp["nu"], yelp["ni"])


@pytest.mark.benchmark(group="build normalised adjacency yelp2018")
def test_build_scipy(benchmark, yelp):
    benchmark(graphs.scipy_norm_adj, yelp["u"], yelp["i"], yelp["nu"], yelp["ni"])
