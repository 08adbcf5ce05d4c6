#!/usr/bin/env bash
# backup-sync push vs boto3's managed upload (upload_file: multipart, 10 threads) of the
# same archives into the same moto server, in the same run. Prints the throughput ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${CARGO_TARGET_DIR:-target}/release/backup-sync
[ -x "$BIN" ] || cargo build --release -q -p backup-sync
work=$(mktemp -d)
start_moto backup-sync
trap 'kill $MOTO_PID; rm -rf "$work"' EXIT
$PY -c "import boto3; boto3.client('s3').create_bucket(Bucket='bench')"
# 4 archives of 64 MiB that do not compress, and their records.
JOBS=${JOBS:-2}
FILES=4 SIZE=$((64 * 1024 * 1024))
for i in $(seq 1 $FILES); do
  name="vzdump-qemu-10$i-2024_01_15-02_00_02.vma.zst"
  head -c "$SIZE" /dev/urandom > "$work/$name"
  printf '{"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/%s","vmid":10%s,"subtype":"qemu","ctime":1705284002,"time":"2024-01-15T02:00:02Z","size":%s,"format":"vma.zst"}\n' \
    "$name" "$i" "$SIZE" >> "$work/in.jsonl"
done
# A new prefix each run (t runs in a subshell): a second push would skip everything.
ours_once() { "$BIN" push --yes --to "s3://bench/ours$(date +%s%N)" --dir "$work" --jobs "$JOBS" --part-size 8M "$work/in.jsonl"; }
theirs_once() {
  $PY - "$work" "theirs$(date +%s%N)" <<'PY'
import boto3, os, sys
from boto3.s3.transfer import TransferConfig
d, prefix = sys.argv[1], sys.argv[2]
s3 = boto3.client('s3')
cfg = TransferConfig(multipart_chunksize=8 * 1024 * 1024)
for f in sorted(os.listdir(d)):
    if f.endswith('.zst'):
        s3.upload_file(os.path.join(d, f), 'bench', f'{prefix}/{f}', Config=cfg)
PY
}
# The same push encrypted to an age recipient (issue 29: goal ≥ 0.9× the plain rate).
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
enc_once() { "$BIN" push --yes --to "s3://bench/enc$(date +%s%N)" --dir "$work" --jobs "$JOBS" --part-size 8M --encrypt-to "$recipient" "$work/in.jsonl"; }
ours=$(best ours_once)
enc=$(best enc_once)
mem "\`backup-sync push --encrypt-to\`, $FILES × 64 MiB" "$BIN" push --yes --to "s3://bench/encmem$(date +%s%N)" --dir "$work" --jobs "$JOBS" --part-size 8M --encrypt-to "$recipient" "$work/in.jsonl"
mem "\`backup-sync push\`, $FILES × 64 MiB" "$BIN" push --yes --to "s3://bench/mem$(date +%s%N)" --dir "$work" --jobs "$JOBS" --part-size 8M "$work/in.jsonl"
theirs=$(best theirs_once)
# Both really uploaded everything: ours with a manifest per archive, theirs the archives.
count() { $PY -c "import boto3,sys; print(sum(o['Size'] == $SIZE for o in boto3.client('s3').list_objects_v2(Bucket='bench', Prefix=sys.argv[1]).get('Contents', [])))" "$1"; }
[ "$(count ours)" = $((3 * FILES)) ] && [ "$(count theirs)" = $((3 * FILES)) ] \
  || { echo "backup-sync bench: an upload is missing"; exit 1; }
mib=$((FILES * SIZE / 1024 / 1024))
printf 'backup-sync   push %d MiB (%d archives) into moto: backup-sync --jobs %d %.2fs (%.0f MiB/s, sha256 + manifest), boto3 upload_file %.2fs (%.0f MiB/s), ratio %.2fx\n' \
  "$mib" "$FILES" "$JOBS" "$ours" "$(echo "$mib / $ours" | bc -l)" "$theirs" "$(echo "$mib / $theirs" | bc -l)" "$(echo "$theirs / $ours" | bc -l)"
printf 'backup-sync   push --encrypt-to %d MiB: %.2fs (%.0f MiB/s), plain %.2fs, ratio %.2fx\n' \
  "$mib" "$enc" "$(echo "$mib / $enc" | bc -l)" "$ours" "$(echo "$ours / $enc" | bc -l)"
row "\`backup-sync push --encrypt-to\` (age), $mib MiB, into moto" "$(printf '%.2fs (%.0f MiB/s)' "$enc" "$(ratio "$mib" "$enc")")" \
  "the same push in the clear" "$(printf '%.2fs (%.0f MiB/s)' "$ours" "$(ratio "$mib" "$ours")")" \
  "$(ratio "$ours" "$enc")" "goal ≥ 0.9× (issue 29)"
row "\`backup-sync push\`, $FILES archives, $mib MiB, into moto" "$(printf '%.2fs (%.0f MiB/s)' "$ours" "$(ratio "$mib" "$ours")")" \
  "boto3 \`upload_file\` (multipart, 10 threads)" "$(printf '%.2fs (%.0f MiB/s)' "$theirs" "$(ratio "$mib" "$theirs")")" \
  "$(ratio "$theirs" "$ours")" "pvedr also hashes (sha256) and writes a manifest per archive"
