#!/usr/bin/env python3
"""External grader for `trim collect --grader` backed by the `math-verify` package.

Protocol (one JSON object per line): trim writes
    {"solution": "<whole solution text>", "answer": "<its extracted \\boxed{} answer or null>",
     "reference": "<reference answer>"}
and reads back
    {"correct": true|false, "answer": "<what was compared>"}

Install: pip install math-verify   (https://github.com/huggingface/Math-Verify)
Use:     trim collect --config collect.toml --grader "python3 scripts/python/math_verify_grader.py"

With --exact (no dependency), answers are compared as stripped strings; trim's tests use that
mode so they need nothing beyond Python.
"""
import json
import sys


def main() -> None:
    exact = "--exact" in sys.argv[1:]
    if not exact:
        from math_verify import parse, verify  # imported once: the process stays up

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        answer = req.get("answer")
        reference = str(req["reference"])
        if exact:
            correct = answer is not None and answer.strip() == reference.strip()
        else:
            gold = parse("$" + reference + "$")
            pred = parse(req["solution"])
            correct = bool(gold) and bool(pred) and bool(verify(gold, pred))
        sys.stdout.write(json.dumps({"correct": correct, "answer": answer}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
