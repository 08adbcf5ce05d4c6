#!/usr/bin/env bash
# backup-check: (1) --deep on zstd VMA archives whose disks look used (a third zero clusters,
# a third random, a third text: compressed about 2.3:1 like a real disk) vs `zstd -t` on the
# same files, one big archive and several; (2) 100,000 records vs the obvious jq program;
# (3) the peak memory of 1,000,000 records.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BENCH_OK="0 1 2"  # backup-check's OK, WARNING and CRITICAL (the records are old on purpose)
BIN=${CARGO_TARGET_DIR:-target}/release/backup-check
[ -x "$BIN" ] || cargo build --release -q -p backup-check
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
arch() { # DIR VMID SIZE_MIB
  python3 tests/sim/pvesim-admin archive "$1/vzdump-qemu-$2-2024_01_15-02_00_00.vma.zst" \
    --type qemu --vmid "$2" --compress zstd --size-kib $(($3 * 1024)) --seed "$2" --content disk
}
mkdir -p "$work/one" "$work/four"
arch "$work/one" 100 256 & arch "$work/four" 101 64 & wait
arch "$work/four" 102 64 & arch "$work/four" 103 64 & wait
arch "$work/four" 104 64
deep() { # DIR LABEL
  local files mib zst ours seq par
  files=$(ls "$1"/*.zst | wc -l)
  mib=$(( $(cat "$1"/*.zst | zstd -dc | wc -c) / 1048576 ))
  zst=$(( $(cat "$1"/*.zst | wc -c) / 1048576 ))
  ours=$(best "$BIN" --dir "$1" --deep --jobs 2 --now 1705300000 --timezone UTC)
  seq=$(best sh -c "zstd -q -t $1/*.zst")
  par=$(best sh -c "ls $1/*.zst | xargs -P2 -n1 zstd -q -t")
  printf 'backup-check --deep  %s: %d archive(s), %d MiB of VMA in %d MiB zstd: backup-check %.3fs, zstd -t %.3fs (%.2fx), zstd -t in 2 processes %.3fs (%.2fx)\n' \
    "$2" "$files" "$mib" "$zst" "$ours" "$seq" "$(ratio "$seq" "$ours")" "$par" "$(ratio "$par" "$ours")"
  row "\`backup-check --deep\`, $2 ($files × VMA, $mib MiB in $zst MiB zstd)" "$(printf %.2fs "$ours")" \
    "\`zstd -t\` in 2 processes" "$(printf %.2fs "$par")" "$(ratio "$par" "$ours")" \
    "pvedr also walks every VMA header and extent; 1 process: $(printf %.2f "$(ratio "$seq" "$ours")")×"
}
deep "$work/one" "one archive"
mem "\`backup-check --deep\`, one archive (256 MiB disk)" "$BIN" --dir "$work/one" --deep --now 1705300000 --timezone UTC
deep "$work/four" "four archives"

# (2) 100,000 records: which guests' newest backup is older than 26h. The listing ends with
# its `listing` record, as pve-ls-backups writes it (without it backup-check says UNKNOWN:
# cut short); jq reads the records alone.
python3 bench/gen-records.py 100000 1000 > "$work/in.jsonl"
end() { printf '{"kind":"listing","complete":true,"records":%d}\n' "$1" > "$work/end-$1.jsonl"; }
end 100000
now=1705300000
ours=$(best "$BIN" --now $now --timezone UTC "$work/in.jsonl" "$work/end-100000.jsonl")
JQ="group_by(.vmid) | map(max_by(.ctime)) | map(select(.ctime < $now - 93600)) | .[] | {vmid, ctime}"
theirs=$(best jq -c -s "$JQ" "$work/in.jsonl")
mem "\`backup-check\`, 100,000 records" "$BIN" --now $now --timezone UTC "$work/in.jsonl" "$work/end-100000.jsonl"
mem "\`jq -s\` freshness, 100,000 records" jq -c -s "$JQ" "$work/in.jsonl"
printf 'backup-check  100000 records, freshness per guest: backup-check %.3fs (all checks), jq -s %.3fs (freshness only), ratio %.1fx\n' \
  "$ours" "$theirs" "$(ratio "$theirs" "$ours")"
row "\`backup-check\`, 100,000 records (1,000 guests)" "$(printf %.3fs "$ours")" "\`jq -s\` (freshness only)" \
  "$(printf %.3fs "$theirs")" "$(ratio "$theirs" "$ours")" "pvedr runs every check"

# (3) 1,000,000 records (1,000 guests × 1,000 backups, 245 MB): peak memory, the records
# folded into per-guest summaries as they are read; one run for the time.
python3 bench/gen-records.py 1000000 1000 > "$work/in-1m.jsonl"
end 1000000
mem "\`backup-check\`, 1,000,000 records" "$BIN" --now $now --timezone UTC "$work/in-1m.jsonl" "$work/end-1000000.jsonl"
one=$(t "$BIN" --now $now --timezone UTC "$work/in-1m.jsonl" "$work/end-1000000.jsonl")
printf 'backup-check  1000000 records: %.2fs (one run)\n' "$one"
