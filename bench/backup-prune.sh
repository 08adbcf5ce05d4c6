#!/usr/bin/env bash
# backup-prune on 100,000 records vs the obvious jq program for the same policy
# (keep-daily=7, per guest, UTC days), in the same run. Prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${CARGO_TARGET_DIR:-target}/release/backup-prune
[ -x "$BIN" ] || cargo build --release -q -p backup-prune
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 bench/gen-records.py 100000 1000 > "$work/in.jsonl"
JQ='group_by([.storage,.subtype,.vmid])[] | sort_by(-.ctime) | . as $g
  | reduce range(0; length) as $i ({days: [], out: []};
      ($g[$i].ctime | strftime("%Y-%m-%d")) as $d
      | if (.days | index([$d])) != null then .out += [$g[$i] + {mark: "remove"}]
        elif (.days | length) < 7 then .days += [$d] | .out += [$g[$i] + {mark: "keep"}]
        else .out += [$g[$i] + {mark: "remove"}] end)
  | .out[]'
ours=$(best "$BIN" --keep-daily 7 --timezone UTC "$work/in.jsonl")
theirs=$(best jq -c -s "$JQ" "$work/in.jsonl")
# Same policy, same answer: compare the remove sets.
"$BIN" --keep-daily 7 --timezone UTC "$work/in.jsonl" | jq -r 'select(.mark=="remove") | .volid' | sort > "$work/a"
jq -c -s "$JQ" "$work/in.jsonl" | jq -r 'select(.mark=="remove") | .volid' | sort > "$work/b"
cmp -s "$work/a" "$work/b" || { echo "backup-prune bench: the remove sets differ"; exit 1; }
mem "\`backup-prune\`, 100,000 records" "$BIN" --keep-daily 7 --timezone UTC "$work/in.jsonl"
mem "\`jq -s\` keep-daily, 100,000 records" jq -c -s "$JQ" "$work/in.jsonl"
printf 'backup-prune  100000 records keep-daily=7: backup-prune %.3fs, jq -s %.3fs, ratio %.1fx (same remove set)\n' \
  "$ours" "$theirs" "$(ratio "$theirs" "$ours")"
row "\`backup-prune --keep-daily 7\`, 100,000 records" "$(printf %.3fs "$ours")" "\`jq -s\` with the same policy" \
  "$(printf %.3fs "$theirs")" "$(ratio "$theirs" "$ours")" "same remove set, checked"
