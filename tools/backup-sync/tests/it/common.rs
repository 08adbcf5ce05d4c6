//! What every test here needs: a moto bucket, the tools with its endpoint, listings.

use std::collections::BTreeSet;
use std::path::Path;

use pvedr_testkit::s3::{Moto, s3_env};
use pvedr_testkit::{SimNode, Sshd, bin, json_lines};
use serde_json::Value;

pub const BUCKET: &str = "offsite";
pub const TO: &str = "s3://offsite/pve";

/// The run (its stdout) did one thing: it changed `name`.
pub fn assert_changed(stdout: &[u8], name: &str) {
    assert_eq!(
        statuses(stdout),
        [(name.to_string(), "changed".to_string())]
    );
}

pub struct Offsite {
    pub moto: Moto,
}

impl Offsite {
    pub fn new() -> Offsite {
        let moto = Moto::start();
        moto.boto(BUCKET, "s3.create_bucket(Bucket=B)");
        Offsite { moto }
    }

    /// A bucket created with Object Lock (versioned).
    pub fn locked() -> Offsite {
        let moto = Moto::start();
        moto.boto(
            BUCKET,
            "s3.create_bucket(Bucket=B, ObjectLockEnabledForBucket=True)",
        );
        Offsite { moto }
    }

    /// A pvedr tool with the S3 credentials and this endpoint.
    pub fn tool(&self, name: &str) -> assert_cmd::Command {
        let mut c = bin(name);
        c.envs(s3_env())
            .env("AWS_ENDPOINT_URL", self.moto.endpoint());
        c
    }

    /// `backup-sync push --yes --to TO --dir DIR`: the records to push go on its stdin.
    pub fn push_from(&self, dir: &Path) -> assert_cmd::Command {
        let mut c = self.tool("backup-sync");
        c.args(["push", "--yes", "--to", TO, "--dir"]).arg(dir);
        c
    }

    /// `backup-sync push --yes --to TO --part-size 5M` as a process to watch while it runs
    /// (its records go on its stdin).
    pub fn push_process(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("backup-sync"));
        c.args(["push", "--yes", "--to", TO, "--part-size", "5M"])
            .envs(s3_env())
            .env("AWS_ENDPOINT_URL", self.moto.endpoint());
        c
    }

    /// `backup-sync pull --yes --to-dir DIR`: what to pull (a volid, a URL, records on stdin)
    /// and other flags follow.
    pub fn pull_to(&self, dir: &Path) -> assert_cmd::Command {
        let mut c = self.tool("backup-sync");
        c.args(["pull", "--yes", "--to-dir"]).arg(dir);
        c
    }

    /// Rewrites the manifest of the copy at `key`: `edit` is Python that changes the dict `m`.
    pub fn edit_manifest(&self, key: &str, edit: &str) {
        self.moto.boto(
            BUCKET,
            &format!(
                "k = {key:?} + \".manifest.json\"\n\
                 m = json.loads(s3.get_object(Bucket=B, Key=k)[\"Body\"].read())\n\
                 {edit}\n\
                 s3.put_object(Bucket=B, Key=k, Body=json.dumps(m).encode())\n"
            ),
        );
    }

    /// Pushes every backup of the simulator's `local` dump directory, which must succeed.
    pub fn push_local(&self, sim: &SimNode) -> std::process::Output {
        let dump = sim.dump_dir("local");
        pvedr_testkit::run_ok(self.push_from(&dump).write_stdin(list_dir(&dump, "local")))
    }

    /// `backup-sync pull --yes VOLID --to-node NODE --storage local` over `sshd`.
    pub fn pull_to_node(&self, volid: &str, node: &str, sshd: &Sshd) -> assert_cmd::Command {
        let mut c = self.tool("backup-sync");
        c.args([
            "pull",
            "--yes",
            volid,
            "--to-node",
            node,
            "--storage",
            "local",
        ])
        .args(sshd.args());
        c
    }

    pub fn keys(&self) -> BTreeSet<String> {
        let out = self.moto.boto(
            BUCKET,
            "p = s3.get_paginator('list_objects_v2')\nprint(json.dumps([o['Key'] for pg in p.paginate(Bucket=B) for o in pg.get('Contents', [])]))",
        );
        serde_json::from_str::<Vec<String>>(&out)
            .expect("keys")
            .into_iter()
            .collect()
    }

    /// Multipart uploads neither completed nor aborted.
    pub fn uploads(&self) -> usize {
        self.moto
            .boto(
                BUCKET,
                "print(len(s3.list_multipart_uploads(Bucket=B).get('Uploads', [])))",
            )
            .parse()
            .expect("count")
    }

    pub fn object(&self, key: &str) -> Vec<u8> {
        let out = self.moto.boto(
            BUCKET,
            &format!("import sys\nsys.stdout.write(s3.get_object(Bucket=B, Key={key:?})['Body'].read().hex())"),
        );
        (0..out.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&out[i..i + 2], 16).expect("hex"))
            .collect()
    }
}

/// pve-ls-backups of a storage over SSH.
/// The demo cluster (no sshd) and an empty offsite bucket.
pub fn demo_offsite() -> (SimNode, Offsite) {
    (SimNode::demo(), Offsite::new())
}

/// The `step` records of a run that failed.
pub fn failed_steps(out: &[u8]) -> Vec<Value> {
    of_kind(out, "step")
        .into_iter()
        .filter(|s| s["status"] == "failed")
        .collect()
}

pub fn list_ssh(sshd: &Sshd, storage: &str) -> Vec<u8> {
    pvedr_testkit::run_ok(sshd.bin("pve-ls-backups").args(["--storage", storage])).stdout
}

/// pve-ls-backups of a dump directory.
pub fn list_dir(dir: &Path, storage: &str) -> Vec<u8> {
    pvedr_testkit::run_ok(bin("pve-ls-backups").arg("--dir").arg(dir).args([
        "--storage",
        storage,
        "--node",
        "pve1",
        "--timezone",
        "UTC",
    ]))
    .stdout
}

pub fn of_kind(out: &[u8], kind: &str) -> Vec<Value> {
    json_lines(out)
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// The step statuses by target.
pub fn statuses(out: &[u8]) -> Vec<(String, String)> {
    of_kind(out, "step")
        .iter()
        .map(|s| {
            (
                s["target"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Archive file names in a dump directory.
pub fn archives(sim: &SimNode, storage: &str) -> BTreeSet<String> {
    std::fs::read_dir(sim.dump_dir(storage))
        .expect("dump")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| pvedr::archive::parse(f).is_some())
        .collect()
}

/// Deterministic bytes that do not compress (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A `backup` record for an archive written by a test.
pub fn record(name: &str, size: u64) -> String {
    format!(
        "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"volid\":\"local:backup/{name}\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":1705370402,\"time\":\"2024-01-16T02:00:02Z\",\"size\":{size},\"format\":\"vma.zst\"}}\n"
    )
}
