#!/usr/bin/env bash
# pve-ls-backups over SSH vs the shell way (one `ssh node pvesh …` per storage), on a
# simulated node with 8 backup storages whose pvesh takes 0.3 s to start, as Proxmox's does.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/pve-ls-backups
[ -x "$BIN" ] || cargo build --release -q -p pve-ls-backups
[ -x /usr/sbin/sshd ] || { echo "pve-ls-backups bench: needs openssh-server"; exit 0; }
work=$(mktemp -d); pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 tests/sim/pvesim-admin init "$work/node" --scenario empty >/dev/null
python3 - "$work/node" <<'PY'
import json, os, sys
root = sys.argv[1]
st = []
for i in range(8):
    p = os.path.join(root, "s%d" % i)
    os.makedirs(os.path.join(p, "dump"), exist_ok=True)
    st.append({"storage": "store%d" % i, "type": "dir", "path": p, "content": "backup", "shared": 0})
json.dump(st, open(os.path.join(root, "storage.json"), "w"))
PY
for i in $(seq 0 7); do for d in 1 2 3 4 5; do
  python3 tests/sim/pvesim-admin add-backup "$work/node" --storage store$i --type qemu --vmid $((100 + i)) --epoch $((1705300000 - d * 86400)) --compress none --log none >/dev/null
done; done
mkdir -p "$work/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/key"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'environment="PATH=%s:/usr/bin:/bin",environment="PVESIM_ROOT=%s",environment="PVESIM_DELAY=0.3",environment="TZ=UTC" %s\n' \
  "$PWD/tests/sim/bin" "$work/node" "$(cat "$work/ssh/key.pub")" > "$work/ssh/authorized_keys"
printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s/host_key\nAuthorizedKeysFile %s/authorized_keys\nPidFile %s/pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nPermitUserEnvironment yes\nMaxStartups 100\n' \
  "$port" "$work/ssh" "$work/ssh" "$work/ssh" > "$work/ssh/config"
/usr/sbin/sshd -D -f "$work/ssh/config" -E "$work/ssh/log" & pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$work/ssh/host_key.pub")" > "$work/ssh/known"
SSH="ssh -q -o BatchMode=yes -o UserKnownHostsFile=$work/ssh/known -i $work/ssh/key -p $port root@127.0.0.1"
ours() { "$BIN" --host 127.0.0.1 --port "$port" --identity "$work/ssh/key" --known-hosts "$work/ssh/known" --node pve1 > "$work/ours.jsonl"; }
shell_way() {
  for st in $($SSH pvesh get /nodes/pve1/storage --content backup --output-format json | jq -r '.[].storage'); do
    $SSH pvesh get "/nodes/pve1/storage/$st/content" --content backup --output-format json | jq -c '.[]'
  done > "$work/theirs.jsonl"
}
t() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc; }
a=$(t ours); b=$(t shell_way)
printf 'pve-ls-backups  8 storages, 40 backups, pvesh start-up 0.3 s: pve-ls-backups %.2fs (%d records), ssh+pvesh per storage %.2fs (%d entries), ratio %.1fx\n' \
  "$a" "$(wc -l < "$work/ours.jsonl")" "$b" "$(wc -l < "$work/theirs.jsonl")" "$(echo "$b / $a" | bc -l)"
