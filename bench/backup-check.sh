#!/usr/bin/env bash
# backup-check: (1) --deep on real zstd VMA archives vs `zstd -t` on the same files;
# (2) freshness over 100,000 records vs the obvious jq program. Same run, ratios printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/backup-check
[ -x "$BIN" ] || cargo build --release -q -p backup-check
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
best() { local b=999; for _ in 1 2 3; do x=$(t "$@"); b=$(echo "if ($x < $b) $x else $b" | bc); done; echo "$b"; }

# (1) 8 VMA archives of 64 MiB disk each, zstd-compressed, standard names.
mkdir -p "$work/dump"
for i in $(seq 0 7); do
  f="$work/dump/vzdump-qemu-$((100 + i))-2024_01_15-02_00_00.vma.zst"
  python3 tests/sim/pvesim-admin archive "$f" --type qemu --vmid $((100 + i)) --compress zstd --size-kib 65536 --seed "$i"
done
bytes=$(cat "$work"/dump/*.zst | zstd -dc | wc -c)
ours=$(best "$BIN" --dir "$work/dump" --deep --jobs 2 --now 1705300000 --timezone UTC)
seq_zstd=$(best sh -c "zstd -q -t $work/dump/*.zst")
par_zstd=$(best sh -c "ls $work/dump/*.zst | xargs -P2 -n1 zstd -q -t")
printf 'backup-check --deep  8 archives, %d MiB of VMA: backup-check %.3fs, zstd -t %.3fs (%.1fx), zstd -t with 2 processes %.3fs (%.1fx); backup-check also walks every VMA header and extent\n' \
  "$((bytes / 1048576))" "$ours" "$seq_zstd" "$(echo "$seq_zstd / $ours" | bc -l)" "$par_zstd" "$(echo "$par_zstd / $ours" | bc -l)"

# (2) 100,000 records: which guests' newest backup is older than 26h.
python3 bench/gen-records.py 100000 1000 > "$work/in.jsonl"
now=1705300000
ours=$(best sh -c "$BIN --now $now --timezone UTC < $work/in.jsonl")
JQ="group_by(.vmid) | map(max_by(.ctime)) | map(select(.ctime < $now - 93600)) | .[] | {vmid, ctime}"
theirs=$(best jq -c -s "$JQ" "$work/in.jsonl")
printf 'backup-check  100000 records, freshness per guest: backup-check %.3fs (all checks), jq -s %.3fs (freshness only), ratio %.1fx\n' \
  "$ours" "$theirs" "$(echo "$theirs / $ours" | bc -l)"
