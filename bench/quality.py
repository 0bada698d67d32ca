"""Quality runs behind bench/RESULTS.md (training section): `llmhni compare` over methods,
noise levels and seeds, early-stopped on validation Recall@20 (the test split is never
used for any choice), mean ± std over seeds.

    PYTHONPATH=. python bench/quality.py ml100k [--seeds 0,1,2] [--out runs/quality]
    PYTHONPATH=. python bench/quality.py ml100k-ablations
    PYTHONPATH=. python bench/quality.py ml100k-noise --threads 1     (the README's rows)
    PYTHONPATH=. python bench/quality.py ml1m | lastfm

Each suite is one `llmhni compare` call (finished runs are reused, so an interrupted
suite continues where it stopped). Extra arguments go to `llmhni compare`, e.g.
`--set signals.judge=embedding` for the text-free judge.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from llmhni_ext import cli  # noqa: E402

SUITES = {
    "ml100k": ["--config", "ml100k", "--methods", "bpr,tce,dns,sgl,llmhni", "--noise", "0,0.2"],
    "ml100k-ablations": ["--config", "ml100k", "--methods",
                         "llmhni,llmhni-wo-sem,llmhni-wo-align,llmhni-wo-denoise,llmhni-wo-hal", "--noise", "0.2"],
    "ml100k-noise": ["--config", "ml100k", "--methods", "bpr,dns,llmhni,llmhni-wo-denoise", "--noise", "0.2"],
    "ml100k-all": ["--config", "ml100k", "--methods", "bpr,dns,tce,sgl,llmhni,llmhni-wo-sem,llmhni-wo-align,"
                   "llmhni-wo-denoise,llmhni-wo-hal"],
    "ml1m": ["--config", "ml1m", "--methods", "bpr,llmhni", "--noise", "0", "--set", "signals.judge=embedding"],
    "lastfm": ["--config", "lastfm", "--methods", "bpr,llmhni", "--noise", "0", "--set", "signals.judge=embedding"],
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUITES:
        print(__doc__)
        print("suites:", ", ".join(SUITES))
        return 2
    suite, rest = argv[0], argv[1:]
    if "--seeds" not in rest:
        rest += ["--seeds", "0,1,2"]
    if "--out" not in rest:
        rest += ["--out", os.path.join("runs", "quality", suite)]
    return cli.main(["compare", *SUITES[suite], "--no-progress", *rest])


if __name__ == "__main__":
    sys.exit(main())
