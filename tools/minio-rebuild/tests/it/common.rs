//! What every test shares: the environment (with a secret key no test may ever see
//! printed), the tool's command, the run that checks for that secret, and an export.

use std::path::Path;
use std::process::Output;

use pvedr_testkit::s3::{Moto, Tf, s3_env};
use serde_json::Value;

/// The secret key of every run; moto accepts any, so this one is distinctive.
pub const SECRET: &str = "pvedr-SECRET-k3y-4xQ9zLm";

/// The S3 and Terraform environment, with [`SECRET`] and tracing on.
pub fn env() -> Vec<(String, String)> {
    let mut e: Vec<(String, String)> = s3_env()
        .into_iter()
        .filter(|(k, _)| k != "AWS_SECRET_ACCESS_KEY")
        .collect();
    e.push(("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()));
    e.push(("PVEDR_TRACE".into(), "1".into()));
    e
}

/// `minio-rebuild --endpoint EP` with the test environment.
pub fn tool(endpoint: &str) -> assert_cmd::Command {
    let mut c = pvedr_testkit::bin("minio-rebuild");
    c.envs(env()).args(["--endpoint", endpoint]);
    c
}

/// Asserts the secret is in neither stream.
pub fn assert_no_secret(out: &Output) {
    for (name, s) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(s).contains(SECRET),
            "the secret key was printed on {name}"
        );
    }
}

/// Runs a command that must exit with `code`, and never prints the secret.
pub fn run(cmd: &mut assert_cmd::Command, code: i32) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert_no_secret(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `step` records, in order.
pub fn steps(out: &Output) -> Vec<Value> {
    pvedr_testkit::json_lines(&out.stdout)
        .into_iter()
        .filter(|r| r["kind"] == "step")
        .collect()
}

/// The statuses of one step's records, in order.
pub fn statuses(steps: &[Value], step: &str) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s["step"] == step)
        .map(|s| s["status"].as_str().unwrap_or("").to_string())
        .collect()
}

/// One environment's Terraform directory with a first apply (serial 1, v = one).
pub fn environment(moto: &Moto, env: &str) -> Tf {
    let bucket = format!("tfstate-{env}");
    let tf = Tf::initialised(moto, &bucket);
    tf.apply("one");
    tf
}

/// `tfstate-versions export` of these environments into `dir`.
pub fn export(moto: &Moto, envs: &[&str], dir: &Path) {
    let mut c = pvedr_testkit::bin("tfstate-versions");
    c.envs(env()).args(["--endpoint", &moto.endpoint()]);
    for e in envs {
        c.args(["--env", e]);
    }
    c.args(["export", "--to"]).arg(dir);
    run(&mut c, 0);
}

/// The environment `prod` ([`environment`]) exported into a new directory: its Terraform
/// directory and the export.
pub fn exported_prod(moto: &Moto) -> (Tf, tempfile::TempDir) {
    let tf = environment(moto, "prod");
    let dir = tempfile::tempdir().expect("tmp");
    export(moto, &["prod"], dir.path());
    (tf, dir)
}

/// The step named `name` of a run's steps.
pub fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    let found = steps.iter().find(|r| r["step"] == name);
    found.unwrap_or_else(|| panic!("no step {name}: {steps:?}"))
}

/// Empties the server, as a lost container would.
pub fn wipe(moto: &Moto) {
    moto.boto(
        "unused",
        "import urllib.request\nurllib.request.urlopen(urllib.request.Request(s3.meta.endpoint_url + '/moto-api/reset', method='POST'))\nassert s3.list_buckets()['Buckets'] == []",
    );
}

/// Every version and delete marker in a bucket, all keys.
pub fn entries(moto: &Moto, bucket: &str) -> usize {
    moto.boto(
        bucket,
        "r = s3.list_object_versions(Bucket=B)\nprint(len(r.get('Versions', [])) + len(r.get('DeleteMarkers', [])))",
    )
    .parse()
    .expect("count")
}

/// A loopback port nothing listens on (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
