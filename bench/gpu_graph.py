"""GPU benchmark of the graph ops for bench/gpu_check.sh: spmm and 3-layer LightGCN
propagation (forward + backward) against torch.sparse.mm (cuSPARSE CSR and COO) on
the Yelp2018- and Amazon-book-sized graphs, realistic and heavy, d = 64 (and spmm
at d = 32 and 128 on the realistic Yelp2018 graph)."""
import sys

import propagation

if __name__ == "__main__":
    rc = propagation.main(["--device", "cuda", "--rows", "--repeats", "30"])
    for d in (32, 128):
        rc |= propagation.main(["--device", "cuda", "--rows", "--repeats", "30", "--dim", str(d),
                                "--graph", "yelp2018/realistic"])
    sys.exit(rc)
