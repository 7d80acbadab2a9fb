"""Reference router for a TRIM-Seq export (`trim export` of a `policy = seq` run), numpy only.

The network is a small causal transformer over the episode's kept steps and the current weak
candidate (one token each: PRM score, tokens / 300, regenerated flag, step / 30, candidate
flag; at most 32 tokens: the last 31 kept steps and the candidate). `policy.json` describes the
forward pass; this file implements it from `policy.safetensors` and checks itself against
`parity.json` (within its tolerance, 1e-5) before it decides anything.

    router = SeqRouter("exports/seq")
    d = router.decide(prev_prm=[0.9, 0.7], prev_tokens=[80, 120], prev_regenerated=[False, True],
                      prm=0.2, tokens=80)        # {"action", "p_regenerate", "logits"}

A λ-conditioned export (`lambda_range` in policy.json) needs `lam=` (the λ to act at, or its
calibrated one) and every other export refuses it, as `trim route` does.

Command line: JSON lines of steps on stdin (the `trim route` schema with prev_tokens and
prev_regenerated), one decision per line on stdout:
    python3 trim_seq_router.py EXPORT_DIR [numpy|onnx]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trim_router import ExportError, lambda_input, load_manifest  # noqa: E402

KIND = "trim-seq"
SEQ_LEN, TOKEN_DIM = 32, 5
TOKEN_SCALE, STEP_SCALE = 300.0, 30.0
LN_EPS = 1e-5


def _ln(x, g, b):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * g + b


class SeqRouter:
    def __init__(self, export_dir: str | Path, backend: str = "numpy"):
        """backend: "numpy" (policy.safetensors) or "onnx" (policy.onnx through onnxruntime)."""
        d = Path(export_dir)
        m = load_manifest(d)
        if m.get("kind") != KIND:
            raise ExportError(f"{d}: kind {m.get('kind')!r} is not {KIND!r}")
        arch = m["architecture"]
        if arch["seq_len"] != SEQ_LEN or arch["token_dim"] != TOKEN_DIM:
            raise ExportError(f"{d}: {arch['seq_len']} tokens of {arch['token_dim']} not supported")
        s = arch["shape"]
        self.dim, self.heads, self.layers = s["dim"], s["heads"], s["layers"]
        self.p = {k: v.astype(np.float64) for k, v in load_file(str(d / "policy.safetensors")).items()}
        self.backend = backend
        if backend == "onnx":
            if "policy.onnx" not in m["files"]:
                raise ExportError(f"{d}: no policy.onnx in this export")
            import onnxruntime as ort

            self.sess = ort.InferenceSession(str(d / "policy.onnx"), providers=["CPUExecutionProvider"])
        elif backend != "numpy":
            raise ValueError(f"backend {backend!r} is not numpy or onnx")
        self.threshold = m["decision"]["default_threshold"]
        self.manifest = m
        # The whole export must be consistent: the weights (numpy) always, and the graph too
        # when it serves.
        fx = json.loads((d / "parity.json").read_text())
        serving, worst = self.backend, 0.0
        for b in ["numpy"] + (["onnx"] if serving == "onnx" else []):
            self.backend = b
            for step, want in zip(fx["steps"], fx["logits"]):
                got = self.logits(**_args(step))
                worst = max(worst, float(np.max(np.abs(got - np.asarray(want)))))
        self.backend = serving
        if not worst <= fx["tolerance"]:
            raise ExportError(f"{d}: reproduces parity.json only within {worst}: damaged")
        self.parity_max_abs_diff = worst

    def tokens(self, prev_prm, prev_tokens, prev_regenerated, prm, tokens) -> np.ndarray:
        t = len(prev_prm)
        if len(prev_tokens) != t or len(prev_regenerated) != t:
            raise ValueError("prev_prm, prev_tokens and prev_regenerated need equal lengths")
        for p in list(prev_prm) + [prm]:
            if not (0.0 <= p <= 1.0):
                raise ValueError(f"PRM score {p} is not in [0, 1]")
        first = max(0, t - (SEQ_LEN - 1))
        rows = [
            [prev_prm[i], prev_tokens[i] / TOKEN_SCALE, float(bool(prev_regenerated[i])), i / STEP_SCALE, 0.0]
            for i in range(first, t)
        ]
        rows.append([prm, tokens / TOKEN_SCALE, 0.0, t / STEP_SCALE, 1.0])
        # Rust rounds each input to f32 before the network.
        return np.asarray(rows, dtype=np.float32).astype(np.float64)

    def logits(self, prev_prm, prev_tokens, prev_regenerated, prm, tokens, lam=None) -> np.ndarray:
        x = self.tokens(prev_prm, prev_tokens, prev_regenerated, prm, tokens)
        extra = lambda_input(self.manifest, lam)
        if self.backend == "onnx":
            feed = {"tokens": x[None].astype(np.float32)}
            if extra:
                feed["lambda_input"] = np.asarray([extra], dtype=np.float32)
            return self.sess.run(["logits"], feed)[0][0].astype(np.float64)
        p = self.p
        lin = lambda x, name: x @ p[f"{name}.weight"].T + p[f"{name}.bias"]  # noqa: E731
        h = lin(x, "embed")
        n, dh = h.shape[0], self.dim // self.heads
        future = np.triu(np.ones((n, n), dtype=bool), k=1)
        for i in range(self.layers):
            b = f"blocks.{i}"
            a = _ln(h, p[f"{b}.ln1.weight"], p[f"{b}.ln1.bias"])
            q, k, v = lin(a, f"{b}.q"), lin(a, f"{b}.k"), lin(a, f"{b}.v")
            att = np.empty_like(q)
            for hd in range(self.heads):
                r = slice(hd * dh, (hd + 1) * dh)
                s = q[:, r] @ k[:, r].T / math.sqrt(dh)
                s[future] = -np.inf
                s = np.exp(s - s.max(axis=1, keepdims=True))
                att[:, r] = (s / s.sum(axis=1, keepdims=True)) @ v[:, r]
            h = h + lin(att, f"{b}.o")
            c = _ln(h, p[f"{b}.ln2.weight"], p[f"{b}.ln2.bias"])
            h = h + lin(np.maximum(lin(c, f"{b}.ff1"), 0.0), f"{b}.ff2")
        z = _ln(h[-1], p["ln_f.weight"], p["ln_f.bias"])
        z = np.concatenate([z, np.asarray(extra, dtype=np.float64)])
        return lin(np.tanh(lin(z, "actor1")), "actor_out")

    def decide(self, prev_prm, prev_tokens, prev_regenerated, prm, tokens, lam=None) -> dict:
        lg = self.logits(prev_prm, prev_tokens, prev_regenerated, prm, tokens, lam)
        pr = 1.0 / (1.0 + math.exp(lg[0] - lg[1]))
        return {
            "action": "regenerate" if pr > self.threshold else "continue",
            "p_regenerate": pr,
            "logits": [float(x) for x in lg],
        }


def _args(step: dict) -> dict:
    return {
        "prev_prm": step.get("prev_prm", []),
        "prev_tokens": step.get("prev_tokens", []),
        "prev_regenerated": step.get("prev_regenerated", []),
        "prm": step["prm"],
        "tokens": step["tokens"],
        "lam": step.get("lambda"),
    }


def main() -> None:
    backend = sys.argv[2] if len(sys.argv) > 2 else "numpy"
    router = SeqRouter(sys.argv[1], backend=backend)
    for line in sys.stdin:
        if not line.strip():
            continue
        step = json.loads(line)
        try:
            d = router.decide(**_args(step))
        except ValueError as e:
            print(json.dumps({"id": step.get("id"), "error": str(e)}), flush=True)
            continue
        if "id" in step:
            d["id"] = step["id"]
        print(json.dumps(d), flush=True)


if __name__ == "__main__":
    main()
