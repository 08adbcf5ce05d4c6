#!/usr/bin/env bash
# backup-prune on 100,000 records vs the obvious jq program for the same policy
# (keep-daily=7, per guest, UTC days), in the same run. Prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/backup-prune
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
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
best() { local b=999; for _ in 1 2 3; do x=$(t "$@"); b=$(echo "if ($x < $b) $x else $b" | bc); done; echo "$b"; }
ours=$(best "$BIN" --keep-daily 7 --timezone UTC "$work/in.jsonl")
theirs=$(best jq -c -s "$JQ" "$work/in.jsonl")
# Same policy, same answer: compare the remove sets.
diff <("$BIN" --keep-daily 7 --timezone UTC "$work/in.jsonl" | jq -r 'select(.mark=="remove") | .volid' | sort) \
     <(jq -c -s "$JQ" "$work/in.jsonl" | jq -r 'select(.mark=="remove") | .volid' | sort) >/dev/null \
  && same=yes || same=NO
printf 'backup-prune  100000 records keep-daily=7: backup-prune %.3fs, jq -s %.3fs, ratio %.1fx (same remove set: %s)\n' \
  "$ours" "$theirs" "$(echo "$theirs / $ours" | bc -l)" "$same"
