#!/usr/bin/env bash
# pve-restore's plan for 100 guests onto a reinstalled node with other storages and bridges
# (`--target-storage`, `--target-bridge`, `--all --dry-run`, every map check), against the
# shell way: per guest one `ssh node pvesh …` per check (the archive's config, the node's
# network, each target storage's status). One guest maps a disk onto a storage that holds
# no images: both must refuse that guest, and only it. The node's pvesh (and pvesm) takes
# 0.5 s to start, as Proxmox's does. Knobs: PLAN_GUESTS (100), PLAN_DELAY (0.5),
# BENCH_BIN_DIR (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N=${PLAN_GUESTS:-100}
DELAY=${PLAN_DELAY:-0.5}
BINS=${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
[ -x "$BINS/pve-restore" ] || cargo build --release -q -p pve-restore -p pve-ls-backups
[ -x /usr/sbin/sshd ] || { echo "pve-restore plan bench: needs openssh-server"; exit 0; }
work=$(mktemp -d); pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
G=$((1 << 30))

# The reinstalled node: `local` (no images), `nvme` (lvmthin) and `bulk` (dir); bridges
# vmbr0 and vmbr9. The backups name local-lvm, nas, vmbr0..2 (and one guest `tank`).
python3 tests/sim/pvesim-admin init "$work/node" --scenario empty >/dev/null
python3 - "$work/node" "$G" <<'PY'
import json, os, sys
root, G = sys.argv[1], int(sys.argv[2])
st = json.load(open(os.path.join(root, "storage.json")))
st += [{"storage": "nvme", "type": "lvmthin", "content": "images,rootdir", "shared": 0,
        "status": {"total": 4000 * G, "used": 1000 * G, "avail": 3000 * G}},
       {"storage": "bulk", "type": "dir", "path": os.path.join(root, "bulk"), "content": "images,rootdir",
        "shared": 0, "status": {"total": 8000 * G, "used": 2000 * G, "avail": 6000 * G}}]
json.dump(st, open(os.path.join(root, "storage.json"), "w"))
json.dump({"pve1": [{"iface": "vmbr0", "type": "bridge"}, {"iface": "vmbr9", "type": "bridge"},
                    {"iface": "eno1", "type": "eth"}]}, open(os.path.join(root, "network.json"), "w"))
PY
# Guest v: a CT when v % 3 == 0 (rootfs, 0–2 mount points), else a VM (1–3 disks, 1–3 NICs,
# some with a CPU type or a pinned machine); the last guest has a disk on `tank`.
last=$((100 + N - 1))
for i in $(seq 0 $((N - 1))); do
  v=$((100 + i)); f="$work/conf-$v"
  if [ $((v % 3)) = 0 ]; then
    kind=lxc
    {
      printf 'arch: amd64\nhostname: ct%s\nmemory: 512\nostype: debian\nunprivileged: 1\n' "$v"
      printf 'net0: name=eth0,bridge=vmbr%s,hwaddr=BC:24:11:01:%02X:00,ip=dhcp,type=veth\n' $((i % 3)) $((i % 256))
      printf 'rootfs: local-lvm:vm-%s-disk-0,size=%sG\n' "$v" $((4 + i % 8))
      for m in $(seq 1 $((i % 3))); do
        printf 'mp%s: nas:%s/vm-%s-disk-%s.raw,mp=/data%s,backup=1,size=%sG\n' $((m - 1)) "$v" "$v" "$m" "$m" $((10 * m))
      done
    } > "$f"
  else
    kind=qemu
    {
      printf 'boot: order=scsi0\ncores: 2\nmemory: 2048\nname: vm%s\nscsihw: virtio-scsi-single\n' "$v"
      [ $((i % 4)) = 0 ] && printf 'cpu: x86-64-v2-AES\n'
      [ $((i % 5)) = 0 ] && printf 'machine: pc-q35-8.1\n'
      for d in $(seq 0 $((i % 3))); do
        s=local-lvm; [ "$d" = 2 ] && s=nas; [ "$v" = "$last" ] && [ "$d" = 1 ] && s=tank
        printf 'scsi%s: %s:vm-%s-disk-%s,size=%sG\n' "$d" "$s" "$v" "$d" $((8 * (d + 1)))
      done
      for n in $(seq 0 $(((i + 1) % 3))); do
        printf 'net%s: virtio=BC:24:11:00:%02X:%02X,bridge=vmbr%s,firewall=1\n' "$n" $((i % 256)) "$n" "$n"
      done
    } > "$f"
    [ "$v" = "$last" ] && ! grep -q tank "$f" && printf 'scsi1: tank:vm-%s-disk-1,size=8G\n' "$v" >> "$f"
  fi
  python3 tests/sim/pvesim-admin add-backup "$work/node" --storage local --type "$kind" --vmid "$v" \
    --epoch 1705197602 --compress zstd --log none --config "$f" >/dev/null
done

sim_sshd "$work" "$DELAY"
SSH="ssh -n -q -o BatchMode=yes -o UserKnownHostsFile=$work/ssh/known -i $work/ssh/key -p $port root@127.0.0.1"

# The backups as pve-ls-backups lists them, by VMID. Among several records a guest the maps
# cannot place is refused on its own record and the others go on: exit 3 (since fc00c88;
# before, a usage error, exit 2, that ended the run).
"$BINS/pve-ls-backups" "${CONN[@]}" --storage local | jq -sc 'map(select(.kind == "backup")) | sort_by(.vmid)[]' > "$work/backups.jsonl"
[ "$(wc -l < "$work/backups.jsonl")" = "$N" ] || { echo "pve-restore plan bench: $N backups expected"; exit 1; }
SMAP=local-lvm:nvme,nas:bulk,tank:local
BMAP=vmbr1:vmbr9,vmbr2:vmbr9

ours() {
  "$BINS/pve-restore" "${CONN[@]}" --all --dry-run --no-archive-test --target-storage "$SMAP" \
    --target-bridge "$BMAP" < "$work/backups.jsonl" > "$work/ours.jsonl" 2> "$work/ours.err"
}

# The shell way, as an admin would script it: the VMIDs in use once, then per guest its
# config, the node's bridges and each target storage's status, each an ssh + pvesh.
shell_way() {
  local used volid vmid kind cfg nets refused t st key val b s size content
  declare -A smap=([local-lvm]=nvme [nas]=bulk [tank]=local) bmap=([vmbr1]=vmbr9 [vmbr2]=vmbr9)
  used=$($SSH pvesh get /cluster/resources --type vm --output-format json | jq -r '.[].vmid')
  : > "$work/theirs.txt"
  while read -r volid vmid kind; do
    refused=0
    grep -qx "$vmid" <<< "$used" && refused=1
    cfg=$($SSH pvesm extractconfig "$volid")
    nets=$($SSH pvesh get /nodes/pve1/network --type any_bridge --output-format json | jq -r '.[].iface')
    declare -A need=()
    while IFS=': ' read -r key val; do
      case "$key" in
        rootfs|mp[0-9]*|scsi[0-9]*|virtio[0-9]*|sata[0-9]*|ide[0-9]*) ;;
        net[0-9]*)
          b=$(grep -o 'bridge=[^,]*' <<< "$val" | cut -d= -f2 || true); b=${bmap[$b]:-$b}
          grep -qx "$b" <<< "$nets" || refused=1
          continue ;;
        *) continue ;;
      esac
      case "$val" in /*|*media=cdrom*|*backup=0*) continue ;; esac
      s=${val%%:*}; t=${smap[$s]:-$s}
      size=$(grep -o 'size=[0-9]*G' <<< "$val" | tr -dc 0-9 || true)
      need[$t]=$(( ${need[$t]:-0} + ${size:-0} * (1 << 30) ))
    done <<< "$cfg"
    content=images; [ "$kind" = lxc ] && content=rootdir
    for t in "${!need[@]}"; do
      if ! st=$($SSH pvesh get "/nodes/pve1/storage/$t/status" --output-format json 2>/dev/null); then
        refused=1; continue
      fi
      jq -e --arg c "$content" --argjson n "${need[$t]}" \
        '.enabled == 1 and .active == 1 and (.content | split(",") | index($c)) and .avail >= $n' \
        <<< "$st" > /dev/null || refused=1
    done
    unset need
    if [ "$refused" = 1 ]; then echo "$volid" >> "$work/theirs.txt"; fi
  done < <(jq -r '[.volid, .vmid, .subtype] | @tsv' "$work/backups.jsonl")
}

count_calls() { python3 -c 'import sys; print(sum(1 for _ in open(sys.argv[1])))' "$work/node/commands.log"; }
: > "$work/node/commands.log"
a=$(BENCH_OK=3 best ours)
calls_ours=$(( $(count_calls) / 3 ))
: > "$work/node/commands.log"
b=$(t shell_way)
calls_theirs=$(count_calls)
mem "\`pve-restore --all --dry-run\` with maps, $N guests" "$BINS/pve-restore" "${CONN[@]}" --all --dry-run \
  --no-archive-test --target-storage "$SMAP" --target-bridge "$BMAP" "$work/backups.jsonl"

# The same refusals: the guests pvedr refused (each on its own `refused` record) against
# the shell's.
jq -r 'select(.kind == "restore" and .status == "refused") | .volid' "$work/ours.jsonl" | sort > "$work/ours.txt"
sort -o "$work/theirs.txt" "$work/theirs.txt"
planned=$(jq -r 'select(.kind == "restore" and .status == "planned") | .volid' "$work/ours.jsonl" | wc -l)
if ! diff -u "$work/theirs.txt" "$work/ours.txt" || [ "$(wc -l < "$work/ours.txt")" != 1 ] || [ "$planned" != $((N - 1)) ]; then
  echo "pve-restore plan bench: refusals differ (or not $((N - 1)) plans)"; cat "$work/ours.err"; exit 1
fi
printf 'pve-restore plan  %d guests with maps, pvesh start-up %s s: pve-restore --all --dry-run %.2fs (%d node calls), ssh+pvesh per guest and check %.2fs (%d calls), ratio %.1fx; both refuse %s\n' \
  "$N" "$DELAY" "$a" "$calls_ours" "$b" "$calls_theirs" "$(ratio "$b" "$a")" "$(cat "$work/ours.txt")"
row "\`pve-restore --all --dry-run\` with storage and bridge maps over SSH, $N guests, pvesh $DELAY s" \
  "$(printf %.2fs "$a")" "a shell loop: one \`ssh … pvesh\`/\`pvesm\` per guest and check ($calls_theirs calls)" \
  "$(printf %.2fs "$b")" "$(ratio "$b" "$a")" \
  "$calls_ours node calls; the same refusal (1 guest); archive test off (\`--no-archive-test\`), as the loop reads no archive; loop: one run"
