//! The streamed restore's parts apart, for `bench/pve-restore-stream.sh`: an object read as
//! ranged GETs (`Bucket::ranged`) through the stream a restore feeds (`pipeline::stream`:
//! sha256, decompressed here with `--zstd`), either into a sink here or through pvedr's
//! SSH transport into a command on a node (`Transport::exec_with_stdin`, as a restore).
//!
//! `s3_pipe ENDPOINT BUCKET KEY SIZE SHA256 [--zstd] [--part MIB] [--in-flight N]
//! [HOST PORT USER IDENTITY KNOWN_HOSTS CMD [ARG…]]`; credentials from the environment.
//! Prints the seconds it took; exits with the command's status. Timing only: into the sink
//! a failed stream (a sha256 mismatch) is not reported.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use pvedr::pipeline::{self, Compression, Expect};
use pvedr::s3::{Bucket, Endpoint, IN_FLIGHT, PART, Timeouts};
use pvedr::transport::{RemoteCommand, Ssh, SshOptions};

fn main() -> ExitCode {
    match run() {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(e) => {
            eprintln!("s3_pipe: {e}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    compression: Compression,
    part: u64,
    in_flight: usize,
    rest: Vec<String>,
}

fn flags(mut a: Vec<String>) -> Result<Args, String> {
    let mut o = Args {
        compression: Compression::None,
        part: PART,
        in_flight: IN_FLIGHT,
        rest: Vec::new(),
    };
    while let Some(f) = a.first().cloned() {
        match f.as_str() {
            "--zstd" => o.compression = Compression::Zstd,
            "--part" if a.len() > 1 => {
                o.part = a[1].parse::<u64>().map_err(|e| e.to_string())? << 20;
                a.remove(0);
            }
            "--in-flight" if a.len() > 1 => {
                o.in_flight = a[1].parse().map_err(|e| format!("{e}"))?;
                a.remove(0);
            }
            _ => break,
        }
        a.remove(0);
    }
    o.rest = a;
    Ok(o)
}

fn run() -> Result<i32, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 5 {
        return Err("usage: s3_pipe ENDPOINT BUCKET KEY SIZE SHA256 [FLAGS] [SSH…]".into());
    }
    let size: u64 = a[3].parse().map_err(|e| format!("size {}: {e}", a[3]))?;
    let ep = Endpoint {
        url: Some(a[0].clone()),
        region: "us-east-1".into(),
        timeouts: Timeouts::default(),
    };
    let b = Bucket::connect(&ep, &a[1]).map_err(|e| e.to_string())?;
    let expect = Expect {
        size,
        sha256: a[4].clone(),
    };
    let o = flags(a[5..].to_vec())?;
    let t0 = Instant::now();
    let source = Box::new(b.ranged(&a[2], size, o.part, o.in_flight));
    let mut s = pipeline::stream(source, expect, o.compression).map_err(|e| e.to_string())?;
    let status = match o.rest.as_slice() {
        [] => {
            std::io::copy(&mut s, &mut std::io::sink()).map_err(|e| e.to_string())?;
            0
        }
        [host, port, user, identity, known, cmd @ ..] if !cmd.is_empty() => {
            let mut so = SshOptions::new(host.as_str());
            so.port = port.parse().map_err(|e| format!("port {port}: {e}"))?;
            so.user = user.clone();
            so.identity = Some(PathBuf::from(identity));
            so.known_hosts = Some(PathBuf::from(known));
            let ssh = Ssh::new(so);
            let fed = pipeline::feed(&ssh, &RemoteCommand::write(cmd.to_vec()), s)
                .map_err(|e| e.to_string())?;
            if let Some(f) = fed.failed {
                return Err(f.to_string());
            }
            eprint!("{}", fed.out.stderr);
            fed.out.status
        }
        _ => return Err("HOST PORT USER IDENTITY KNOWN_HOSTS CMD".into()),
    };
    println!("{:.2}", t0.elapsed().as_secs_f64());
    Ok(status)
}
