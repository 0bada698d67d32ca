"""Backend selection: compiled module, JIT fallback, reference twins, and the op registry contract."""
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import llmhni_ext
from llmhni_ext import _backend, reference

PKG_DIR = os.path.dirname(os.path.abspath(llmhni_ext.__file__))


def _package_copy(tmp_path, keep_compiled=False, with_sources=True, built_with=None):
    """A copy of the installed package, optionally without its compiled module or sources."""
    dst = tmp_path / "site" / "llmhni_ext"
    ignore = [] if keep_compiled else ["_C*.so", "_C*.pyd", "_built_with.json"]
    shutil.copytree(PKG_DIR, dst, ignore=shutil.ignore_patterns("__pycache__", "_csrc", *ignore))
    if with_sources:
        src = os.path.join(PKG_DIR, "_csrc")
        if not os.path.isdir(src):
            src = os.path.join(os.path.dirname(PKG_DIR), "csrc")
        shutil.copytree(src, dst / "_csrc")
    if built_with is not None:
        (dst / "_built_with.json").write_text(json.dumps(built_with))
    return str(tmp_path / "site")


# An editable install (pip install -e .) maps llmhni_ext._C to the checkout's module through a
# meta-path finder, which would hand the copy a compiled module it does not hold: drop that finder.
_NO_EDITABLE_FINDER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if not getattr(f, "__module__", "").startswith("__editable__")]
"""


def _run(site, code, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMHNI_")}
    full_env.update(env)
    full_env["PYTHONPATH"] = site
    code = _NO_EDITABLE_FINDER + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=site,
                          capture_output=True, text=True, timeout=1800)


# The same inputs in every backend; each subprocess prints its outputs as JSON.
_PROBE = """
import json, warnings, torch
warnings.simplefilter("always")
caught = []
warnings.showwarning = lambda msg, cat, *a, **k: caught.append(f"{cat.__name__}: {msg}")
import llmhni_ext
from llmhni_ext import graph
g = torch.Generator().manual_seed(7)
users = torch.randint(0, 40, (300,), generator=g)
items = torch.randint(0, 55, (300,), generator=g)
adj = graph.normalized_bipartite_adj(users, items, 40, 55)
x = torch.randn(95, 16, generator=g, dtype=torch.float64)
y = graph.propagate(adj, x, 3)
z = graph.spmm(adj, x)
info = llmhni_ext.backend_info()
print(json.dumps({"mode": info["mode"], "reason": info["reason"], "ops": info["ops"],
                  "warnings": caught, "y": y.tolist(), "z": z.tolist(),
                  "rowptr": adj.rowptr.tolist(), "col": adj.col.tolist(), "value": adj.value.tolist()}))
"""


def _probe(site, **env):
    out = _run(site, _PROBE, **env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_never_compiles_or_fails(tmp_path):
    site = _package_copy(tmp_path, keep_compiled=False, with_sources=False)
    out = _run(site, "import llmhni_ext; print(llmhni_ext.__version__)", LLMHNI_NO_JIT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == llmhni_ext.__version__
    assert "BackendWarning" not in out.stderr  # nothing is announced before an op is used


def test_reference_fallback_is_announced_once_and_queryable(tmp_path):
    site = _package_copy(tmp_path, keep_compiled=False, with_sources=False)
    res = _probe(site, LLMHNI_NO_JIT="1")
    assert res["mode"] == "reference"
    assert "could not be imported" in res["reason"] and "LLMHNI_NO_JIT" in res["reason"]
    assert len([w for w in res["warnings"] if w.startswith("BackendWarning")]) == 1
    assert all(d == "reference" for per_op in res["ops"].values() for d in per_op.values())


def test_forced_reference_backend(tmp_path):
    site = _package_copy(tmp_path, keep_compiled=True)
    res = _probe(site, LLMHNI_BACKEND="reference")
    assert res["mode"] == "reference" and "LLMHNI_BACKEND" in res["reason"]
    assert not [w for w in res["warnings"] if w.startswith("BackendWarning")]


def test_bad_backend_variable_is_a_clear_error(tmp_path):
    site = _package_copy(tmp_path, keep_compiled=True)
    out = _run(site, "import llmhni_ext; llmhni_ext.backend_info()", LLMHNI_BACKEND="fast")
    assert out.returncode != 0 and "LLMHNI_BACKEND must be" in out.stderr


def test_module_built_for_another_torch_is_not_loaded(tmp_path):
    site = _package_copy(tmp_path, keep_compiled=True, with_sources=False,
                         built_with={"torch": "1.0.0", "llmhni": llmhni_ext.__version__})
    res = _probe(site, LLMHNI_NO_JIT="1")
    assert res["mode"] == "reference"
    assert "built against torch 1.0.0" in res["reason"]


@pytest.mark.slow
def test_compiled_jit_and_reference_agree(tmp_path):
    if _backend.load() != "compiled":
        pytest.skip("the compiled module is not installed (pip install . builds it)")
    compiled = _probe(_package_copy(tmp_path / "c", keep_compiled=True))
    jit = _probe(_package_copy(tmp_path / "j", keep_compiled=False),
                 LLMHNI_CACHE_DIR=str(tmp_path / "cache"), MAX_JOBS=os.environ.get("MAX_JOBS", "2"))
    ref = _probe(_package_copy(tmp_path / "r", keep_compiled=True), LLMHNI_BACKEND="reference")
    assert compiled["mode"] == "compiled" and jit["mode"] == "jit" and ref["mode"] == "reference"
    assert [w for w in jit["warnings"] if "JIT" in w], "the JIT build must be announced"
    for key in ("rowptr", "col"):
        assert compiled[key] == jit[key] == ref[key]
    for key in ("value", "y", "z"):
        c, j, r = (torch.tensor(res[key], dtype=torch.float64) for res in (compiled, jit, ref))
        assert torch.equal(c, j), f"{key}: compiled and JIT builds of the same sources differ"
        torch.testing.assert_close(c, r, rtol=1e-6, atol=1e-7)


def test_every_compiled_op_has_a_reference_twin_with_its_signature():
    if _backend.load() == "reference":
        pytest.skip("no compiled library")
    names = set(reference.OPS)
    compiled = {k.split(":")[0] for k in _backend._state.kernels}
    assert compiled <= names, f"kernels without a reference twin: {compiled - names}"
    for name in names:
        op = getattr(torch.ops.llmhni, name, None)
        assert op is not None, f"reference.OPS lists {name}, which no schema declares"
        schema_args = [a.name for a in op.default._schema.arguments]
        ref_args = list(inspect.signature(getattr(reference, name)).parameters)
        assert schema_args == ref_args, f"{name}: schema {schema_args} vs reference {ref_args}"


@pytest.mark.parametrize("seed,offset", [(0, 0), (1, 2), (2**63 - 1, 2**40 + 5), (123456789, 7)])
def test_philox_kernel_matches_reference(seed, offset):
    if not _backend.has_kernel("philox_random", "cpu"):
        pytest.skip("no compiled philox kernel")
    idx = torch.cat([torch.arange(0, 5000), torch.randint(0, 2**62, (5000,))])
    for sub in (0, 1, 2**31 + 3):
        got = torch.ops.llmhni.philox_random(seed, offset, idx, sub)
        assert torch.equal(got, reference.philox_random(seed, offset, idx, sub))


def test_philox_words_are_uniform():
    w = reference.philox_random(5, 0, torch.arange(200_000), 0)
    assert int(w.min()) >= 0 and int(w.max()) < 2**32
    # Each of the 4 words: mean of the top bit close to 1/2, low byte spread evenly.
    bits = (w >> 31).double().mean(0)
    assert torch.all((bits - 0.5).abs() < 0.01)
    counts = torch.bincount((w[:, 0] & 0xFF), minlength=256).double()
    chi2 = (((counts - counts.mean()) ** 2) / counts.mean()).sum()
    assert chi2 < 350  # 255 dof: p < 1e-4 above this


def test_uniform_index_reference_is_exact():
    w = reference.philox_random(9, 1, torch.arange(20_000), 0)
    for n in (1, 7, 38_048, 2**31 - 1, 2**40 + 3):
        got = reference.uniform_index(w[:, 0], w[:, 1], n)
        want = torch.tensor([((int(a) << 32 | int(b)) * n) >> 64 for a, b in zip(w[:200, 0], w[:200, 1])])
        assert torch.equal(got[:200], want)
        assert int(got.min()) >= 0 and int(got.max()) < n
