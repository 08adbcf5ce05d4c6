//! `push`: each archive streams from its source through the meter into a multipart upload;
//! its side files and then its manifest follow. Already offsite with the same checksum:
//! skipped; offsite with other contents: refused without --force.

use pvedr::records::StepStatus;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pvedr::archive;
use pvedr::change::Approval;
use pvedr::cli::WriteArgs;
use pvedr::crypt::{Recipients, Tally};
use pvedr::error::{Error, Result};
use pvedr::records::{Backup, Record, Step, rfc3339};
use pvedr::retry::Retry;
use pvedr::s3::{Bucket, Endpoint, Lock, LockMode, MultipartUpload, Sse, WriteOptions};

use crate::cli::{LockModeArg, PushArgs, SseArg};
use crate::location::{Location, check_part, manifest_key};
use crate::manifest::{MAX_MANIFEST, Manifest, SideFile};
use crate::meter::{Meter, Throttle, add};
use crate::pipe::PartPipe;
use crate::source::Source;
use pvedr::cluster::Cluster;
use pvedr::transport::Transport;

/// What every job shares.
pub struct Plan {
    pub location: Location,
    pub endpoint: Endpoint,
    pub part_size: usize,
    pub throttle: Option<Arc<Throttle>>,
    pub opts: WriteOptions,
    pub force: bool,
    pub node: Option<String>,
    pub storage: Option<String>,
    /// --encrypt-to: the age recipients of every object written.
    pub recipients: Option<Recipients>,
}

pub fn plan(a: &PushArgs, endpoint: Endpoint) -> Result<Plan> {
    let location = Location::parse(&a.to)?;
    let part_size = usize::try_from(a.part_size)
        .ok()
        .filter(|p| (pvedr::s3::MIN_PART..=pvedr::s3::MAX_PART).contains(p))
        .ok_or_else(|| Error::usage("--part-size must be between 5M and 5G (S3's bounds)"))?;
    if a.jobs == 0 || a.jobs > 16 {
        return Err(Error::usage("--jobs must be 1 to 16"));
    }
    let throttle = a.bwlimit.map(Throttle::new);
    if let Some(n) = &a.node {
        pvedr::validate::node(n)?;
    }
    if let Some(s) = &a.storage {
        pvedr::validate::storage_id(s)?;
    }
    if let Some(k) = &a.protection.sse_kms_key_id {
        pvedr::s3::check_header_value("--sse-kms-key-id", k)?;
    }
    let recipients = Recipients::parse(&a.protection.encrypt_to, &a.protection.encrypt_to_file)
        .map_err(|e| Error::usage(e.to_string()))?;
    let sse = a.protection.sse.map(|s| match s {
        SseArg::Aes256 => Sse::Aes256,
        SseArg::Kms => Sse::Kms(a.protection.sse_kms_key_id.clone()),
    });
    let lock = match a.protection.object_lock_days {
        Some(0) | Some(36501..) => {
            return Err(Error::usage("--object-lock-days must be 1 to 36500"));
        }
        Some(d) => Some(Lock {
            mode: match a.protection.object_lock_mode {
                LockModeArg::Governance => LockMode::Governance,
                LockModeArg::Compliance => LockMode::Compliance,
            },
            until: pvedr::time::now() + i64::from(d) * 86_400,
        }),
        None => None,
    };
    Ok(Plan {
        location,
        endpoint,
        part_size,
        throttle,
        opts: WriteOptions { sse, lock },
        force: a.force,
        node: a.node.clone(),
        storage: a.storage.clone(),
        recipients,
    })
}

/// One archive to copy: its name, keys and what the record says.
struct Item {
    backup: Backup,
    name: String,
    key: String,
    vmid: u64,
}

fn item(p: &Plan, b: &Backup) -> std::result::Result<Item, String> {
    if b.format.starts_with("pbs-") {
        return Err("a PBS snapshot is not a file; PBS has its own sync jobs".into());
    }
    let name = b
        .volid
        .split_once(":backup/")
        .map(|(_, n)| n.to_string())
        .ok_or("not a backup volid (STORAGE:backup/FILE)")?;
    check_part("archive name", &name).map_err(|e| e.to_string())?;
    let parsed = archive::parse(&name).ok_or("not a vzdump archive name")?;
    let vmid = b
        .vmid
        .or(parsed.vmid)
        .ok_or("no vmid in the record or the name")?;
    // --storage was checked with the flags; a node from a record is checked here.
    let group = match (&p.storage, b.node.as_ref().or(p.node.as_ref())) {
        (Some(s), _) => s.clone(),
        (None, Some(n)) => pvedr::validate::node(n)
            .map_err(|e| e.to_string())?
            .to_string(),
        (None, None) => {
            return Err("no node known for this backup; give --node or --storage".into());
        }
    };
    Ok(Item {
        key: p.location.key(&group, vmid, &name),
        backup: b.clone(),
        name,
        vmid,
    })
}

fn step(name: &str, status: StepStatus, msg: impl Into<String>, started: Option<Instant>) -> Step {
    Step::new("push", name, status, msg, started)
}

/// The plan, on stderr: each archive and the key it goes to (or why it cannot); then the
/// change contract's gate. Nothing to push asks nothing.
pub fn approve(p: &Plan, backups: &[Backup], write: &WriteArgs) -> Result<Approval> {
    if backups.is_empty() {
        return Ok(Approval::Go);
    }
    let to = format!("s3://{}/{}", p.location.bucket, p.location.prefix);
    let enc = match &p.recipients {
        Some(r) => format!(", encrypted (age) to {}", r.keys().join(", ")),
        None => String::new(),
    };
    pvedr::msg::say(format!("push: {} archives to {to}{enc}", backups.len()));
    for b in backups {
        match item(p, b) {
            Ok(it) => pvedr::msg::line(format_args!(
                "  {} -> s3://{}/{}",
                pvedr::msg::visible(&b.volid),
                p.location.bucket,
                pvedr::msg::visible(&it.key)
            )),
            Err(e) => pvedr::msg::line(format_args!(
                "  {}: not pushed: {}",
                pvedr::msg::visible(&b.volid),
                pvedr::msg::visible(&e)
            )),
        }
    }
    pvedr::change::approve(
        write,
        &format!("pushing {} archives to {to}", backups.len()),
    )
}

/// Runs the pushes with `jobs` workers; each step is handed to `emit` as it ends.
pub fn run(
    p: &Plan,
    a: &PushArgs,
    backups: Vec<Backup>,
    emit: &mut dyn FnMut(Step) -> Result<()>,
) -> Result<()> {
    let queue: Mutex<VecDeque<Backup>> = Mutex::new(backups.into());
    let (tx, rx) = mpsc::channel::<Step>();
    std::thread::scope(|s| {
        for _ in 0..a.jobs {
            let tx = tx.clone();
            let queue = &queue;
            s.spawn(move || worker(p, a, queue, &tx));
        }
        drop(tx);
        for st in rx {
            emit(st)?;
        }
        Ok(())
    })
}

/// Where a job reads archives from: a directory, or the connection and the cluster it
/// lands in.
enum Origin {
    Dir(std::path::PathBuf),
    Node(Box<dyn Transport>, Cluster),
}

fn origin(a: &PushArgs) -> Result<Origin> {
    Ok(match &a.dir {
        Some(d) => Origin::Dir(d.clone()),
        None => {
            let t = a.connect.connect()?.transport;
            let c = pvedr::cluster::read(t.as_ref())?;
            Origin::Node(t, c)
        }
    })
}

fn next(queue: &Mutex<VecDeque<Backup>>) -> Option<Backup> {
    queue.lock().ok()?.pop_front()
}

fn worker(p: &Plan, a: &PushArgs, queue: &Mutex<VecDeque<Backup>>, tx: &mpsc::Sender<Step>) {
    // Each job has its own connection and client: the transports are not shared.
    let ready = origin(a).and_then(|o| Ok((o, Bucket::connect(&p.endpoint, &p.location.bucket)?)));
    while let Some(b) = next(queue) {
        let st = match (&ready, item(p, &b)) {
            (_, Err(e)) => step(&b.volid, StepStatus::Failed, e, None),
            (Err(e), Ok(it)) => step(&it.name, StepStatus::Failed, e.to_string(), None),
            (Ok(_), Ok(it)) if pvedr::interrupt::requested() => step(
                &it.name,
                StepStatus::Skipped,
                "interrupted before this upload",
                None,
            ),
            (Ok((src, bucket)), Ok(it)) => push_one(p, src, bucket, &it),
        };
        if tx.send(st).is_err() {
            return;
        }
    }
}

fn push_one(p: &Plan, origin: &Origin, bucket: &Bucket, it: &Item) -> Step {
    let started = Instant::now();
    match on_node(p, origin, bucket, it, started) {
        Ok(st) => st,
        Err(Error::Interrupted) => step(
            &it.name,
            StepStatus::Failed,
            "interrupted: the upload was aborted",
            Some(started),
        ),
        Err(e) => step(&it.name, StepStatus::Failed, e.to_string(), Some(started)),
    }
}

/// Runs the push where the archive is: reading a volume happens on its node (pve-manager
/// `API2/Storage/Content.pm` `info` is `proxyto => 'node'`; a `local` storage is each
/// node's own disk), so commands for another node go through the connected one.
fn on_node(
    p: &Plan,
    origin: &Origin,
    bucket: &Bucket,
    it: &Item,
    started: Instant,
) -> Result<Step> {
    match origin {
        Origin::Dir(d) => try_push(p, &Source::Dir(d.clone()), bucket, it, started),
        Origin::Node(t, cluster) => {
            let node = it
                .backup
                .node
                .as_deref()
                .ok_or_else(|| Error::Other("the record names no node".into()))?;
            pvedr::validate::node(node)?;
            let hop = cluster.route(t.as_ref(), node)?;
            let t: &dyn Transport = hop.as_deref().unwrap_or(t.as_ref());
            try_push(p, &Source::Node(t), bucket, it, started)
        }
    }
}

fn try_push(p: &Plan, src: &Source, bucket: &Bucket, it: &Item, started: Instant) -> Result<Step> {
    let path = src.locate(&it.backup, &it.name)?;
    let size = expected_size(src, &path, it)?;
    let url = format!("s3://{}/{}", bucket.name, it.key);
    let mut repaired = None;
    if let Some(m) = existing(bucket, &it.key)? {
        match archive_object(bucket, &it.key, &m)? {
            Offsite::Whole => {
                if let Some(st) = compare(p, src, &path, size, &m, it, started)? {
                    return Ok(st);
                }
            }
            // Not a copy: nothing to keep, the archive is uploaded again.
            Offsite::Damaged(why) => {
                pvedr::msg::warn(format!("{url}: {why}; uploading it again"));
                repaired = Some(why);
            }
        }
    }
    let sent = upload(p, src, bucket, it, &path, size)?;
    let (sha, bytes) = (sent.sha.clone(), sent.bytes);
    let side_files = push_side_files(p, src, bucket, it, &path)?;
    // An encrypted copy's notes stay in its encrypted side file, not in the clear here.
    let notes = side_files
        .iter()
        .find(|(f, _)| f.name.ends_with(".notes") && p.recipients.is_none())
        .map(|(_, text)| text.clone());
    let m = Manifest {
        manifest: 1,
        archive: it.name.clone(),
        key: it.key.clone(),
        size: bytes,
        sha256: sha.clone(),
        object_size: sent.object.as_ref().map(|o| o.1),
        object_sha256: sent.object.map(|o| o.0),
        encrypted: p.recipients.as_ref().map(|_| pvedr::crypt::AGE.to_string()),
        recipients: p
            .recipients
            .as_ref()
            .map(Recipients::keys)
            .unwrap_or_default(),
        node: it.backup.node.clone().or(p.node.clone()),
        storage: it.backup.storage.clone(),
        vmid: it.vmid,
        subtype: it.backup.subtype.clone(),
        format: it.backup.format.clone(),
        ctime: it.backup.ctime,
        notes,
        protected: it.backup.protected,
        source_volid: it.backup.volid.clone(),
        pushed: rfc3339(pvedr::time::now()),
        side_files: side_files.into_iter().map(|(f, _)| f).collect(),
    };
    put(p, bucket, &manifest_key(&it.key), m.to_bytes())?;
    let msg = match repaired {
        Some(why) => format!("uploaded to {url} ({why})"),
        None => format!("uploaded to {url}"),
    };
    let mut st = step(&it.name, StepStatus::Changed, msg, Some(started));
    add(&mut st, bytes, started, &url, &sha);
    Ok(st)
}

/// The size the archive must have: the record's (the file is read against it, as over
/// SSH), else the file's. A file that already has another size is not the one listed.
fn expected_size(src: &Source, path: &str, it: &Item) -> Result<Option<u64>> {
    match (it.backup.size, src.size(path)) {
        (Some(r), Some(f)) if r != f => Err(Error::Other(format!(
            "{}: the file is {f} bytes, the record says {r}; nothing uploaded",
            it.name
        ))),
        (r, f) => Ok(r.or(f)),
    }
}

/// The manifest of a copy already offsite, if any.
fn existing(bucket: &Bucket, key: &str) -> Result<Option<Manifest>> {
    let mk = manifest_key(key);
    if bucket.head_object(&mk)?.is_none() {
        return Ok(None);
    }
    let bytes = bucket.get(&mk, None, MAX_MANIFEST)?;
    Manifest::parse(&bytes)
        .map(Some)
        .map_err(|e| Error::Other(format!("s3://{}/{mk}: {e}", bucket.name)))
}

/// What is offsite under an archive's key beside its manifest.
enum Offsite {
    /// The object is there with the manifest's size.
    Whole,
    /// Gone or of another size: the manifest describes no copy.
    Damaged(String),
}

/// A skip needs the archive object itself, not only its manifest. HEAD proves its size;
/// its sha256 is not kept by the server (a multipart upload's checksum, where there is one,
/// is of the parts), so the manifest's stands for it.
fn archive_object(bucket: &Bucket, key: &str, m: &Manifest) -> Result<Offsite> {
    Ok(match bucket.head_object(key)? {
        None => Offsite::Damaged("the archive object is missing beside its manifest".into()),
        Some(h) if h.size != Some(m.stored_size()) => Offsite::Damaged(format!(
            "the archive object is {}, its manifest says {} bytes",
            h.size
                .map_or("of unknown size".into(), |s| format!("{s} bytes")),
            m.stored_size()
        )),
        Some(_) => Offsite::Whole,
    })
}

/// Same size and sha256: a skip step. Different without --force: a refusal. Else upload.
fn compare(
    p: &Plan,
    src: &Source,
    path: &str,
    size: Option<u64>,
    m: &Manifest,
    it: &Item,
    started: Instant,
) -> Result<Option<Step>> {
    let same_size = size == Some(m.size);
    let sha = if same_size {
        Some(src.sha256(path)?)
    } else {
        None
    };
    let same = sha.as_deref() == Some(m.sha256.as_str());
    if same && m.is_encrypted() == p.recipients.is_some() {
        let url = format!("s3://{}/{}", p.location.bucket, it.key);
        let mut st = step(
            &it.name,
            StepStatus::Skipped,
            skip_message(p, m),
            Some(started),
        );
        add(&mut st, 0, started, &url, &m.sha256);
        return Ok(Some(st));
    }
    if same && !p.force {
        return Err(Error::Refused(format!(
            "{} is offsite with the same contents but {}; it is never replaced without --force",
            it.name,
            if m.is_encrypted() {
                "encrypted, and this push does not encrypt"
            } else {
                "in the clear, and this push encrypts"
            }
        )));
    }
    if p.force {
        pvedr::msg::warn(format!(
            "{}: the offsite copy differs; replacing it (--force)",
            it.name
        ));
        return Ok(None);
    }
    Err(Error::Refused(format!(
        "an offsite copy of {} with other contents exists (size {} sha256 {}, here size {} sha256 {}); an offsite copy is never replaced without --force",
        it.name,
        m.size,
        m.sha256,
        size.map_or("unknown".into(), |s| s.to_string()),
        sha.unwrap_or_else(|| "not computed".into())
    )))
}

/// Why a copy already offsite is skipped. Rotation: a copy encrypted to other recipients
/// stays as it is (readable by the old key).
fn skip_message(p: &Plan, m: &Manifest) -> String {
    match &p.recipients {
        Some(r) if r.keys() != m.recipients => {
            "already offsite (same size and sha256; encrypted to other recipients, kept as it is)"
                .into()
        }
        _ => "already offsite (same size and sha256)".into(),
    }
}

/// What an upload sent: the archive's sha256 and size, and for an encrypted copy the
/// object's (sha256, size).
struct Sent {
    sha: String,
    bytes: u64,
    object: Option<(String, u64)>,
}

/// Streams the archive into a multipart upload.
fn upload(
    p: &Plan,
    src: &Source,
    bucket: &Bucket,
    it: &Item,
    path: &str,
    size: Option<u64>,
) -> Result<Sent> {
    let up = MultipartUpload::start_opts(bucket, &it.key, p.part_size, Retry::default(), &p.opts)?;
    let (pipe, rx) = PartPipe::new(p.part_size);
    let (read, sent) = std::thread::scope(|s| {
        let sender = s.spawn(move || crate::pipe::upload(up, rx));
        let read = read_into(p, src, it, path, size, pipe);
        // On a read error the pipe is gone without `Finish`: the upload is aborted.
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(Error::Other("the upload thread failed".into())));
        (read, sent)
    });
    // An S3 error stopped the reading too: it is the cause. Else the read's error is.
    let (version, _) = match sent? {
        Some(v) => v,
        None => {
            return Err(read
                .err()
                .unwrap_or_else(|| Error::Other("the upload stopped".into())));
        }
    };
    let read = read?;
    if let Some(lock) = &p.opts.lock {
        // Some servers ignore the lock headers of multipart uploads: set it on the version.
        let v = (version != "null").then_some(version.as_str());
        bucket.set_retention(&it.key, v, lock)?;
    }
    Ok(read)
}

/// Streams the archive through the meter (and the encryptor) into the pipe.
fn read_into(
    p: &Plan,
    src: &Source,
    it: &Item,
    path: &str,
    size: Option<u64>,
    pipe: PartPipe,
) -> Result<Sent> {
    let io = |e| Error::io(format!("uploading {}", it.name), e);
    let (pipe, sent) = match &p.recipients {
        None => {
            let (pipe, sha, bytes) = metered(p, src, it, path, size, pipe)?;
            (
                pipe,
                Sent {
                    sha,
                    bytes,
                    object: None,
                },
            )
        }
        // The age stream sits between the meter (plaintext: its sha256, --bwlimit) and
        // the parts (the object's bytes, hashed by the tally).
        Some(r) => {
            let enc = r.encrypt(Tally::new(pipe)).map_err(io)?;
            let (enc, sha, bytes) = metered(p, src, it, path, size, enc)?;
            let (pipe, osha, obytes) = enc.finish().map_err(io)?.into_parts();
            (
                pipe,
                Sent {
                    sha,
                    bytes,
                    object: Some((osha, obytes)),
                },
            )
        }
    };
    pipe.finish().map_err(io)?;
    Ok(sent)
}

/// Streams the archive through the meter into `w`; returns `w`, the sha256 and size read.
fn metered<W: std::io::Write>(
    p: &Plan,
    src: &Source,
    it: &Item,
    path: &str,
    size: Option<u64>,
    w: W,
) -> Result<(W, String, u64)> {
    let mut meter = Meter::new(w, &it.name, size, p.throttle.clone());
    let copied = src.stream(path, &mut meter).map_err(|e| {
        if pvedr::interrupt::requested() {
            Error::Interrupted
        } else {
            e
        }
    })?;
    if let Some(s) = size.filter(|s| *s != copied) {
        return Err(Error::Other(format!(
            "{}: read {copied} bytes, expected {s}; the upload was aborted",
            it.name
        )));
    }
    let (w, sha) = meter.into_parts();
    Ok((w, sha, copied))
}

fn put(p: &Plan, bucket: &Bucket, key: &str, body: Vec<u8>) -> Result<String> {
    Retry::default().run(&format!("s3://{}/{key}", bucket.name), |_| {
        bucket.put_opts(key, body.clone(), &p.opts)
    })
}

/// `.notes` and `.log` beside the archive, when they exist: (side file, its text).
fn push_side_files(
    p: &Plan,
    src: &Source,
    bucket: &Bucket,
    it: &Item,
    path: &str,
) -> Result<Vec<(SideFile, String)>> {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut names = vec![format!("{}.notes", it.name)];
    if let Some(a) = archive::parse(&it.name) {
        names.push(format!("{}.log", a.stem));
    }
    let mut out = Vec::new();
    for n in names {
        let Some(data) = src.read_small(&format!("{dir}/{n}"))? else {
            continue;
        };
        let key = format!("{}/{n}", it.key.rsplit_once('/').map_or("", |(d, _)| d));
        let sha = sha256_hex(&data);
        let text = String::from_utf8_lossy(&data).into_owned();
        let size = data.len() as u64;
        let (body, object_size, object_sha256) = match &p.recipients {
            Some(r) => {
                let e = pvedr::crypt::encrypt_bytes(&data, r)
                    .map_err(|e| Error::io(format!("encrypting {n}"), e))?;
                let (s, h) = (e.len() as u64, sha256_hex(&e));
                (e, Some(s), Some(h))
            }
            None => (data, None, None),
        };
        put(p, bucket, &key, body)?;
        out.push((
            SideFile {
                name: n,
                key,
                size,
                sha256: sha,
                object_size,
                object_sha256,
            },
            text,
        ));
    }
    Ok(out)
}

fn sha256_hex(b: &[u8]) -> String {
    crate::meter::hex(&<sha2::Sha256 as sha2::Digest>::digest(b))
}

/// The `backup` records of the input.
pub fn backups(records: Vec<Record>) -> Vec<Backup> {
    records
        .into_iter()
        .filter_map(|r| match r {
            Record::Backup(b) => Some(b),
            _ => None,
        })
        .collect()
}
