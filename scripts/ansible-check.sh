#!/usr/bin/env bash
# CI check of contrib/ansible: ansible-lint (production profile) on the role and the example
# playbook, then the role applied to this machine (-c local) into a temporary prefix, twice:
# the package unpacked there, the configuration written with mode 0600 and its values read
# back as systemd reads them, the timers' schedule drop-ins written, the secret never in
# Ansible's output, and the second run changes nothing.
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

deb=$(make -s --no-print-directory deb | tail -n 1)
[ -f "$deb" ] || fail "make deb left no package ($deb)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
secret='ci-"secret"-$HOME-\x'
token_secret='0b1c2d3e-api-$PATH'
cat > "$tmp/vars.json" <<JSON
{"pvedr_deb": "$(readlink -f "$deb")", "pvedr_prefix": "$root",
 "pvedr_etc": "$root/etc/pvedr", "pvedr_systemd_dir": "$root/etc/systemd/system",
 "pvedr_cache_dir": "$tmp/cache", "pvedr_enable_timers": false,
 "pvedr_host": "pve1", "pvedr_s3_endpoint": "http://127.0.0.1:9000",
 "pvedr_s3_bucket": "pvedr-offsite", "pvedr_s3_prefix": "pve1/dump",
 "pvedr_s3_access_key_id": "ci-key", "pvedr_s3_secret_access_key": $(jq -Rn --arg s "$secret" '$s'),
 "pvedr_api_url": "https://pve1:8006", "pvedr_api_token": "monitor@pve!check",
 "pvedr_api_fingerprint": "AA:BB", "pvedr_api_token_secret": $(jq -Rn --arg s "$token_secret" '$s')}
JSON
cat > "$tmp/site.yml" <<'YML'
- name: Apply the pvedr role
  hosts: localhost
  gather_facts: false
  roles:
    - role: pvedr
YML
play() {
  ANSIBLE_ROLES_PATH=$PWD/contrib/ansible/roles ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
    ansible-playbook -c local -i localhost, -e "@$tmp/vars.json" "$tmp/site.yml" > "$tmp/$1.log" 2>&1 ||
    { cat "$tmp/$1.log" >&2; fail "ansible-playbook ($1 run)"; }
  ! grep -qF -- "$secret" "$tmp/$1.log" || fail "the secret shows in Ansible's output"
  ! grep -qF -- "$token_secret" "$tmp/$1.log" || fail "the token secret shows in Ansible's output"
}
play first
grep -qE 'localhost +: ok=[0-9]+ +changed=[1-9]' "$tmp/first.log" || fail "the first run changed nothing"

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
for timer in pvedr-backup-check.timer pvedr-backup-sync.timer; do
  grep -q '^OnCalendar=.' "$root/etc/systemd/system/$timer.d/schedule.conf" || fail "no schedule drop-in for $timer"
  [ -f "$root/lib/systemd/system/$timer" ] || fail "$timer not in the prefix"
done
for f in "$root"/etc/systemd/system/pvedr-*.timer.d/schedule.conf; do
  cal=$(sed -n 's/^OnCalendar=\(..*\)$/\1/p' "$f")
  systemd-analyze calendar "$cal" >/dev/null 2>&1 || fail "$f: '$cal' is no systemd calendar"
done
say "role applied into $root: tools, pvedr.env 0600 (values read back), timer schedules valid (systemd-analyze calendar)"

play second
grep -qE 'localhost +: ok=[0-9]+ +changed=0 ' "$tmp/second.log" ||
  { grep -A2 'PLAY RECAP' "$tmp/second.log" >&2; fail "the second run changed something"; }
say "second run: changed=0"
say "OK"
