"""The README's code is real: its commands are the ones CI runs, and its example runs."""
import os
import re

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _block(marker):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```", text, re.S)
    assert m, f"README.md has no <!-- {marker} --> block"
    return m.group(1)


def test_readme_has_exactly_two_commands_to_copy():
    assert _block("main-command").strip().count("\n") == 0
    assert "pytest" in _block("test-command")
    assert "pip install" in _block("main-command") and "pip install" in _block("test-command")


def test_ci_runs_the_readme_test_command():
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "readme_block test-command" in ci


def test_sampler_example_runs_and_never_returns_a_positive(monkeypatch):
    code = _block("sampler-example")
    torch.manual_seed(0)
    scope = {}
    exec(compile(code, "README.md:sampler-example", "exec"), scope)
    users, items, n, u = scope["users"], scope["items"], scope["n"], scope["u"]
    positives = set(zip(users.tolist(), items.tolist()))
    assert not any((a, b) in positives for a, b in zip(u.tolist(), n.tolist()))
    assert torch.isfinite(scope["loss"])
