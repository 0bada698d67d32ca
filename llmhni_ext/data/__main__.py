"""``python -m llmhni_ext.data``: fetch (where absent) and summarise data sets.

    python -m llmhni_ext.data summary --dataset ml-100k [--data-root DIR] [--noise 0.2]
    python -m llmhni_ext.data download [--data-root DIR]     # ML-100K + the LLM profiles, verified
"""
from __future__ import annotations

import argparse
import sys

from .loaders import add_data_arguments, load_from_args


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmhni_ext.data",
                                description="Fetch (where absent), verify and summarise llmhni data sets.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary", help="load a data set and print its summary")
    add_data_arguments(s)
    d = sub.add_parser("download", help="download and verify MovieLens-100K and its LLM profiles where absent")
    d.add_argument("--data-root", default=None)
    args = p.parse_args(argv)
    if args.cmd == "summary":
        print(load_from_args(args).summary())
    else:
        from . import download as dl
        from .root import resolve_data_root
        root = resolve_data_root(args.data_root)
        print(dl.ensure_ml100k(root))
        print(dl.ensure_profiles(root, list(dl.PROFILE_FILES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
