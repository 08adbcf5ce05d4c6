#!/usr/bin/env bash
# make bench: every benchmark, each against the obvious alternative in the same run, then
# one Markdown report (bench/results.md) with the machine it ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --workspace --bins
cargo build --release -q -p pvedr --features s3 --example ssh_pipe
out=bench/results.md
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export BENCH_TABLE=$tmp/table BENCH_MEM=$tmp/mem BENCH_START=$tmp/start
: > "$BENCH_TABLE"; : > "$BENCH_MEM"; : > "$BENCH_START"
for b in bench/backup-check.sh bench/backup-prune.sh bench/pve-ls-backups.sh bench/pve-restore-plan.sh \
         bench/backup-sync.sh bench/pve-restore-stream.sh bench/tfstate-versions.sh bench/startup.sh; do
  bash "$b"
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo "Run with \`make bench\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'):"
  echo "$(nproc) CPUs ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, Linux $(uname -r);"
  echo "$(zstd --version | grep -o 'v[0-9.]*' | head -1) zstd, $(jq --version), moto $(.ci-venv/bin/python -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')."
  echo "Times are the best of 3 runs unless said; ratio = alternative / pvedr (above 1: pvedr is faster)."
  echo
  echo "| benchmark | pvedr | alternative | its time | ratio | note |"
  echo "|---|---|---|---|---|---|"
  cat "$BENCH_TABLE"
  echo
  echo "| peak memory (max RSS) | |"
  echo "|---|---|"
  cat "$BENCH_MEM"
  echo
  echo "| start-up (\`--version\`, mean of 20) | |"
  echo "|---|---|"
  cat "$BENCH_START"
} > "$out"
echo
cat "$out"
