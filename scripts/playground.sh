#!/usr/bin/env bash
# `make playground`: a simulated cluster, a real sshd in front of it and a local S3 (moto)
# that stay after the command ends, so the tools can be tried by hand. Everything lives in
# target/playground; `make playground-stop` stops the servers and removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${PLAYGROUND:-$ROOT/target/playground}
BIN=$ROOT/target/debug
V=$ROOT/.ci-venv
# shellcheck source=scripts/lib/sim-sshd.sh
. "$ROOT/scripts/lib/sim-sshd.sh"

say() { printf 'playground: %s\n' "$*" >&2; }

stop() {
  local f pid
  for f in "$DIR"/*.pid "$DIR"/ssh/sshd.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$DIR"
  say "stopped and removed $DIR"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "${1:-}" = stop ]; then stop; exit 0; fi
if alive "$DIR/moto.pid" && [ -f "$DIR/env.sh" ]; then
  say "already running: . $DIR/env.sh"
  exit 0
fi
[ -d "$DIR" ] && stop
mkdir -p "$DIR"
[ -x "$BIN/pve-ls-backups" ] || cargo build --workspace --bins
export TF_CLI_CONFIG_FILE=$V/terraformrc TF_IN_AUTOMATION=1
./scripts/python-deps.sh >/dev/null

python3 tests/sim/pvesim-admin init "$DIR/node" --scenario demo --now "$(date +%s)" >/dev/null
port=$(free_port)
# setsid: the servers outlive this script and make's process group.
setsid "$V/bin/moto_server" -H 127.0.0.1 -p "$port" >"$DIR/moto.log" 2>&1 < /dev/null &
wait_port "$port"
# The server's own pid (setsid may have forked): the one that listens on the port.
pgrep -f "moto_server -H 127.0.0.1 -p $port\$" > "$DIR/moto.pid"
"$V/bin/python" - "http://127.0.0.1:$port" <<'PY'
import sys, boto3
s = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="play",
                 aws_secret_access_key="playground", region_name="us-east-1")
s.create_bucket(Bucket="offsite")
s.create_bucket(Bucket="tfstate-prod")
s.put_bucket_versioning(Bucket="tfstate-prod", VersioningConfiguration={"Status": "Enabled"})
PY

ssh_line=""
if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null; then
  start_sim_sshd "$DIR" "$DIR/node"
  disown "$SSHD_PID" 2>/dev/null || true
  ssh_line="export PVE_SSH='$PVE_SSH'"
fi

cat > "$DIR/env.sh" <<ENV
# Source this file: the tools and the simulated node (pve1 of a cluster pve1, pve2, pve3).
export PATH="$BIN:$ROOT/tests/sim/bin:\$PATH"
export PVESIM_ROOT="$DIR/node" PVESIM_NODE=pve1 TZ=UTC
export AWS_ACCESS_KEY_ID=play AWS_SECRET_ACCESS_KEY=playground AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export TF_CLI_CONFIG_FILE="$V/terraformrc" TF_IN_AUTOMATION=1 PATH="\$PATH:$V/bin"
$ssh_line
ENV

cat >&2 <<MSG
playground: a simulated cluster in $DIR/node, S3 (moto) on 127.0.0.1:$port with buckets
offsite and tfstate-prod${ssh_line:+, and an sshd in front of the node}. Try:

  . $DIR/env.sh
  pve-ls-backups --all-nodes
  pve-ls-backups --latest | backup-check
  pve-ls-backups --vmid 100 --latest | pve-restore --test --yes
  pve-ls-backups --latest | backup-sync push --to s3://offsite/pve --yes
  backup-sync ls --from s3://offsite/pve --format table
  pve-snapshot create --vmid 100 --label try --yes
  minio-rebuild --env prod --yes${ssh_line:+
  pve-ls-backups \$PVE_SSH --all-nodes       # the same over SSH}

The simulator's state is plain files (tests/sim/README, docs/simulator.md). Stop it all:
  make playground-stop
MSG
