#!/usr/bin/env bash
# make bench: every benchmark, each against the obvious alternative in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --workspace --bins
for b in bench/*.sh; do
  [ "$b" = bench/run.sh ] && continue
  bash "$b"
done
