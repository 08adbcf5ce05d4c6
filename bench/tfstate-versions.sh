#!/usr/bin/env bash
# tfstate-versions list (and list --inspect) over 2,000 versions of a state in moto vs the
# obvious boto3 scripts (list_object_versions pages; a get_object per version), same run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${CARGO_TARGET_DIR:-target}/release/tfstate-versions
[ -x "$BIN" ] || cargo build --release -q -p tfstate-versions
start_moto tfstate-versions
trap 'kill $MOTO_PID' EXIT
N=2000
$PY - "$N" <<'PY'
import boto3, json, sys
s3 = boto3.client("s3")
s3.create_bucket(Bucket="tfstate-bench")
s3.put_bucket_versioning(Bucket="tfstate-bench", VersioningConfiguration={"Status": "Enabled"})
def state(serial):
    res = [{"mode": "managed", "type": "proxmox_vm_qemu", "name": "vm%d" % i, "provider": "provider[\"registry.terraform.io/telmate/proxmox\"]",
            "instances": [{"schema_version": 0, "attributes": {"vmid": 100 + i, "name": "vm%d" % i, "cores": 2, "memory": 2048}}]}
           for i in range(20)]
    return json.dumps({"version": 4, "terraform_version": "1.9.8", "serial": serial, "lineage": "bench",
                       "outputs": {}, "resources": res, "check_results": None}, indent=2).encode()
# One after another: moto loses versions of a key written concurrently.
for serial in range(1, int(sys.argv[1]) + 1):
    s3.put_object(Bucket="tfstate-bench", Key="terraform.tfstate", Body=state(serial))
PY
ours_list() { "$BIN" list --bucket tfstate-bench --endpoint "$AWS_ENDPOINT_URL"; }
ours_inspect() { "$BIN" list --inspect --bucket tfstate-bench --endpoint "$AWS_ENDPOINT_URL"; }
# boto MODE: the versions as boto3 lists them (list), or each one read for its serial (inspect).
boto() {
  $PY - "$1" <<'PY'
import boto3, json, sys
s3 = boto3.client("s3")
for page in s3.get_paginator("list_object_versions").paginate(Bucket="tfstate-bench", Prefix="terraform.tfstate"):
    for v in page.get("Versions", []):
        if v["Key"] != "terraform.tfstate":
            continue
        if sys.argv[1] == "list":
            print(json.dumps({"version_id": v["VersionId"], "time": v["LastModified"].isoformat(), "size": v["Size"], "latest": v["IsLatest"]}))
        else:
            st = json.loads(s3.get_object(Bucket="tfstate-bench", Key=v["Key"], VersionId=v["VersionId"])["Body"].read())
            print(json.dumps({"version_id": v["VersionId"], "serial": st["serial"], "resources": len(st["resources"])}))
PY
}
boto_list() { boto list; }
boto_inspect() { boto inspect; }
n=$(ours_list | grep -c '"kind":"tfstate_version"' || true)
[ "$n" = "$N" ] || { echo "tfstate-versions bench: listed $n of $N versions"; exit 1; }
a=$(best ours_list); b=$(best boto_list)
printf 'tfstate-versions  list %d versions: tfstate-versions %.2fs, boto3 list_object_versions %.2fs, ratio %.1fx\n' "$N" "$a" "$b" "$(ratio "$b" "$a")"
row "\`tfstate-versions list\`, $N versions in moto" "$(printf %.2fs "$a")" "boto3 \`list_object_versions\` pages" "$(printf %.2fs "$b")" "$(ratio "$b" "$a")"
a=$(t ours_inspect); b=$(t boto_inspect)
mem "\`tfstate-versions list --inspect\`, $N versions" "$BIN" list --inspect --bucket tfstate-bench --endpoint "$AWS_ENDPOINT_URL"
printf 'tfstate-versions  list --inspect %d versions: tfstate-versions %.2fs, boto3 get_object each %.2fs, ratio %.1fx\n' "$N" "$a" "$b" "$(ratio "$b" "$a")"
row "\`tfstate-versions list --inspect\`, $N versions (each downloaded and read)" "$(printf %.2fs "$a")" "boto3, a \`get_object\` per version" "$(printf %.2fs "$b")" "$(ratio "$b" "$a")" "one run each"
