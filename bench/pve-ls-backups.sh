#!/usr/bin/env bash
# pve-ls-backups --all-nodes over SSH vs the shell way (one `ssh node pvesh …` per node and
# per storage), on a simulated cluster of 3 nodes with 3 backup storages each, whose pvesh
# takes 0.5 s to start, as Proxmox's does.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${CARGO_TARGET_DIR:-target}/release/pve-ls-backups
[ -x "$BIN" ] || cargo build --release -q -p pve-ls-backups
[ -x /usr/sbin/sshd ] || { echo "pve-ls-backups bench: needs openssh-server"; exit 0; }
work=$(mktemp -d); pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 tests/sim/pvesim-admin init "$work/node" --scenario empty >/dev/null
python3 - "$work/node" <<'PY'
import json, os, sys
root = sys.argv[1]
cluster = json.load(open(os.path.join(root, "cluster.json")))
cluster["cluster"] = "bench"
cluster["nodes"] = [{"node": "pve%d" % n, "status": "online", "ip": "127.0.0.1"} for n in (1, 2, 3)]
json.dump(cluster, open(os.path.join(root, "cluster.json"), "w"))
st = []
for n in (1, 2, 3):
    for i in range(3):
        p = os.path.join(root, "n%d-s%d" % (n, i))
        os.makedirs(os.path.join(p, "dump"), exist_ok=True)
        st.append({"storage": "store%d%d" % (n, i), "type": "dir", "path": p, "content": "backup",
                   "shared": 0, "nodes": ["pve%d" % n]})
json.dump(st, open(os.path.join(root, "storage.json"), "w"))
PY
for n in 1 2 3; do for i in 0 1 2; do for d in $(seq 1 20); do
  python3 tests/sim/pvesim-admin add-backup "$work/node" --storage "store$n$i" --type qemu --vmid $((100 + n * 10 + i)) --epoch $((1705300000 - d * 86400)) --compress none --log none >/dev/null
done; done; done
sim_sshd "$work" 0.5
SSH="ssh -q -o BatchMode=yes -o UserKnownHostsFile=$work/ssh/known -i $work/ssh/key -p $port root@127.0.0.1"
ours() { "$BIN" "${CONN[@]}" --all-nodes > "$work/ours.jsonl"; }
shell_way() {
  for node in $($SSH pvesh get /nodes --output-format json | jq -r '.[].node'); do
    for st in $($SSH pvesh get "/nodes/$node/storage" --content backup --output-format json | jq -r '.[].storage'); do
      $SSH pvesh get "/nodes/$node/storage/$st/content" --content backup --output-format json | jq -c '.[]'
    done
  done > "$work/theirs.jsonl"
}
a=$(best ours); b=$(best shell_way)
mem "\`pve-ls-backups --all-nodes\`, 3 nodes × 3 storages" "$BIN" "${CONN[@]}" --all-nodes
n_ours=$(grep -c '"kind":"backup"' "$work/ours.jsonl"); n_theirs=$(wc -l < "$work/theirs.jsonl")
[ "$n_ours" = "$n_theirs" ] || { echo "pve-ls-backups bench: $n_ours records, the shell way $n_theirs"; exit 1; }
printf 'pve-ls-backups  3 nodes x 3 storages, %d backups, pvesh start-up 0.5 s: pve-ls-backups --all-nodes %.2fs, ssh+pvesh per node and storage %.2fs, ratio %.1fx\n' \
  "$n_ours" "$a" "$b" "$(ratio "$b" "$a")"
row "\`pve-ls-backups --all-nodes\` over SSH, 3 nodes × 3 storages, $n_ours backups, pvesh 0.5 s" \
  "$(printf %.2fs "$a")" "one \`ssh … pvesh\` per node and storage (13 calls)" "$(printf %.2fs "$b")" "$(ratio "$b" "$a")" \
  "one connection, calls in parallel"
