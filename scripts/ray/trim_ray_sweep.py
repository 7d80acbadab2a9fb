#!/usr/bin/env python3
"""Run a `trim sweep` grid on a Ray cluster: one Ray task per run.

    python scripts/ray/trim_ray_sweep.py SPEC.toml --storage /shared/sweeps/exp1 \
        [--address auto] [--cpus-per-run 1] [--max-retries 3] [--trim PATH] \
        [-- any other `trim sweep` flags, e.g. --grid seed=1,2,3 --set passes=20]

The grid is never re-implemented here: the driver asks `trim sweep … --plan` for the runs (names,
configs, the command that trains each), submits `trim sweep … --index I --threads C` for every
unfinished run as a task with `num_cpus=C`, shows progress, and ends with
`trim sweep … --report-only` (the same report as a local sweep).

Storage: `--storage` becomes the sweep's `--out`; it must be one directory that every node sees
at the same path (NFS, a cluster file system, a mounted bucket with POSIX semantics). Runs train
in STORAGE/runs/.partial/<name>/ and are renamed to STORAGE/runs/<name>/ when finished. Relative
paths in the sweep (data files, --config) resolve from the directory the driver runs in, which
must be visible at the same path on every node too (or use absolute paths / synth specs).

Failures: a worker or node that dies takes its run with it (the run's `trim` process dies with
its worker: PR_SET_PDEATHSIG) and Ray retries the task up to --max-retries times; a run whose
`trim` exits non-zero is retried likewise. A retried run resumes from its last checkpoint; a run
another worker still holds is waited for, never trained twice at once. Every task first checks
that its node's `trim` binary exists and is byte-identical (sha256) to the driver's, and fails
loudly, without retrying, when it is not.
"""
import argparse
import ctypes
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time


class BinaryMismatch(Exception):
    """The node's trim binary is missing or differs from the driver's (not retried)."""


class RunFailed(Exception):
    """`trim sweep --index` exited non-zero (retried)."""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def die_with_parent():
    """In the child: receive SIGKILL when the Ray worker that started us dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_one(line, threads, logs_dir):
    """The body of a Ray task: train run `line` (one JSON line of --plan)."""
    argv = list(line["argv"])
    trim = os.environ.get("TRIM_BINARY", argv[0])
    host = socket.gethostname()
    if not os.path.isfile(trim):
        raise BinaryMismatch(f"{host}: no trim binary at {trim} (build or copy it to every node)")
    sha = sha256_file(trim)
    if sha != line["trim_sha256"]:
        raise BinaryMismatch(
            f"{host}: {trim} differs from the driver's binary (sha256 {sha[:12]}… vs "
            f"{line['trim_sha256'][:12]}…); deploy the same build everywhere")
    argv[0] = trim
    argv += ["--threads", str(threads)]
    os.makedirs(logs_dir, exist_ok=True)
    log_path = os.path.join(logs_dir, f"{line['name']}.log")
    with open(log_path, "ab") as log:
        log.write(f"== {time.strftime('%Y-%m-%dT%H:%M:%S')} {host} pid {os.getpid()}: "
                  f"{' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, cwd=line["cwd"], stdout=subprocess.PIPE, stderr=log,
                                preexec_fn=die_with_parent)
        out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RunFailed(f"{line['name']}: trim exited with {proc.returncode} on {host}; "
                        f"log: {log_path}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["host"] = host
    return result


def plan(trim, spec, storage, extra):
    cmd = [trim, "sweep", spec, "--out", storage, "--plan", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"trim sweep --plan failed:\n{p.stderr}")
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Flags after `--` are passed to every `trim sweep` call (--grid, --set, …).")
    ap.add_argument("spec", help="sweep TOML file")
    ap.add_argument("--storage", required=True,
                    help="shared directory every node sees at the same path (the sweep's --out)")
    ap.add_argument("--address", default=None,
                    help="Ray cluster address (auto, HOST:PORT, ray://…); default: a local cluster")
    ap.add_argument("--num-cpus", type=int, default=None,
                    help="CPUs of the local cluster (when no --address)")
    ap.add_argument("--cpus-per-run", type=int, default=1, help="num_cpus of each task (--threads)")
    ap.add_argument("--max-retries", type=int, default=3, help="retries per run")
    ap.add_argument("--trim", default="trim", help="the trim binary (same path on every node)")
    ap.add_argument("--no-report", action="store_true")
    argv = sys.argv[1:]
    # Everything after `--` goes to every `trim sweep` call unchanged.
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    trim = a.trim if os.path.sep in a.trim else (
        __import__("shutil").which(a.trim) or sys.exit(f"no `{a.trim}` on PATH (pass --trim)"))
    trim = os.path.abspath(trim)
    storage = os.path.abspath(a.storage)
    lines = plan(trim, a.spec, storage, extra)
    todo = [l for l in lines if l["status"] != "finished"]
    print(f"ray sweep: {len(lines)} runs, {len(lines) - len(todo)} finished, {len(todo)} to run "
          f"into {storage}", flush=True)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    if a.address:
        ray.init(address=a.address)
    else:
        ray.init(num_cpus=a.num_cpus, include_dashboard=False)
    task = ray.remote(run_one).options(
        num_cpus=a.cpus_per_run, max_retries=a.max_retries, retry_exceptions=[RunFailed])
    logs = os.path.join(storage, "logs")
    pending = {task.remote(l, a.cpus_per_run, logs): l for l in todo}
    failed, t0, done = [], time.time(), 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=10)
        for ref in ready:
            l = pending.pop(ref)
            done += 1
            try:
                r = ray.get(ref)
                print(f"[{done}/{len(todo)}] {l['name']}: {r['status']} after "
                      f"{r['updates_done']} updates on {r['host']} ({time.time() - t0:.0f} s)",
                      flush=True)
            except Exception as e:  # a RayTaskError wrapping ours, or a lost worker
                failed.append(l["name"])
                print(f"[{done}/{len(todo)}] {l['name']}: FAILED: {e}", flush=True)
    if failed:
        sys.exit(f"ray sweep: {len(failed)} runs failed: {', '.join(failed)} (logs in {logs}); "
                 f"re-run the same command to retry them")
    print(f"ray sweep: all {len(lines)} runs finished ({time.time() - t0:.1f} s)", flush=True)
    if not a.no_report:
        cmd = [trim, "sweep", a.spec, "--out", storage, "--report-only", *extra]
        if subprocess.run(cmd).returncode != 0:
            sys.exit("trim sweep --report-only failed")


if __name__ == "__main__":
    main()
