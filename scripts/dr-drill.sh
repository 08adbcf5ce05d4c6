#!/usr/bin/env bash
# `make dr-drill`: the disaster-recovery runbook (docs/DISASTER-RECOVERY.md) run end to end.
# A simulated cluster behind a real sshd, a state store and an offsite store (two moto S3
# servers), real Terraform. It prepares what a real site has (an exported state, offsite
# copies), then loses the state store, two guests (a VM and a CT) and the node's archives,
# and runs every `dr-step` block of the runbook, in order, as the runbook writes it.
# Output: a step table with durations, RTO and RPO, the site restore's predicted and
# measured RTO; target/dr-drill/report.{jsonl,md}. Fails when a step fails, a target is
# missed, or the site's RTO prediction is off by more than 25 %.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/target/debug}
RUNBOOK=$ROOT/docs/DISASTER-RECOVERY.md
REPORT=${DR_REPORT:-$ROOT/target/dr-drill}
V=$ROOT/.ci-venv
# shellcheck source=scripts/lib/sim-sshd.sh
. "$ROOT/scripts/lib/sim-sshd.sh"

say() { printf 'dr-drill: %s\n' "$*" >&2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/pvedr-drill.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for t in pve-ls-backups pve-restore backup-sync backup-check minio-rebuild tfstate-versions; do
  [ -x "$BIN/$t" ] || { say "$BIN/$t is missing: run make build first"; exit 2; }
done
command -v jq >/dev/null || { say "jq is missing (scripts/system-deps.sh test)"; exit 2; }
./scripts/python-deps.sh >/dev/null

# --- the site before the disaster ------------------------------------------------------
export TZ=UTC PATH="$BIN:$ROOT/tests/sim/bin:$PATH"
export PVESIM_ROOT=$work/node PVESIM_NODE=pve1
python3 tests/sim/pvesim-admin init "$PVESIM_ROOT" --scenario demo --now "$(date +%s)" >/dev/null
start_sim_sshd "$work" "$PVESIM_ROOT"
pids+=("$SSHD_PID")

export AWS_ACCESS_KEY_ID=drill AWS_SECRET_ACCESS_KEY=drill-secret-key AWS_REGION=us-east-1
export TF_IN_AUTOMATION=1 TF_CLI_CONFIG_FILE=$V/terraformrc PATH="$PATH:$V/bin"
state_port=$(free_port)
offsite_port=$(free_port)
pids+=("$(start_moto "$V" "$state_port")" "$(start_moto "$V" "$offsite_port")")
export STATE_EP=http://127.0.0.1:$state_port OFFSITE_EP=http://127.0.0.1:$offsite_port
export OFFSITE=s3://offsite/pve STATE_EXPORT=$work/state-export TF_PROD=$work/prod
export NODE=pve1 VM=100 CT=101 PVE_SSH DR_OUT=$REPORT/records HISTORY=$work/drill-history.jsonl
rm -rf "$DR_OUT"; mkdir -p "$DR_OUT" "$TF_PROD"

s3() { "$V/bin/python" -c "import boto3, sys; s = boto3.client('s3', endpoint_url=sys.argv[1]); $2" "$1"; }
s3 "$STATE_EP" "s.create_bucket(Bucket='tfstate-prod'); s.put_bucket_versioning(Bucket='tfstate-prod', VersioningConfiguration={'Status': 'Enabled'})"
s3 "$OFFSITE_EP" "s.create_bucket(Bucket='offsite')"
write_tf_prod "$TF_PROD" "$STATE_EP" two
(cd "$TF_PROD" && terraform init -input=false >/dev/null \
  && for v in one two; do terraform apply -auto-approve -input=false -var v=$v >/dev/null; done)
# A hand-made copy (no date in its name) would be "newest" by its file time: not a backup
# the nightly job made, so not one this site copies offsite.
rm -f "$PVESIM_ROOT"/local/dump/vzdump-qemu-100-manual-copy.vma.zst
say "before: the state exported, the newest backups copied offsite"
tfstate-versions --endpoint "$STATE_EP" --env prod export --to "$STATE_EXPORT" >/dev/null
# shellcheck disable=SC2086
pve-ls-backups $PVE_SSH --node pve1 --storage local --latest \
  | backup-sync --endpoint "$OFFSITE_EP" push --yes --to "$OFFSITE" $PVE_SSH >/dev/null
# The site's scheduled drills left their records: what the site's RTO is predicted from.
say "before: the restore drills of guests $VM and $CT recorded in the drill history"
for g in "$VM" "$CT"; do
  # shellcheck disable=SC2086
  pve-restore $PVE_SSH --vmid "$g" --test --yes --drill-history "$HISTORY" >/dev/null
done
cp "$HISTORY" "$DR_OUT/drill-history.jsonl"

# --- the disaster ------------------------------------------------------------------------
say "disaster: the state store's data, guests $VM and $CT, and pve1's local archives are lost; pve1 is reinstalled with other storage and bridge names"
kill "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
pids[1]=$(start_moto "$V" "$state_port")
qm stop "$VM" >/dev/null && qm destroy "$VM" >/dev/null
pct stop "$CT" >/dev/null && pct destroy "$CT" >/dev/null
rm -f "$PVESIM_ROOT"/local/dump/*
# pve1 comes back reinstalled with other names: its thin pool is `nvme` (local-lvm is left to
# pve2 in storage.cfg), its bridge `vmbr9`; the runbook restores with maps ($MAPS).
python3 - "$PVESIM_ROOT" <<'PY'
import json, os, sys
root = sys.argv[1]
path = os.path.join(root, "storage.json")
storages = json.load(open(path, encoding="utf-8"))
for s in storages:
    if s["storage"] == "local-lvm":
        s["nodes"] = ["pve2"]
storages.append({"storage": "nvme", "type": "lvmthin", "content": "images,rootdir", "shared": 0,
                 "nodes": ["pve1"], "status": {"total": 10**12, "used": 0, "avail": 10**12}})
json.dump(storages, open(path, "w", encoding="utf-8"))
nets = {"pve1": [{"iface": "vmbr9", "type": "bridge"}, {"iface": "eno1", "type": "eth"}],
        "pve2": [{"iface": "vmbr0", "type": "bridge"}]}
json.dump(nets, open(os.path.join(root, "network.json"), "w", encoding="utf-8"))
PY
export MAPS="--target-storage local-lvm:nvme --target-bridge vmbr0:vmbr9"

# --- the runbook, as written -------------------------------------------------------------
# Each `dr-step NAME` block of the runbook, in order, as a file of its own.
mkdir -p "$work/steps" "$REPORT"
python3 - "$RUNBOOK" "$work/steps" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
for i, (name, body) in enumerate(re.findall(r"^```sh dr-step (\S+)\n(.*?)^```$", text, re.M | re.S)):
    open("%s/%02d-%s.sh" % (sys.argv[2], i, name), "w", encoding="utf-8").write(body)
PY
jsonl=$REPORT/report.jsonl
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
scenario="node archives, state store and two guests (VM $VM, CT $CT) lost; the node reinstalled with other storage and bridge names"
jq -cn --arg d "$date_utc" --arg s "$scenario" '{kind: "drill", date: $d, scenario: $s}' > "$jsonl"
failed=0
total_ms=0
for f in "$work"/steps/*.sh; do
  name=$(basename "$f" .sh)
  name=${name#*-}
  t0=$(date +%s%N)
  if bash -euo pipefail "$f" 2>"$DR_OUT/$name.err"; then status=ok; else status=failed; failed=$((failed + 1)); fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  total_ms=$((total_ms + ms))
  problem=""
  [ "$status" = ok ] || problem=$(tail -3 "$DR_OUT/$name.err" | tr '\n' ' ')
  jq -cn --arg s "$name" --arg st "$status" --argjson ms "$ms" --arg p "$problem" \
    '{kind: "step", step: $s, status: $st, duration_s: ($ms / 1000)} + (if $p == "" then {} else {message: $p} end)' >> "$jsonl"
  say "$(printf '%-16s %-7s %6d ms' "$name" "$status" "$ms")"
  [ "$status" = ok ] || { cat "$DR_OUT/$name.err" >&2; break; }
done
[ -n "$(ls "$work"/steps)" ] || { say "no dr-step block in $RUNBOOK"; exit 1; }

# RPO: the age of the oldest copy the guests came back from; the site restore's predicted and
# measured RTO, from its summary.
site=$(jq -c 'select(.kind == "summary")' "$DR_OUT/restore-site.jsonl" 2>/dev/null || true)
site=${site:-'{}'}
rpo=$(jq -r '.rpo_s // empty | floor' <<<"$site")
rpo=${rpo:-86400}
predicted=$(jq -r '.predicted_rto_s // empty' <<<"$site")
measured=$(jq -r '.rto_s // empty' <<<"$site")
error=$(jq -r '.prediction_error_pct // empty' <<<"$site")
# Off by more than 25 % either way (or not measured): the prediction cannot be trusted.
off=$(jq -n --arg e "$error" 'if $e == "" then 1 elif ($e | tonumber | fabs) > 25 then 1 else 0 end')
jq -cn --argjson ms "$total_ms" --argjson rpo "$rpo" --argjson f "$failed" --argjson site "$site" --argjson off "$off" \
  '{kind: "summary", rto_s: ($ms / 1000), rpo_s: $rpo, failed: $f, rto_target_s: 1800, rpo_target_s: 86400,
    site_predicted_rto_s: $site.predicted_rto_s, site_rto_s: $site.rto_s,
    site_prediction_error_pct: $site.prediction_error_pct, prediction_off: ($off == 1),
    exit_code: (if $f > 0 or $off == 1 then 1 else 0 end)}' >> "$jsonl"

{
  echo "# DR drill — $date_utc"
  echo
  echo "Scenario: $scenario."
  echo
  echo "| step | status | duration (s) |"
  echo "|---|---|---|"
  jq -r 'select(.kind == "step") | "| \(.step) | \(.status) | \(.duration_s * 10 | round / 10) |"' "$jsonl"
  echo
  jq -r 'select(.kind == "summary") | "RTO \(.rto_s | round) s (target 1800 s), RPO \(.rpo_s) s (target 86400 s)."' "$jsonl"
  echo
  jq -r 'select(.kind == "summary") | "Site restore (steps 3–5): predicted RTO \(.site_predicted_rto_s // "none") s, measured \(.site_rto_s // "none") s, prediction error \(.site_prediction_error_pct // "none") % (fails beyond 25 %)."' "$jsonl"
  echo
  echo "Problems found:"
  jq -r 'select(.kind == "step" and .message) | "- \(.step): \(.message)"' "$jsonl"
  [ "$off" -eq 0 ] || echo "- the site's RTO prediction is off by more than 25 % (${error:-not measured} %)"
  [ "$failed" -gt 0 ] || [ "$off" -eq 1 ] || echo "- none"
} > "$REPORT/report.md"
cat "$REPORT/report.md"
say "report: $REPORT/report.jsonl, $REPORT/report.md"
[ "$off" -eq 0 ] || say "the site's RTO prediction is off by more than 25 % (${error:-not measured} %)"
[ "$failed" -eq 0 ] && [ "$off" -eq 0 ] && [ "$total_ms" -lt 1800000 ] && [ "$rpo" -lt 86400 ]
