#!/usr/bin/env python3
"""Fit the MATH-500 profile's PRM flag rates on the release's real TRIM-Thr curve.

For every (difficulty_sd, flag_s2, flag_s1, flag_s0, flag_max, regen_tokens_factor) on a grid, generate a world from
data/synth/math500-qwen2.5.toml with those rates (`trim data synth --config`), replay TRIM-Thr at
the release's 21 thresholds on all of its problems (`trim data calibrate --check --json --split
all`) and score it: mean |Δaccuracy| plus penalties for cost-fraction and strong-call deviations
beyond the issue's tolerances. Prints every grid point and the best one; the chosen values are then
written into the profile by hand (with this script's output in the commit message).

Only the real curve and the MATH-train statistics the generator already uses are fitted on.

Usage: python3 scripts/calibration/fit_math500.py [--trim target/release/trim] [--problems 1500]
"""
import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = os.path.join(ROOT, "data/synth/math500-qwen2.5.toml")


def with_params(text, sd, s2, s1, s0, fmax, rf):
    for key, v in (("difficulty_sd", sd), ("flag_s2", s2), ("flag_s1", s1), ("flag_s0", s0),
                   ("flag_max", fmax), ("regen_tokens_factor", rf)):
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {v}", text, flags=re.M)
        if n != 1:
            sys.exit(f"{PROFILE}: no single `{key} = …` line to set")
    return text


def score(check):
    """Deviations in units of their tolerances, accuracy first: mean/2pt + worst/5pt, plus a
    tenth of cost/0.03 and of calls/0.3 (the model cannot yet reach the cost tolerance, and a
    score dominated by it would trade accuracy for cost)."""
    rows = check["rows"]
    cost = max(abs(w["cost_fraction"] - r["cost_fraction"]) for r, w in rows)
    calls = max(abs(w["strong_calls"] - r["strong_calls"]) for r, w in rows)
    s = (check["mean_abs_accuracy_dev"] / 0.02 + check["worst_accuracy_dev"] / 0.05
         + 0.1 * cost / 0.03 + 0.1 * calls / 0.3)
    return s, cost, calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trim", default=os.path.join(ROOT, "target/release/trim"))
    ap.add_argument("--problems", type=int, default=1500)
    ap.add_argument("--sd", default="1.0,1.5")
    ap.add_argument("--s2", default="0.1,0.2,0.3")
    ap.add_argument("--s1", default="0.2,0.4")
    ap.add_argument("--s0", default="0.1,0.2")
    ap.add_argument("--flag-max", default="0.05,0.3")
    ap.add_argument("--regen-factor", default="1.0")
    a = ap.parse_args()
    base = open(PROFILE).read()
    grid = [[float(x) for x in g.split(",")] for g in (a.sd, a.s2, a.s1, a.s0, a.flag_max, a.regen_factor)]
    best = None
    with tempfile.TemporaryDirectory() as d:
        for sd, s2, s1, s0, fmax, rf in itertools.product(*grid):
            cfg = os.path.join(d, "p.toml")
            out = os.path.join(d, "w.parquet")
            open(cfg, "w").write(with_params(base, sd, s2, s1, s0, fmax, rf))
            if os.path.exists(out):
                os.remove(out)
            subprocess.run([a.trim, "data", "synth", "--config", cfg, "--problems",
                            str(a.problems), "--out", out], check=True, capture_output=True)
            res = subprocess.run([a.trim, "data", "calibrate", "--check", out, "--split", "all",
                                  "--json"], check=True, capture_output=True, text=True)
            check = json.loads(res.stdout)
            s, cost, calls = score(check)
            print(f"sd={sd:<5} s2={s2:<5} s1={s1:<5} s0={s0:<5} max={fmax:<5} rf={rf:<5} score {s:.4f}  mean|Δacc| "
                  f"{100 * check['mean_abs_accuracy_dev']:.1f}pt worst "
                  f"{100 * check['worst_accuracy_dev']:.1f}pt |Δcost| {cost:.3f} |Δcalls| {calls:.2f}"
                  f" ends {100 * check['endpoint_devs'][0]:.1f}/{100 * check['endpoint_devs'][1]:.1f}pt",
                  flush=True)
            if best is None or s < best[0]:
                best = (s, sd, s2, s1, s0, fmax, rf)
    print(f"best: difficulty_sd = {best[1]}, flag_s2 = {best[2]}, flag_s1 = {best[3]}, "
          f"flag_s0 = {best[4]}, flag_max = {best[5]}, regen_tokens_factor = {best[6]} "
          f"(score {best[0]:.4f})")


if __name__ == "__main__":
    main()
