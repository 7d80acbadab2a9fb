"""Reference router for a TRIM-POMDP export (`trim export --pomdp RUN_DIR --out DIR`) or a bare
solution file (`trim pomdp solve --out DIR` → DIR/lambda=<λ>/solution.json), pure Python.

The same decision as `trim route --export DIR` / `--pomdp FILE` (and as the policy in the replay
environment):
the release's belief rule — a uniform prior times the likelihood of the current (min PRM of the
kept steps, current PRM) bin, normalised; keep the step when max(b) - b[S2] >= 0.4 — then the
solution's action values at the step, interpolated on the belief grid, with the current step's
real token cost. Floating-point operations follow the Rust code step by step, so decisions agree
exactly (tested by `trainer/tests/cli_pomdp.rs`).

    router = PomdpRouter("exports/pomdp")          # or a solution.json
    d = router.decide(prev_prm=[0.9, 0.7], prm=0.2, tokens=80)   # {"action": ..., "belief": ...}

Command line: JSON lines of steps on stdin ({"id", "prev_prm", "prm", "tokens"}), one decision
per line on stdout:  python3 trim_pomdp_router.py EXPORT_DIR_OR_SOLUTION < steps.jsonl

An export is verified before it decides anything: format, version and kind of policy.json, the
sha256 of every listed file, the solution's own checksum, and every decision of parity.json
reproduced.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import sys

import os

FORMAT = "trim-pomdp-solution/1"
EXPORT_FORMAT, EXPORT_VERSION, EXPORT_KIND = "trim-policy", 1, "trim-pomdp"
CLOSENESS = 0.4


class SolutionError(ValueError):
    """The solution file is damaged, truncated or of another format."""


def f32(x: float) -> float:
    """Round to float32 as Rust does when it parses a PRM score into an f32."""
    return struct.unpack("f", struct.pack("f", x))[0]


class PomdpRouter:
    def __init__(self, path: str):
        self.closeness = CLOSENESS
        if os.path.isdir(path):
            self._load_export(path)
        else:
            self._load_solution(path)

    def _load_export(self, d: str) -> None:
        mpath = os.path.join(d, "policy.json")
        with open(mpath, "rb") as f:
            m = json.loads(f.read())
        got = (m.get("format"), m.get("format_version"), m.get("kind"))
        if got != (EXPORT_FORMAT, EXPORT_VERSION, EXPORT_KIND):
            raise SolutionError(f"{mpath}: {got} is not a {EXPORT_KIND} export v{EXPORT_VERSION}")
        for name, want in m["files"].items():
            with open(os.path.join(d, name), "rb") as f:
                actual = hashlib.sha256(f.read()).hexdigest()
            if actual != want:
                raise SolutionError(f"{d}/{name}: sha256 {actual} does not match policy.json: damaged")
        rule = m["belief_rule"]
        if rule.get("name") != "release":
            raise SolutionError(f"{mpath}: belief rule {rule.get('name')!r} is not served here")
        self.closeness = rule.get("closeness")
        self._load_solution(os.path.join(d, "pomdp_solution.json"))
        if self.lam != m["lambda"]:
            raise SolutionError(f"{mpath}: lambda differs from the solution's")
        with open(os.path.join(d, "parity.json"), "rb") as f:
            parity = json.loads(f.read())
        for i, (step, want) in enumerate(zip(parity["steps"], parity["regenerate"])):
            d_ = self.decide(step.get("prev_prm", []), step["prm"], step["tokens"])
            if (d_["action"] == "regenerate") != want:
                raise SolutionError(f"{d}/parity.json: step {i} decided differently: damaged")

    def _load_solution(self, path: str) -> None:
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        if len(lines) < 2:
            raise SolutionError(f"{path}: expected the solution and its checksum line")
        body, trailer = lines[0], json.loads(lines[1])
        actual = hashlib.sha256(body).hexdigest()
        if actual != trailer.get("content_sha256"):
            raise SolutionError(f"{path}: content sha256 {actual} does not match: damaged")
        s = json.loads(body)
        if s.get("format") != FORMAT:
            raise SolutionError(f"{path}: format {s.get('format')!r} is not {FORMAT}")
        m = s["model"]
        self.bins = m["bins"]
        self.obs = m["obs"]
        self.p_s = m["p_s"]
        self.lam = s["lambda"]
        self.n = s["grid_divisions"]
        self.cont = s["continuation"]
        self.points = (self.n + 1) * (self.n + 2) // 2
        self.horizon = len(self.cont) // self.points
        self.row_start = []
        acc = 0
        for i in range(self.n + 1):
            self.row_start.append(acc)
            acc += self.n - i + 1

    def _bin(self, x: float) -> int:
        x = min(max(x, 0.0), 1.0)
        return min(int(x * self.bins), self.bins - 1)

    def _interp(self, row: int, a: int, b) -> float:
        n = self.n
        base = (row - 1) * self.points
        v = lambda i, j: self.cont[base + self.row_start[i] + j][a]
        x = min(max(b[0], 0.0), 1.0) * n
        y = min(max(b[1], 0.0), 1.0) * n
        i = min(int(math.floor(x)), n)
        j = min(int(math.floor(y)), n - i)
        if i + j == n:
            return v(i, j)
        fx, fy = max(x - i, 0.0), max(y - j, 0.0)
        if fx + fy <= 1.0 or i + j + 2 > n:
            s = max(fx + fy, 1.0)
            fx, fy = fx / s, fy / s
            return (1.0 - fx - fy) * v(i, j) + fx * v(i + 1, j) + fy * v(i, j + 1)
        return (fx + fy - 1.0) * v(i + 1, j + 1) + (1.0 - fy) * v(i + 1, j) + (1.0 - fx) * v(i, j + 1)

    def decide(self, prev_prm, prm: float, tokens: int) -> dict:
        prev = [f32(p) for p in prev_prm]
        prm = f32(prm)
        for p in prev + [prm]:
            if not (0.0 <= p <= 1.0):
                raise ValueError(f"PRM score {p} is not in [0, 1]")
        min_prev = 1.0
        for p in prev:
            min_prev = min(min_prev, p)
        o = self._bin(min_prev) * self.bins + self._bin(prm)
        third = 1.0 / 3.0
        w = [third * self.obs[0][o], third * self.obs[1][o], third * self.obs[2][o]]
        p = w[0] + w[1] + w[2]
        b = [w[0] / p, w[1] / p, w[2] / p] if p > 0.0 else [third, third, third]
        best = 0.0
        for x in b:
            best = max(best, x)
        if self.closeness is not None and best - b[2] >= self.closeness:
            return {"action": "continue", "belief": b, "shortcut": True}
        k = len(prev) + 1
        cost = self.lam * float(tokens)
        if k > self.horizon:
            q = [b[0], self.p_s * (b[0] + b[2]) - cost]
        else:
            q = [self._interp(k, 0, b), self._interp(k, 1, b) - cost]
        action = "regenerate" if q[1] > q[0] else "continue"
        return {"action": action, "belief": b, "shortcut": False}


def main() -> None:
    router = PomdpRouter(sys.argv[1])
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        step = json.loads(line)
        d = router.decide(step.get("prev_prm", []), step["prm"], step["tokens"])
        if "id" in step:
            d["id"] = step["id"]
        print(json.dumps(d), flush=True)


if __name__ == "__main__":
    main()
