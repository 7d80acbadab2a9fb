"""Reference router for a `trim export` directory (numpy + safetensors, or onnxruntime).

Call it once per reasoning step: pass the PRM scores of the steps already kept and the PRM
score and token count of the weak model's current candidate step; it answers whether to keep
the step ("continue") or regenerate it with the strong model ("regenerate").

    router = Router("exports/my-run")              # numpy backend; Router(dir, backend="onnx")
    ep = Episode()
    d = router.decide(ep.observe(prm=0.42, tokens=120))
    ep.push(0.91 if d.regenerate else 0.42)        # PRM of the step that was kept

A λ-conditioned export (its policy.json has `lambda_range`) acts at the λ each decision names:
`router.decide(obs, lam=4e-4)`; it refuses a decision without λ, and every other export refuses
one with λ (as `trim route` does). A budget-aware export (`budget_range`) reads the request's
strong-token budget: `router.decide(obs, budget=300, budget_left=210)`; it refuses a decision
without a budget, and every other export refuses one (enforce budgets with trim_budget.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

FORMAT = "trim-policy"
FORMAT_VERSION = 1
# The λ input of conditioned policies: (log10 λ − CENTER) / HALF_WIDTH, in float32
# (trim_env::features::lambda_feature).
LAMBDA_LOG10_CENTER = np.float32(-3.5)
LAMBDA_LOG10_HALF_WIDTH = np.float32(1.5)


class ExportError(ValueError):
    """The export is damaged, incomplete, or of an unsupported version."""


def explore_p_regenerate(regenerate: bool, p_regenerate: float, epsilon: float | None = None,
                         temperature: float | None = None) -> float:
    """Probability of regenerating when exploring around a decision (as `trim route
    --explore-epsilon` / `--explore-temperature`, `trim_router::Exploration`): ε-greedy gives
    `(1 − ε)·[decision] + ε/2`; a temperature τ gives `p^(1/τ) / (p^(1/τ) + (1 − p)^(1/τ))`."""
    if epsilon is not None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"ε {epsilon} is not a probability in [0, 1]")
        return (1.0 - epsilon) * float(regenerate) + epsilon / 2.0
    if temperature is None or not temperature > 0.0:
        raise ValueError(f"temperature {temperature} is not > 0")
    p = min(max(float(p_regenerate), 0.0), 1.0)
    a, b = p ** (1.0 / temperature), (1.0 - p) ** (1.0 / temperature)
    return a / (a + b) if a + b > 0.0 else 0.5


def lambda_input(manifest: dict, lam: float | None) -> list[float]:
    """The λ input of a decision for the export described by `manifest`: `[x]` for a
    λ-conditioned export (λ from the call, else its calibrated λ; refused when missing or outside
    `lambda_range`), `[]` for any other (which refuses a λ), as the Rust routers do."""
    rng = manifest.get("lambda_range")
    if rng is None:
        if lam is not None:
            raise ValueError(f"lambda {lam} given, but this policy has no λ input "
                             f"(it was trained for λ = {manifest['lambda']}); drop the field")
        return []
    lo, hi = rng
    if lam is None:
        lam = (manifest.get("calibration") or {}).get("lambda")
    if lam is None:
        raise ValueError("this policy is λ-conditioned: each decision needs `lambda`, the cost "
                         f"per strong token to act at, in [{lo}, {hi}]")
    if not (lo * (1 - 1e-9) <= lam <= hi * (1 + 1e-9)):
        raise ValueError(f"lambda {lam} is outside the range this policy was trained on "
                         f"[{lo}, {hi}]")
    x = (np.log10(np.float32(lam)) - LAMBDA_LOG10_CENTER) / LAMBDA_LOG10_HALF_WIDTH
    return [float(np.float32(x))]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_manifest(export_dir: str | Path) -> dict:
    """Read policy.json and verify format, version and the sha256 of every listed file."""
    d = Path(export_dir)
    m = json.loads((d / "policy.json").read_text())
    if m.get("format") != FORMAT or m.get("format_version") != FORMAT_VERSION:
        raise ExportError(
            f"{d}: format {m.get('format')!r} v{m.get('format_version')}, "
            f"this router reads {FORMAT!r} v{FORMAT_VERSION}"
        )
    for name, want in m["files"].items():
        got = _sha256(d / name)
        if got != want:
            raise ExportError(f"{d / name}: sha256 {got} != policy.json {want} (corrupted?)")
    return m


def _check_prm(p: float) -> None:
    if not (0.0 <= p <= 1.0):  # also false for NaN
        raise ValueError(f"PRM score {p} is not in [0, 1]")


class Episode:
    """Running features of one episode, exactly as the trainer's environment builds them."""

    def __init__(self, token_scale: float = 300.0, step_scale: float = 30.0):
        self.min_prev, self.prod_prev, self.t = 1.0, 1.0, 0
        self.token_scale, self.step_scale = token_scale, step_scale

    def push(self, kept_prm: float) -> None:
        """Record the PRM score of the step that was kept (weak on continue, strong on regenerate)."""
        _check_prm(kept_prm)
        self.min_prev = min(self.min_prev, kept_prm)
        self.prod_prev = float(np.float32(self.prod_prev) * np.float32(kept_prm))
        self.t += 1

    def observe(self, prm: float, tokens: int) -> np.ndarray:
        """Features [min_prev_prm, prod_prev_prm, prm, tokens/300, t/30] for the current step."""
        _check_prm(prm)
        if tokens < 0:
            raise ValueError(f"token count {tokens} is negative")
        return np.array(
            [self.min_prev, self.prod_prev, prm,
             np.float32(tokens) / np.float32(self.token_scale),
             np.float32(self.t) / np.float32(self.step_scale)],
            dtype=np.float32,
        )


def _layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


@dataclass
class Decision:
    regenerate: bool
    p_regenerate: float
    logits: np.ndarray


class Router:
    def __init__(self, export_dir: str | Path, backend: str = "numpy", threshold: float | None = None):
        d = Path(export_dir)
        self.manifest = load_manifest(d)
        arch = self.manifest["architecture"]
        self.eps = np.float32(arch["layer_norm_eps"])
        self.threshold = self.manifest["decision"]["default_threshold"] if threshold is None else threshold
        # The same refusal as the Rust router: a threshold that is not a probability is a damaged
        # or hand-edited manifest (or a bad argument), never something to route with.
        if not (isinstance(self.threshold, (int, float)) and 0.0 <= self.threshold <= 1.0):
            raise ValueError(f"{d}: decision threshold {self.threshold!r} is not in [0, 1]")
        self.token_scale = self.manifest["token_scale"]
        self.step_scale = self.manifest["step_scale"]
        self.backend = backend
        if backend == "numpy":
            self.p = load_file(str(d / "policy.safetensors"))
            for spec in arch["params"]:
                got = self.p[spec["name"]].shape
                if list(got) != spec["shape"]:
                    raise ExportError(f"{spec['name']}: shape {got} != {spec['shape']}")
        elif backend == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            self.sess = ort.InferenceSession(str(d / "policy.onnx"), opts, providers=["CPUExecutionProvider"])
        else:
            raise ValueError(f"backend {backend!r}: numpy or onnx")

    def episode(self) -> Episode:
        return Episode(self.token_scale, self.step_scale)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Logits [continue, regenerate] for obs of shape [5] or [batch, 5]."""
        x = np.atleast_2d(np.asarray(obs, dtype=np.float32))
        if self.backend == "onnx":
            out = self.sess.run(["logits"], {"obs": x})[0]
        else:
            p = self.p

            def block(h, lin, ln):
                h = h @ p[f"{lin}.weight"].T + p[f"{lin}.bias"]  # PyTorch layout [out, in]
                return np.tanh(_layer_norm(h, p[f"{ln}.weight"], p[f"{ln}.bias"], self.eps))

            h = block(x, "trunk1", "trunk_ln1")
            h = block(h, "trunk2", "trunk_ln2")
            a = block(h, "actor1", "actor_ln")
            out = a @ p["actor_out.weight"].T + p["actor_out.bias"]
        return out if np.ndim(obs) == 2 else out[0]

    def p_regenerate(self, obs: np.ndarray) -> np.ndarray:
        z = self.logits(obs).astype(np.float64)
        return 1.0 / (1.0 + np.exp(z[..., 0] - z[..., 1]))

    def row(self, obs: np.ndarray, lam: float | None = None, budget: int | None = None,
            budget_left: int | None = None) -> np.ndarray:
        """The network input for the features `obs` ([5]): with the λ input appended for a
        λ-conditioned export (λ required, inside lambda_range), the budget inputs for a
        budget-aware one (budget required); each refused by an export without that input."""
        obs = np.asarray(obs, dtype=np.float32)
        if budget is None and budget_left is not None:
            raise ValueError("`budget_left` without `budget`")
        if self.manifest.get("budget_range") is None:
            if budget is not None:
                raise ValueError("`budget` given, but this policy has no budget input and a "
                                 "stateless decision cannot enforce one; serve budgets with "
                                 "sessions (trim_budget.py)")
        else:
            if budget is None:
                raise ValueError("this policy is budget-aware: each decision needs the request's "
                                 "strong-token `budget` (and `budget_left` after the first "
                                 "strong step)")
            left = budget if budget_left is None else budget_left
            if left > budget:
                raise ValueError(f"budget_left {left} exceeds the budget {budget}")
            frac = np.float32(0.0) if budget == 0 else np.float32(min(left, budget) / budget)
            return np.append(obs, [frac, np.float32(left) / np.float32(1000.0)]).astype(np.float32)
        return np.append(obs, lambda_input(self.manifest, lam)).astype(np.float32)

    def decide(self, obs: np.ndarray, lam: float | None = None, budget: int | None = None,
               budget_left: int | None = None) -> Decision:
        """One decision; regenerate iff p(regenerate) > threshold. `lam`: the λ to act at, for a
        λ-conditioned export only; `budget`/`budget_left`: for a budget-aware export only."""
        lg = self.logits(self.row(obs, lam, budget, budget_left))
        p = float(1.0 / (1.0 + np.exp(float(lg[0]) - float(lg[1]))))
        return Decision(p > self.threshold, p, lg)

    def explore(self, d: Decision, rng: np.random.Generator, epsilon: float | None = None,
                temperature: float | None = None) -> tuple[bool, float]:
        """Draw the action to take around decision `d` and its propensity (log both beside the
        step, for `trim ope`)."""
        p = explore_p_regenerate(d.regenerate, d.p_regenerate, epsilon, temperature)
        regen = bool(rng.random() < p)
        return regen, (p if regen else 1.0 - p)

    def decide_batch(self, obs: np.ndarray) -> np.ndarray:
        """Boolean regenerate decisions for obs [batch, 5]."""
        return self.p_regenerate(np.asarray(obs, dtype=np.float32)) > self.threshold


if __name__ == "__main__":
    import sys

    # Same contract as `trim route`: JSON lines {"prev_prm": [...], "prm": p, "tokens": n} in.
    r = Router(sys.argv[1], backend=sys.argv[2] if len(sys.argv) > 2 else "numpy")
    for line in sys.stdin:
        if not line.strip():
            continue
        s = json.loads(line)
        ep = r.episode()
        for k in s.get("prev_prm", []):
            ep.push(k)
        try:
            d = r.decide(ep.observe(s["prm"], s["tokens"]), s.get("lambda"), s.get("budget"),
                         s.get("budget_left"))
        except ValueError as e:
            print(json.dumps({"id": s.get("id"), "error": str(e)}), flush=True)
            continue
        out = {"action": "regenerate" if d.regenerate else "continue",
               "p_regenerate": d.p_regenerate, "logits": [float(v) for v in d.logits]}
        if "id" in s:
            out["id"] = s["id"]
        print(json.dumps(out), flush=True)
