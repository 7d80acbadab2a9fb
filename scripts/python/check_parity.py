"""Parity check of a `trim export`: safetensors (numpy) and ONNX (onnxruntime) must reproduce
the logits of the exporting burn model (parity.json) within its tolerance (1e-5).

    python scripts/python/check_parity.py EXPORT_DIR [--require-onnx]

Exit 0 and one line per format with the max |Δlogit|; exit 1 on any mismatch or bad export.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trim_router import Episode, ExportError, Router  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("export_dir")
    ap.add_argument("--require-onnx", action="store_true", help="fail if policy.onnx is missing")
    a = ap.parse_args()
    d = Path(a.export_dir)
    try:
        manifest = json.loads((d / "policy.json").read_text())
        fx = json.loads((d / "parity.json").read_text())
        obs = np.asarray(fx["obs"], dtype=np.float32)
        want = np.asarray(fx["logits"], dtype=np.float32)
        want_p = np.asarray(fx["probs"], dtype=np.float32)
        tol = float(fx["tolerance"])
        ok = True
        backends = []
        if "policy.safetensors" in manifest["files"]:
            backends.append("numpy")
        if "policy.onnx" in manifest["files"]:
            backends.append("onnx")
        elif a.require_onnx:
            print("FAIL: no policy.onnx in the export")
            return 1
        for b in backends:
            r = Router(d, backend=b)
            got = r.logits(obs)
            diff = float(np.max(np.abs(got - want)))
            # Batch sizes 1 and 3 exercise the symbolic batch axis.
            single = np.stack([r.logits(o) for o in obs[:3]])
            diff = max(diff, float(np.max(np.abs(single - want[:3]))))
            line = f"{b}: max |dlogit| = {diff:.3e} over {len(obs)} observations"
            if b == "onnx":
                probs = r.sess.run(["probs"], {"obs": obs})[0]
                pd = float(np.max(np.abs(probs - want_p)))
                line += f", max |dprob| = {pd:.3e}"
                diff = max(diff, pd)
            ok &= diff <= tol
            print(("ok   " if diff <= tol else "FAIL ") + line)
        if not backends:
            print("FAIL: export has neither safetensors nor onnx")
            return 1
        # The Python feature builder matches the manifest's definition on a sample history.
        ep = Episode(manifest["token_scale"], manifest["step_scale"])
        for k in (0.9, 0.5, 0.8):
            ep.push(k)
        f = ep.observe(0.3, 30)
        exp = np.array([0.5, 0.9 * 0.5 * 0.8, 0.3, 0.1, 0.1], dtype=np.float32)
        if not np.allclose(f, exp, atol=1e-6):
            print(f"FAIL features {f} != {exp}")
            ok = False
        return 0 if ok else 1
    except (ExportError, OSError, KeyError, ValueError) as e:
        print(f"FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
