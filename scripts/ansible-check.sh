#!/usr/bin/env bash
# CI check of contrib/ansible: ansible-lint (production profile) on the role and the example
# playbook, then the role applied to this machine (-c local) into temporary prefixes, one per
# inventory host, with the .deb given relative to where ansible-playbook runs (as the README's
# one-liner does):
#   - offsite on, hosts pve1 and pve2, twice: the package unpacked, the configuration written
#     with mode 0600 and its values read back as systemd reads them, the secret never in
#     Ansible's output, the cluster-wide timers (backup-check, the restore drill) scheduled on
#     pve1 only and the per-node one (backup-sync) on both, and the second run changes nothing;
#   - no S3 settings at all: installed and checked, no S3 line in the configuration, no
#     backup-sync timer;
#   - a .deb that is not there: the play stops at once saying to give an absolute path;
#   - the example playbook with stub tools that report a CRITICAL backup: the failing check
#     is shown before the play fails, and the cluster-wide check ran once for two hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt-need.sh
say() { echo "ansible-check: $*" >&2; }
fail() { echo "ansible-check: FAIL: $*" >&2; exit 1; }

apt_need ansible command -v ansible-playbook
apt_need ansible-lint command -v ansible-lint
apt_need systemd command -v systemd-analyze
apt_need jq command -v jq

(cd contrib/ansible && ansible-lint --offline -q roles/pvedr playbook-example.yml) ||
  fail "ansible-lint"
say "ansible-lint clean (role and example playbook)"

# PVEDR_DEB: a package built already (make deb otherwise).
deb=${PVEDR_DEB:-$(make -s --no-print-directory deb | tail -n 1)}
[ -f "$deb" ] || fail "make deb left no package ($deb)"
# Relative to this directory, where ansible-playbook runs: the role must resolve it here.
rel_deb=$(realpath --relative-to="$PWD" "$deb")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
secret='ci-"secret"-$HOME-\x'
token_secret='0b1c2d3e-api-$PATH'

# One prefix per host, all on this machine.
inventory() {
  echo "[pve]"
  for h in "$@"; do
    r=$tmp/$h
    echo "$h ansible_connection=local pvedr_prefix=$r pvedr_etc=$r/etc/pvedr pvedr_systemd_dir=$r/etc/systemd/system pvedr_cache_dir=$tmp/cache-$h"
  done
}
inventory pve1 pve2 > "$tmp/offsite.ini"
inventory pve3 > "$tmp/bare.ini"
inventory pve4 pve5 > "$tmp/example.ini"

cat > "$tmp/offsite.json" <<JSON
{"pvedr_deb": "$rel_deb", "pvedr_enable_timers": false,
 "pvedr_host": "pve1", "pvedr_s3_endpoint": "http://127.0.0.1:9000",
 "pvedr_s3_bucket": "pvedr-offsite", "pvedr_s3_prefix": "pve1/dump",
 "pvedr_s3_access_key_id": "ci-key", "pvedr_s3_secret_access_key": $(jq -Rn --arg s "$secret" '$s'),
 "pvedr_api_url": "https://pve1:8006", "pvedr_api_token": "monitor@pve!check",
 "pvedr_api_fingerprint": "AA:BB", "pvedr_api_token_secret": $(jq -Rn --arg s "$token_secret" '$s'),
 "pvedr_snapshot_select": "--all --exclude 9000",
 "pvedr_restore_drill_enabled": true, "pvedr_restore_drill_sample": 2}
JSON
# No S3 setting at all: the README's one-liner.
cat > "$tmp/bare.json" <<JSON
{"pvedr_deb": "$rel_deb", "pvedr_enable_timers": false}
JSON
cat > "$tmp/site.yml" <<'YML'
- name: Apply the pvedr role
  hosts: pve
  gather_facts: false
  roles:
    - role: pvedr
YML
# play NAME INVENTORY VARS PLAYBOOK [ENV…]: the log in $tmp/NAME.log, the exit status returned.
play() {
  local name=$1 inv=$2 vars=$3 book=$4
  shift 4
  env ANSIBLE_ROLES_PATH="$PWD/contrib/ansible/roles" ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 "$@" \
    ansible-playbook -i "$inv" -e "@$vars" -e ansible_become=false "$book" > "$tmp/$name.log" 2>&1 || return $?
}
must_play() {
  play "$@" || { cat "$tmp/$1.log" >&2; fail "ansible-playbook ($1 run)"; }
  ! grep -qF -- "$secret" "$tmp/$1.log" || fail "the secret shows in Ansible's output"
  ! grep -qF -- "$token_secret" "$tmp/$1.log" || fail "the token secret shows in Ansible's output"
}
dropin() { echo "$tmp/$1/etc/systemd/system/$2.d/schedule.conf"; }

must_play first "$tmp/offsite.ini" "$tmp/offsite.json" "$tmp/site.yml"
for h in pve1 pve2; do
  grep -qE "^$h +: ok=[0-9]+ +changed=[1-9]" "$tmp/first.log" || fail "the first run changed nothing on $h"
done
root=$tmp/pve1
for t in $(ls tools); do
  "$root/usr/bin/$t" --version >/dev/null || fail "$t missing or broken in the prefix"
done
env=$root/etc/pvedr/pvedr.env
[ "$(stat -c '%a %U' "$env")" = "600 root" ] || fail "$env is $(stat -c '%a %U' "$env"), not 600 root"
got=$(env -i bash -c "set -a; . '$env'; printf '%s|%s|%s' \"\$PVEDR_HOST\" \"\$PVEDR_S3_BUCKET\" \"\$AWS_SECRET_ACCESS_KEY\"")
# The API takes the place of SSH: no PVEDR_HOST beside PVEDR_API.
[ "$got" = "|pvedr-offsite|$secret" ] || fail "$env reads back as '$got'"
got=$(env -i bash -c "set -a; . '$env'; printf '%s|%s|%s|%s' \"\$PVEDR_API\" \"\$PVEDR_TOKEN\" \"\$PVEDR_TOKEN_SECRET\" \"\$PVEDR_FINGERPRINT\"")
[ "$got" = "https://pve1:8006|monitor@pve!check|$token_secret|AA:BB" ] || fail "$env: the API settings read back as '$got'"
got=$(env -i bash -c "set -a; . '$env'; printf '%s' \"\$PVEDR_SNAPSHOT_SELECT\"")
[ "$got" = "--all --exclude 9000" ] || fail "$env: PVEDR_SNAPSHOT_SELECT reads back as '$got'"
got=$(env -i bash -c "set -a; . '$env'; printf '%s' \"\$PVEDR_RESTORE_DRILL_SAMPLE\"")
[ "$got" = "2" ] || fail "$env: PVEDR_RESTORE_DRILL_SAMPLE reads back as '$got'"
for timer in pvedr-backup-check.timer pvedr-backup-sync.timer pvedr-snapshot.timer pvedr-restore-drill.timer; do
  [ -f "$root/lib/systemd/system/$timer" ] || fail "$timer not in the prefix"
done
# Cluster-wide on the first host only; per-node on every host.
grep -q '^OnCalendar=.' "$(dropin pve1 pvedr-backup-check.timer)" || fail "no backup-check schedule on pve1"
[ ! -e "$(dropin pve2 pvedr-backup-check.timer)" ] || fail "backup-check (cluster-wide) scheduled on pve2 too"
grep -q '^OnCalendar=.' "$(dropin pve1 pvedr-restore-drill.timer)" || fail "no restore drill schedule on pve1"
[ ! -e "$(dropin pve2 pvedr-restore-drill.timer)" ] || fail "the restore drill (cluster-wide) scheduled on pve2 too"
for h in pve1 pve2; do
  grep -q '^OnCalendar=.' "$(dropin $h pvedr-backup-sync.timer)" || fail "no backup-sync schedule on $h"
done
for f in "$tmp"/pve*/etc/systemd/system/pvedr-*.timer.d/schedule.conf; do
  cal=$(sed -n 's/^OnCalendar=\(..*\)$/\1/p' "$f")
  systemd-analyze calendar "$cal" >/dev/null 2>&1 || fail "$f: '$cal' is no systemd calendar"
done
say "role applied to pve1 and pve2 from $rel_deb (relative): tools, pvedr.env 0600 (values read back), backup-check and the restore drill scheduled on pve1 only, backup-sync on both, schedules valid"

must_play second "$tmp/offsite.ini" "$tmp/offsite.json" "$tmp/site.yml"
for h in pve1 pve2; do
  grep -qE "^$h +: ok=[0-9]+ +changed=0 " "$tmp/second.log" ||
    { grep -A3 'PLAY RECAP' "$tmp/second.log" >&2; fail "the second run changed something on $h"; }
done
say "second run: changed=0"

must_play bare "$tmp/bare.ini" "$tmp/bare.json" "$tmp/site.yml"
env=$tmp/pve3/etc/pvedr/pvedr.env
! grep -qE '^(AWS_|PVEDR_S3_)' "$env" || fail "$env has S3 settings without offsite: $(grep -E '^(AWS_|PVEDR_S3_)' "$env")"
[ ! -e "$(dropin pve3 pvedr-backup-sync.timer)" ] || fail "backup-sync scheduled without offsite"
[ ! -e "$(dropin pve3 pvedr-restore-drill.timer)" ] || fail "the restore drill scheduled without pvedr_restore_drill_enabled"
grep -q '^OnCalendar=.' "$(dropin pve3 pvedr-backup-check.timer)" || fail "no backup-check schedule without offsite"
"$tmp/pve3/usr/bin/backup-check" --version >/dev/null || fail "not installed without S3 settings"
say "no S3 settings: installed, backup-check scheduled, no backup-sync or restore drill timer, no S3 line in pvedr.env"

jq '.pvedr_deb = "target/deb/no-such.deb"' "$tmp/bare.json" > "$tmp/missing.json"
! play missing "$tmp/bare.ini" "$tmp/missing.json" "$tmp/site.yml" || fail "a missing .deb did not fail the play"
grep -q "absolute path" "$tmp/missing.log" || { cat "$tmp/missing.log" >&2; fail "a missing .deb: no message saying to give an absolute path"; }
say "a missing .deb stops the play at once, saying to give an absolute path"

# The example playbook, its tools stubbed: a CRITICAL backup, a dry-run plan.
mkdir "$tmp/stub"
cat > "$tmp/stub/backup-check" <<SH
#!/bin/sh
echo run >> "$tmp/stub/backup-check.runs"
echo '{"kind":"check","component":"guest/100","check":"freshness","status":"critical","message":"newest backup 3d old"}'
echo '{"kind":"summary","tool":"backup-check","exit_code":2}'
exit 2
SH
cat > "$tmp/stub/pve-restore" <<'SH'
#!/bin/sh
echo '{"kind":"restore","vmid":100,"target_vmid":9100,"dry_run":true,"status":"planned","steps":[]}'
SH
chmod +x "$tmp/stub/backup-check" "$tmp/stub/pve-restore"
! play example "$tmp/example.ini" "$tmp/bare.json" contrib/ansible/playbook-example.yml PATH="$tmp/stub:$PATH" ||
  fail "the example playbook did not fail on a CRITICAL backup"
shown=$(grep -n 'guest/100 freshness: critical newest backup 3d old' "$tmp/example.log" | head -1 | cut -d: -f1)
failed=$(grep -n 'backup-check: CRITICAL' "$tmp/example.log" | head -1 | cut -d: -f1)
[ -n "$shown" ] && [ -n "$failed" ] && [ "$shown" -lt "$failed" ] ||
  { cat "$tmp/example.log" >&2; fail "the example playbook does not show the failing check before it fails"; }
[ "$(wc -l < "$tmp/stub/backup-check.runs")" = 1 ] || fail "the cluster-wide check ran $(wc -l < "$tmp/stub/backup-check.runs") times for two hosts"
say "example playbook: the CRITICAL check shown, then the play fails; the check ran once for two hosts"
say "OK"
