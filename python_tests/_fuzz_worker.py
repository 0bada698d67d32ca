"""Runs op calls described as JSON lines on stdin, one answer line each on stdout.

Used by test_ops_fuzz.py in a separate process, so a call that crashes the interpreter
(a segfault in a kernel) fails the test with the case that caused it instead of killing
the test run. A case is ``{"op": name, "args": [arg, ...], "compare": bool}`` where a
tensor argument is ``{"tensor": values, "dtype": "int32", "shape": [..] | null, "strided":
bool}``. The answer is ``{"status": "ok" | "error" | "bad-output" | "mismatch", ...}``;
with ``compare``, an error of the kernel or of its reference twin that the other does not
raise identically (type and first line of the message) is a mismatch.
"""
import json
import sys

import torch

import llmhni_ext  # noqa: F401  (registers the ops)
from llmhni_ext import _backend
from llmhni_ext import reference as R

_backend.load()
OPS = torch.ops.llmhni
DTYPES = {"int32": torch.int32, "int64": torch.int64, "float32": torch.float32, "float64": torch.float64,
          "float16": torch.float16, "bfloat16": torch.bfloat16, "uint8": torch.uint8, "bool": torch.bool}


def build(a):
    if isinstance(a, dict) and "tensor" in a:
        t = torch.tensor(a["tensor"], dtype=DTYPES[a["dtype"]])
        if a.get("shape") is not None:
            try:
                t = t.reshape(a["shape"])
            except RuntimeError:
                pass
        if a.get("strided") and t.dim() == 1:
            t = torch.stack([t, t]).t().reshape(-1)[::2]       # same values, stride 2
        return t
    if isinstance(a, list):
        return [build(x) for x in a]
    return a


def check_output(op, args, out):
    """Invariants the outputs must satisfy whatever the inputs were."""
    if op == "sample_negatives":
        neg = out[0]
        n_items = args[3]
        if neg.numel() and (int(neg.min()) < 0 or int(neg.max()) >= n_items):
            return f"ids outside [0, {n_items}): [{int(neg.min())}, {int(neg.max())}]"
    return None


ERRORS = (RuntimeError, ValueError, TypeError, IndexError, OverflowError)


def first_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:300] if str(e) else ""


def run(fn, case):
    try:
        args = [build(a) for a in case["args"]]
        out = fn(*args)
        bad = check_output(case["op"], args, out)
        return {"status": "bad-output", "msg": bad} if bad else {"status": "ok"}
    except ERRORS as e:
        return {"status": "error", "type": type(e).__name__, "msg": first_line(e)}


def main():
    for line in sys.stdin:
        case = json.loads(line)
        ans = run(getattr(OPS, case["op"]), case)
        if case.get("compare") and ans["status"] in ("ok", "error"):
            # the reference twin must reject exactly what the kernel rejects, with the same error
            ref = run(getattr(R, case["op"]), case)
            if "error" in (ans["status"], ref["status"]) and \
                    (ans.get("type"), ans.get("msg")) != (ref.get("type"), ref.get("msg")):
                ans = {"status": "mismatch", "kernel": ans, "reference": ref}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
