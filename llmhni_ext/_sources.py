"""Reads ``csrc/sources.txt``: the one list of compiled sources.

setup.py, CMakeLists.txt and the JIT fallback all read the same file, so the
three builds cannot drift apart. Sections: ``[cpu]`` is always compiled,
``[cuda]`` only in CUDA builds, ``[python]`` only into the pybind11 module
``llmhni_ext._C`` (the CMake library for libtorch users leaves it out).
"""
from __future__ import annotations

import os
from typing import Dict, List


def read_sources(csrc_dir: str) -> Dict[str, List[str]]:
    sections: Dict[str, List[str]] = {"cpu": [], "cuda": [], "python": []}
    current = None
    with open(os.path.join(csrc_dir, "sources.txt"), encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1]
                if current not in sections:
                    raise ValueError(f"csrc/sources.txt:{lineno}: unknown section [{current}]")
                continue
            if current is None:
                raise ValueError(f"csrc/sources.txt:{lineno}: file listed before any section")
            path = os.path.join(csrc_dir, line)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"csrc/sources.txt:{lineno}: {line} does not exist")
            sections[current].append(path)
    return sections
