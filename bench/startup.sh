#!/usr/bin/env bash
# Start-up of each tool (`--version`, mean of 20 runs) beside jq's and a boto3 script's,
# the alternatives the other benchmarks use.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
T=${CARGO_TARGET_DIR:-target}/release
PY=.ci-venv/bin/python
[ -x "$PY" ] || PY=python3
mean_ms() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
runs = 20
t0 = time.perf_counter()
for _ in range(runs):
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
print("%.1f" % ((time.perf_counter() - t0) / runs * 1000))
PY
}
boto=$(mean_ms "$PY" -c 'import boto3; boto3.client("s3", region_name="us-east-1")')
jq=$(mean_ms jq -n 1)
line="start-up (ms): jq $jq, python+boto3 $boto"
for tool in pve-ls-backups pve-restore backup-prune backup-check tfstate-versions minio-rebuild backup-sync pve-snapshot; do
  [ -x "$T/$tool" ] || cargo build --release -q -p "$tool"
  ms=$(mean_ms "$T/$tool" --version)
  line="$line, $tool $ms"
  [ -n "${BENCH_START:-}" ] && printf '| `%s` | %s ms |\n' "$tool" "$ms" >> "$BENCH_START"
done
[ -n "${BENCH_START:-}" ] && printf '| `jq -n 1` | %s ms |\n| python3 + boto3 client | %s ms |\n' "$jq" "$boto" >> "$BENCH_START"
echo "$line"
