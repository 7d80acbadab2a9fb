#!/usr/bin/env bash
# Regenerate every shipped dataset from its sources (see data/sets/README.md).
# Needs the raw third-party data next to the repo (../shared/data/raw), as on the dev machines.
set -euo pipefail
cd "$(dirname "$0")/.."
RAW="${RAW:-../shared/data/raw}"
cargo build --release -p trim
TRIM=("${CARGO_TARGET_DIR:-target}/release/trim")
"${TRIM[@]}" data synth
"${TRIM[@]}" data import processbench --raw "$RAW/processbench" --out data/sets/processbench.parquet
"${TRIM[@]}" data import gsm8k-paired --raw "$RAW/gsm8k_model_solutions" --out data/sets/gsm8k-paired.parquet
"${TRIM[@]}" data import paths --emit-example --from data/sets/gsm8k-paired.parquet \
  --out data/examples/paths-example.jsonl \
  --problem-ids gsm8k-test-0000,gsm8k-test-0001,gsm8k-test-0003,gsm8k-test-0006,gsm8k-test-0026
for f in data/sets/*.parquet; do "${TRIM[@]}" data validate "$f"; done
