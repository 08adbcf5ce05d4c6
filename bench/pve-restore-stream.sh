#!/usr/bin/env bash
# pve-restore streaming an offsite copy (issue 27) against the two ways without it, in the
# same run, on the same archive: a VM of 1 GiB of disk that looks used (a third zero, a
# third random, a third text: `pvesim-admin archive --content disk`), zstd as vzdump writes
# it, pushed into a loopback moto by backup-sync; a simulated node behind a real sshd.
#   (a) pve-restore given the offsite record: ranged GETs, decompressed here, over SSH
#       into `qmrestore - N`;
#   (b) staged: the object downloaded to the node's disk (aws s3 cp, else boto3), then
#       `ssh node qmrestore FILE N`;
#   (c) the shell pipe: `aws s3 cp s3://… - | ssh node 'zstd -dc | qmrestore - N'`.
# Also pvedr's peak RSS and the archive bytes on the node's storages during (a), and the
# SSH data path alone: pvedr's transport (lib/examples/ssh_pipe.rs) against OpenSSH piping
# the same bytes into `cat > /dev/null` on the node, with the ciphers each negotiated.
# The restore's parts timed apart (S3 alone, S3 into SSH): lib/examples/s3_pipe.rs.
# BENCH_STREAM_MIB (default 1024) sets the disk's size, BENCH_SSH_MIB (default 256) the data path's bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
# sim-sshd.sh first: bench/lib.sh's start_moto (the one used here) replaces its own.
. scripts/lib/sim-sshd.sh
. bench/lib.sh
REL=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release}
for t in pve-restore backup-sync; do
  [ -x "$REL/$t" ] || cargo build --release -q -p "$t"
done
[ -x "$REL/examples/ssh_pipe" ] || cargo build --release -q -p pvedr --features s3 --example ssh_pipe
[ -x /usr/sbin/sshd ] || { echo "pve-restore-stream bench: needs openssh-server"; exit 0; }
MIB=${BENCH_STREAM_MIB:-1024}

work=$(mktemp -d); SSHD_PID=""; poller=""
start_moto pve-restore-stream
trap 'kill $MOTO_PID ${SSHD_PID:-} ${poller:-} 2>/dev/null; rm -rf "$work"' EXIT
export TZ=UTC
node=$work/node
python3 tests/sim/pvesim-admin init "$node" --scenario demo >/dev/null
start_sim_sshd "$work" "$node"
# The negotiated ciphers are in sshd's debug log.
echo 'LogLevel DEBUG1' >> "$work/ssh/sshd_config"
kill "$SSHD_PID"; wait "$SSHD_PID" 2>/dev/null || true
/usr/sbin/sshd -D -f "$work/ssh/sshd_config" -E "$work/ssh/sshd.log" & SSHD_PID=$!
wait_port "$SSHD_PORT"
# shellcheck disable=SC2206
SSH=(ssh -q -o BatchMode=yes -o "UserKnownHostsFile=$work/ssh/known_hosts" -i "$work/ssh/client_key" -p "$SSHD_PORT" "$(id -un)@127.0.0.1")

# The archive (kept between runs: writing it takes the simulator about a minute).
name=vzdump-qemu-100-2024_01_15-02_00_02.vma.zst
cache=${CARGO_TARGET_DIR:-target}/bench-cache/disk-$MIB-MiB.vma.zst
if [ ! -s "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  python3 tests/sim/pvesim-admin archive "$cache.tmp" --type qemu --vmid 100 --compress zstd \
    --size-kib $((MIB * 1024)) --content disk
  mv "$cache.tmp" "$cache"
fi
dump=$node/local/dump
cp "$cache" "$dump/$name"
raw=$(stat -c %s "$cache")
plain=$(zstd -dc "$cache" | wc -c)

# Pushed offsite by backup-sync from the node's dump directory, then the node's copy lost.
$PY -c "import boto3; boto3.client('s3').create_bucket(Bucket='offsite')"
printf '{"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/%s","vmid":100,"subtype":"qemu","ctime":1705284002,"time":"2024-01-15T02:00:02Z","size":%s,"format":"vma.zst"}\n' \
  "$name" "$raw" > "$work/one.jsonl"
"$REL/backup-sync" push --yes --to s3://offsite/pve --dir "$dump" "$work/one.jsonl" > /dev/null
"$REL/backup-sync" ls --from s3://offsite/pve | grep -F "$name" > "$work/offsite.jsonl"
key=$(jq -r '.url | sub("^s3://offsite/"; "")' "$work/offsite.jsonl")
rm -f "$dump"/*

# A new VMID for each restore (t runs in a subshell: the counter is a file).
echo 900 > "$work/vmid"
next() { local n; n=$(( $(cat "$work/vmid") + 1 )); echo "$n" > "$work/vmid"; echo "$n"; }
volume() { cat "$node/volumes/local-lvm/vm-$1-disk-0"; }
ours_once() {
  # shellcheck disable=SC2086
  "$REL/pve-restore" $PVE_SSH --yes --target-vmid "$(next)" < "$work/offsite.jsonl"
}
staged_once() {
  local n; n=$(next)
  if command -v aws > /dev/null; then
    aws s3 cp --only-show-errors "s3://offsite/$key" "$dump/$name"
  else
    $PY -c "import boto3, sys; boto3.client('s3').download_file('offsite', sys.argv[1], sys.argv[2])" "$key" "$dump/$name"
  fi
  "${SSH[@]}" qmrestore "local:backup/$name" "$n"
  rm -f "$dump/$name"
}
pipe_once() {
  local n; n=$(next)
  if command -v aws > /dev/null; then
    aws s3 cp --only-show-errors "s3://offsite/$key" -
  else
    $PY -c "import boto3, shutil, sys; shutil.copyfileobj(boto3.client('s3').get_object(Bucket='offsite', Key=sys.argv[1])['Body'], sys.stdout.buffer, 1 << 20)" "$key"
  fi | "${SSH[@]}" "zstd -dc | qmrestore - $n"
}
staged_by=$(command -v aws > /dev/null && echo "\`aws s3 cp\`" || echo "boto3 \`download_file\`")

# The archive bytes on the node's storages while (a) runs (files new or grown since the
# start, at their largest), sampled every 20 ms.
$PY - "$node" "$work/disk-max" <<'PY' & poller=$!
import json, os, sys, time
root, out = sys.argv[1], sys.argv[2]
dirs = [s["path"] for s in json.load(open(os.path.join(root, "storage.json"))) if s.get("path")]
def sizes():
    got = {}
    for d in dirs:
        for r, _, fs in os.walk(d):
            for f in fs:
                try:
                    got[os.path.join(r, f)] = os.path.getsize(os.path.join(r, f))
                except OSError:
                    pass
    return got
start, peak = sizes(), 0
while True:
    now = sizes()
    peak = max(peak, sum(max(0, n - start.get(p, 0)) for p, n in now.items()))
    with open(out, "w") as f:
        f.write(str(peak))
    time.sleep(0.02)
PY
sleep 0.3
# shellcheck disable=SC2086
"$REL/pve-restore" $PVE_SSH --yes --target-vmid 899 < "$work/offsite.jsonl" > "$work/ours.jsonl" 2> "$work/ours.log" \
  || { cat "$work/ours.log"; echo "pve-restore-stream bench: the streamed restore failed"; exit 1; }
kill "$poller"; wait "$poller" 2>/dev/null || true; poller=""
on_disk=$(cat "$work/disk-max")
want=$(volume 899)
[ -n "$want" ] || { echo "pve-restore-stream bench: the streamed restore left no disk"; exit 1; }
# shellcheck disable=SC2086
mem "\`pve-restore\` of an offsite record, $MIB MiB disk streamed" "$REL/pve-restore" $PVE_SSH --yes --target-vmid 898 "$work/offsite.jsonl" \
  | tee "$work/mem"
rss=$(grep -o '[0-9.]* MiB$' "$work/mem" | cut -d' ' -f1)
[ "$(volume 898)" = "$want" ] || { echo "pve-restore-stream bench: the measured restore left other data"; exit 1; }

a=$(best ours_once)
b=$(best staged_once)
c=$(best pipe_once)
# Every restore left the same data (the simulator's digest of the uncompressed VMA).
for n in $(seq 901 "$(cat "$work/vmid")"); do
  [ "$(volume "$n")" = "$want" ] || { echo "pve-restore-stream bench: VM $n holds other data"; exit 1; }
done

# The SSH data path alone: the same bytes into `cat > /dev/null` on the node. A second sshd
# offers only aes128-gcm (OpenSSL's AES-NI code, where libssh2's chacha20-poly1305 is
# portable C), and `--max-read 8192` gives the transport 8 KiB writes (std::io::copy's,
# before): each measured apart.
SSH_MIB=${BENCH_SSH_MIB:-256}
bytes=$((SSH_MIB * 1024 * 1024))
gcm_port=$(free_port)
sed -e "s/^Port .*/Port $gcm_port/" -e "s|^PidFile .*|PidFile $work/ssh/gcm.pid|" "$work/ssh/sshd_config" > "$work/ssh/gcm_config"
echo 'Ciphers aes128-gcm@openssh.com' >> "$work/ssh/gcm_config"
/usr/sbin/sshd -D -f "$work/ssh/gcm_config" -E "$work/ssh/gcm.log" & gcm_pid=$!
trap 'kill $MOTO_PID ${SSHD_PID:-} ${poller:-} $gcm_pid 2>/dev/null; rm -rf "$work"' EXIT
wait_port "$gcm_port"
printf '[127.0.0.1]:%s %s\n' "$gcm_port" "$(cut -d' ' -f1,2 "$work/ssh/host_key.pub")" >> "$work/ssh/known_hosts"
# ssh_ours PORT [--max-read N]
ssh_ours() {
  local port=$1; shift
  head -c "$bytes" /dev/zero | "$REL/examples/ssh_pipe" "$@" 127.0.0.1 "$port" "$(id -un)" \
    "$work/ssh/client_key" "$work/ssh/known_hosts" sh -c 'cat > /dev/null'
}
ssh_theirs() { head -c "$bytes" /dev/zero | "${SSH[@]:0:${#SSH[@]}-1}" "$@" "${SSH[-1]}" "sh -c 'cat > /dev/null'"; }
cipher() { grep -o 'kex: client->server cipher: [^ ]*' "$1" | tail -1 | cut -d' ' -f4; }
ssh_ours "$SSHD_PORT"; ours_cipher=$(cipher "$work/ssh/sshd.log")
ssh_theirs; their_cipher=$(cipher "$work/ssh/sshd.log")
d=$(best ssh_ours "$SSHD_PORT")
d8=$(best ssh_ours "$SSHD_PORT" --max-read 8192)
dc=$(best ssh_ours "$gcm_port")
dc8=$(best ssh_ours "$gcm_port" --max-read 8192)
e=$(best ssh_theirs)
eg=$(best ssh_theirs -c aes128-gcm@openssh.com)

mb() { echo "$1 / 1048576 / $2" | bc -l; }
printf 'pve-restore   %d MiB disk (%d MiB zstd, %d MiB VMA) from moto into qmrestore over SSH: streamed %.2fs, staged (%s + qmrestore FILE) %.2fs (%.2fx), shell pipe %.2fs (%.2fx); peak RSS %s MiB, archive bytes on the node %s\n' \
  "$MIB" $((raw >> 20)) $((plain >> 20)) "$a" "$staged_by" "$b" "$(ratio "$b" "$a")" "$c" "$(ratio "$c" "$a")" "$rss" "$on_disk"
mbs() { printf '%.2fs (%.0f MiB/s)' "$1" "$(mb "$bytes" "$1")"; }
printf 'ssh data path %d MiB into cat > /dev/null: pvedr (libssh2, %s, 256 KiB writes) %s; 8 KiB writes (before) %s; aes128-gcm %s, with 8 KiB writes %s; OpenSSH ssh (%s) %s, ssh -c aes128-gcm %s; ratio %.2fx (before %.2fx)\n' \
  "$SSH_MIB" "$ours_cipher" "$(mbs "$d")" "$(mbs "$d8")" "$(mbs "$dc")" "$(mbs "$dc8")" "$their_cipher" "$(mbs "$e")" "$(mbs "$eg")" \
  "$(ratio "$e" "$d")" "$(ratio "$e" "$d8")"
what="$MIB MiB disk ($((raw >> 20)) MiB zstd)"
row "\`pve-restore\` of an offsite record, $what, moto → qmrestore over SSH" "$(printf %.2fs "$a")" \
  "staged: $staged_by to the node's disk, then \`qmrestore FILE\`" "$(printf %.2fs "$b")" "$(ratio "$b" "$a")" \
  "goal ≥ 1.5×; $on_disk bytes of archive on the node during the restore (goal 0)"
row "\`pve-restore\` of an offsite record, $what, moto → qmrestore over SSH" "$(printf %.2fs "$a")" \
  "shell pipe: \`aws s3 cp … - \| ssh node 'zstd -dc \| qmrestore - N'\`" "$(printf %.2fs "$c")" "$(ratio "$c" "$a")" \
  "goal ≥ 1.0×; pvedr also checks the sha256 and sends the VMA uncompressed"
row "SSH data path, $SSH_MIB MiB into \`cat > /dev/null\` on the node (pvedr: libssh2, ${ours_cipher:-?}, 256 KiB writes)" "$(mbs "$d")" \
  "OpenSSH \`ssh node\` (${their_cipher:-?})" "$(mbs "$e")" "$(ratio "$e" "$d")" \
  "before (8 KiB writes): $(mbs "$d8"), $(printf %.2f "$(ratio "$e" "$d8")")×; aes128-gcm $(mbs "$dc"), with 8 KiB writes $(mbs "$dc8"); \`ssh -c aes128-gcm\` $(mbs "$eg")"
