//! `verify`: are the offsite copies still there, and still what was pushed? First what costs
//! no download (listings and HEADs): objects, sizes, ETags, Object Lock, delete markers,
//! objects without a manifest. Then whole reads within `--max-egress`, oldest-verified
//! first, each object's sha256 (and, for a single-part upload, its MD5 = ETag) against the
//! manifest. A state file says what was read when, so every byte is read once per cycle.
//! Nothing is ever written to the bucket.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use md5::Md5;
use pvedr::crypt::{ChunkReader, Identities};
use pvedr::error::{Error, Result};
use pvedr::output::{Output, human_bytes};
use pvedr::records::{Check, CheckStatus, Record, Summary, rfc3339, seconds_since};
use pvedr::s3::{Bucket, Endpoint, Entry};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::cli::VerifyArgs;
use crate::location::{Location, manifest_key};
use crate::manifest::Manifest;
use crate::meter::hex;
use crate::side;
use crate::source::MAX_SIDE_FILE;
use crate::verify_state::{self, Seen, State};

const DAY: i64 = 86_400;

/// The bucket as listed: the current version of each key, and keys a delete marker hides.
struct Listing {
    current: HashMap<String, Entry>,
    /// key → the newest version under its delete marker.
    hidden: HashMap<String, String>,
}

/// One run's settings and findings.
struct Run<'a> {
    bucket: &'a Bucket,
    now: i64,
    cycle: i64,
    min_lock: Option<u32>,
    left: u64,
    read: u64,
    checks: Vec<Check>,
    /// --age-identity: what decrypts encrypted copies for their reads.
    ids: Option<Arc<Identities>>,
}

pub fn run(endpoint: &Endpoint, a: &VerifyArgs, out: &mut Output) -> Result<u8> {
    let started = Instant::now();
    let loc = Location::parse(&a.from)?;
    let budget = a.max_egress.unwrap_or(0);
    if a.cycle == 0 {
        return Err(Error::usage("--cycle: give at least 1 day"));
    }
    let ids = a
        .age_identity
        .as_deref()
        .map(Identities::load)
        .transpose()?;
    let path = verify_state::path(a.state.as_deref(), &loc.bucket)?;
    let mut state = verify_state::load(&path)?;
    let bucket = Bucket::connect(endpoint, &loc.bucket)?;
    let listing = list(&bucket, &loc)?;
    let mut r = Run {
        bucket: &bucket,
        now: a.now.unwrap_or_else(pvedr::time::now),
        cycle: i64::from(a.cycle) * DAY,
        min_lock: a.min_lock_days,
        left: budget,
        read: 0,
        checks: Vec::new(),
        ids: ids.map(Arc::new),
    };
    let copies = r.manifests(&listing)?;
    let sound: Vec<&Manifest> = copies
        .iter()
        .filter(|m| r.free(m, &listing, &mut state))
        .collect();
    r.orphans(&listing, &copies);
    r.reads(&sound, &listing, &mut state);
    state.objects.retain(|k, _| listing.current.contains_key(k));
    verify_state::save(&path, &state)?;
    r.report(out, &copies, &state, budget, seconds_since(started))
}

/// Every version under the prefix, reduced to what is current and what is hidden.
fn list(bucket: &Bucket, loc: &Location) -> Result<Listing> {
    let mut current = HashMap::new();
    let mut marked: HashSet<String> = HashSet::new();
    let mut hidden = HashMap::new();
    // Newest first per key: a key whose latest is a delete marker, and the version below it.
    for e in bucket.versions(&loc.list_prefix(), false)? {
        if e.is_latest && e.delete_marker {
            marked.insert(e.key.clone());
        } else if e.is_latest {
            current.insert(e.key.clone(), e);
        } else if !e.delete_marker && marked.contains(&e.key) && !hidden.contains_key(&e.key) {
            hidden.insert(e.key.clone(), e.version_id.clone());
        }
    }
    Ok(Listing { current, hidden })
}

/// The version to read: `None` on a bucket without versioning (its id is `null`).
fn version(e: &Entry) -> Option<&str> {
    Some(e.version_id.as_str()).filter(|v| *v != "null" && !v.is_empty())
}

/// An ETag of a single-part upload is the MD5 of the object; a multipart one (`…-N`) is not.
fn md5_etag(e: &Entry) -> Option<&str> {
    e.etag
        .as_deref()
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Components are `offsite/<key>`: one per object, so that backup-check's metrics
/// (one series per component and check) never repeat a series.
fn check(component: &str, url: &str, name: &str, status: CheckStatus, message: String) -> Check {
    let mut extra = Map::new();
    extra.insert("url".into(), Value::String(url.into()));
    Check {
        component: component.into(),
        check: name.into(),
        status,
        message,
        value: None,
        threshold: None,
        extra,
    }
}

impl Run<'_> {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name)
    }

    fn add(&mut self, m: &Manifest, name: &str, status: CheckStatus, message: String) {
        let url = self.url(&m.key);
        let mut c = check(&format!("offsite/{}", m.key), &url, name, status, message);
        c.extra.insert("vmid".into(), json!(m.vmid));
        self.checks.push(c);
    }

    /// The copies: each readable manifest; one that is not, or that a delete marker hides,
    /// is CRITICAL (its copy is gone from `ls`).
    fn manifests(&mut self, l: &Listing) -> Result<Vec<Manifest>> {
        let mut keys: Vec<&String> = l.current.keys().collect();
        keys.sort();
        let mut out = Vec::new();
        for mk in keys {
            let Some(key) = mk.strip_suffix(".manifest.json") else {
                continue;
            };
            let size = l.current[mk].size.unwrap_or(0);
            match crate::run::read_manifest(self.bucket, mk, key, size)? {
                Some(m) => out.push(m),
                None => self.lost(mk, "the manifest cannot be read (see above)".into()),
            }
        }
        for (mk, v) in &l.hidden {
            if mk.ends_with(".manifest.json") {
                self.lost(mk, format!("a delete marker hides the manifest (version {v} is below it): the copy is gone from ls"));
            }
        }
        Ok(out)
    }

    fn lost(&mut self, key: &str, why: String) {
        let url = self.url(key);
        let c = check(
            &format!("offsite/{key}"),
            &url,
            "offsite-manifest",
            CheckStatus::Critical,
            format!("{url}: {why}"),
        );
        self.checks.push(c);
    }

    /// The free checks of one copy; true when it is there whole enough to be read.
    fn free(&mut self, m: &Manifest, l: &Listing, state: &mut State) -> bool {
        let seen = state.objects.entry(m.key.clone()).or_insert(Seen {
            first_seen: self.now,
            ..Seen::default()
        });
        let seen = seen.clone();
        let Some(e) = l.current.get(&m.key).cloned() else {
            let why = match l.hidden.get(&m.key) {
                Some(v) => format!("hidden by a delete marker (version {v} is below it)"),
                None => "missing beside its manifest".into(),
            };
            self.add(
                m,
                "offsite-object",
                CheckStatus::Critical,
                format!("{}: {why}", self.url(&m.key)),
            );
            return false;
        };
        let sides_ok = self.sides(m, l);
        let size_ok = self.size(m, &e);
        self.etag(m, &e, &seen);
        if let Some(days) = self.min_lock {
            self.locks(m, l, days);
        }
        sides_ok && size_ok
    }

    /// Side files there, of the manifest's sizes.
    fn sides(&mut self, m: &Manifest, l: &Listing) -> bool {
        let mut wrong = Vec::new();
        // A forged manifest could name another copy's archive, to have it read as a side file.
        let allowed = side::allowed_names(&m.archive);
        for sf in &m.side_files {
            if !allowed.contains(&sf.name) || sf.key != side::sibling(&m.key, &sf.name) {
                let what = format!(
                    "'{}' (key '{}')",
                    sf.name.escape_debug(),
                    sf.key.escape_debug()
                );
                wrong.push(format!("{what} is not the archive's own"));
                continue;
            }
            match l.current.get(&sf.key).and_then(|e| e.size) {
                Some(s) if s == sf.stored_size() => {}
                Some(s) => wrong.push(format!(
                    "{} is {s} bytes, the manifest says {}",
                    self.url(&sf.key),
                    sf.stored_size()
                )),
                None => wrong.push(format!("{} is missing", self.url(&sf.key))),
            }
        }
        if wrong.is_empty() {
            let msg = format!(
                "{}: the archive and its {} side file(s) are there",
                self.url(&m.key),
                m.side_files.len()
            );
            self.add(m, "offsite-object", CheckStatus::Ok, msg);
            return true;
        }
        let msg = format!("{}: side file {}", self.url(&m.key), wrong.join("; "));
        self.add(m, "offsite-object", CheckStatus::Critical, msg);
        false
    }

    fn size(&mut self, m: &Manifest, e: &Entry) -> bool {
        let url = self.url(&m.key);
        match e.size {
            Some(s) if s == m.stored_size() => {
                self.add(
                    m,
                    "offsite-size",
                    CheckStatus::Ok,
                    format!("{url}: {s} bytes, as its manifest says"),
                );
                true
            }
            s => {
                let got = s.map_or("of unknown size".into(), |s| format!("{s} bytes"));
                let msg = format!(
                    "{url}: the object is {got}, its manifest says {} (truncated or replaced)",
                    m.stored_size()
                );
                self.add(m, "offsite-size", CheckStatus::Critical, msg);
                false
            }
        }
    }

    /// The server's checksum: an ETag that changed since a read that matched, under the same
    /// manifest, means the object was replaced without a push.
    fn etag(&mut self, m: &Manifest, e: &Entry, seen: &Seen) {
        let url = self.url(&m.key);
        let now = e.etag.clone().unwrap_or_default();
        let kind = if md5_etag(e).is_some() {
            "single-part: the ETag is its MD5, compared at each read"
        } else {
            "multipart: the ETag is not an MD5 of the object, only compared with the last read's"
        };
        match (&seen.etag, &seen.sha256) {
            (Some(was), Some(sha)) if *sha == m.sha256 && *was != now => {
                let at = seen.read.map(rfc3339).unwrap_or_default();
                let msg = format!(
                    "{url}: replaced since the read of {at} (ETag {was}, now {now}) while its manifest is the same"
                );
                self.add(m, "offsite-checksum", CheckStatus::Critical, msg);
            }
            _ => self.add(
                m,
                "offsite-checksum",
                CheckStatus::Ok,
                format!("{url}: ETag {now} ({kind})"),
            ),
        }
    }

    /// Object Lock of the archive, its side files and its manifest: at least `days` left.
    fn locks(&mut self, m: &Manifest, l: &Listing, days: u32) {
        let want = self.now.saturating_add(i64::from(days) * DAY);
        let mut keys = vec![m.key.clone(), manifest_key(&m.key)];
        keys.extend(m.side_files.iter().map(|s| s.key.clone()));
        let mut short = Vec::new();
        for k in keys {
            let v = l.current.get(&k).and_then(version);
            match self.bucket.retention(&k, v) {
                Ok(Some(lock)) if lock.until >= want => {}
                Ok(Some(lock)) => short.push(format!(
                    "{} locked until {}",
                    self.url(&k),
                    rfc3339(lock.until)
                )),
                Ok(None) => short.push(format!("{} has no Object Lock retention", self.url(&k))),
                Err(e) => {
                    self.add(
                        m,
                        "offsite-lock",
                        CheckStatus::Unknown,
                        format!("{}: {e}", self.url(&k)),
                    );
                    return;
                }
            }
        }
        if short.is_empty() {
            let msg = format!("{}: locked for at least {days} days", self.url(&m.key));
            self.add(m, "offsite-lock", CheckStatus::Ok, msg);
        } else {
            let msg = format!("{} (less than --min-lock-days {days})", short.join("; "));
            self.add(m, "offsite-lock", CheckStatus::Critical, msg);
        }
    }

    /// Objects under the prefix that belong to no manifest: not a copy (an upload that
    /// stopped before its manifest, or something else's).
    fn orphans(&mut self, l: &Listing, copies: &[Manifest]) {
        let mut owned: HashSet<String> = HashSet::new();
        for m in copies {
            owned.insert(m.key.clone());
            owned.insert(manifest_key(&m.key));
            owned.extend(m.side_files.iter().map(|s| s.key.clone()));
        }
        let mut stray: Vec<&String> = l
            .current
            .keys()
            .filter(|k| !owned.contains(*k) && !k.ends_with(".manifest.json"))
            .collect();
        stray.sort();
        for k in stray {
            let url = self.url(k);
            let msg = format!("{url}: no manifest names it (not a copy)");
            self.checks.push(check(
                &format!("offsite/{k}"),
                &url,
                "offsite-orphan",
                CheckStatus::Warning,
                msg,
            ));
        }
    }
}

/// Hashes and counts what a read brings, refusing more than the listed size (the budget
/// holds even when the object grew since the listing).
struct Reading {
    sha: Sha256,
    md5: Option<Md5>,
    n: u64,
    limit: u64,
    /// The content walker's channel; dropped when the walker stopped (it found damage).
    walk: Option<SyncSender<Vec<u8>>>,
}

impl Write for Reading {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.n.saturating_add(b.len() as u64) > self.limit {
            return Err(std::io::Error::other("larger than listed"));
        }
        self.sha.update(b);
        if let Some(m) = &mut self.md5 {
            m.update(b);
        }
        let gone = self
            .walk
            .as_ref()
            .is_some_and(|w| w.send(b.to_vec()).is_err());
        if gone {
            self.walk = None;
        }
        self.n += b.len() as u64;
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Chunks in flight to the walker: memory is this many of the S3 body's chunks.
const WALK_QUEUE: usize = 8;

/// The walk of an archive's content as backup-check --deep does it (decrypted first when
/// the copy is encrypted), in a thread fed the object's chunks through a bounded channel.
/// Ok: what was done, and for a decrypted copy the plaintext's (sha256, size).
type Walker = JoinHandle<Result<Walked, String>>;

struct Walked {
    what: &'static str,
    plain: Option<(String, u64)>,
}

fn spawn_walk(format: Option<&str>, ids: Option<Arc<Identities>>) -> (Walker, SyncSender<Vec<u8>>) {
    let (tx, rx) = sync_channel(WALK_QUEUE);
    let format = format.map(String::from);
    let h = std::thread::spawn(move || {
        // The walker's side of the channel, as a reader; the sender gone is the end.
        let mut r = ChunkReader::new(rx);
        match ids {
            Some(ids) => walk_decrypted(r, &ids, format.as_deref()),
            None => walk(&mut r, format.as_deref()).map(|what| Walked { what, plain: None }),
        }
    });
    (h, tx)
}

fn walk(r: &mut dyn Read, format: Option<&str>) -> Result<&'static str, String> {
    let Some(f) = format else {
        return Ok("not walked");
    };
    match pvedr::integrity::check_stream(r, f) {
        Ok(true) => Ok("content walked as backup-check --deep does"),
        Ok(false) => Ok("lzo/bz2: bytes hashed, content not walked"),
        Err(e) => Err(format!("its content is damaged: {e}")),
    }
}

/// The plaintext of an age copy, hashed whole and walked.
fn walk_decrypted(
    r: ChunkReader,
    ids: &Identities,
    format: Option<&str>,
) -> Result<Walked, String> {
    let dec = pvedr::crypt::decrypting_reader(r, ids).map_err(|e| format!("not decrypted: {e}"))?;
    let mut h = HashingReader {
        inner: dec,
        sha: Sha256::new(),
        n: 0,
    };
    let what = walk(&mut h, format)?;
    std::io::copy(&mut h, &mut std::io::sink()).map_err(|e| format!("not decrypted whole: {e}"))?;
    Ok(Walked {
        what,
        plain: Some((hex(&h.sha.finalize()), h.n)),
    })
}

/// Hashes and counts what is read through it.
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
    n: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.sha.update(&out[..n]);
        self.n = self.n.saturating_add(n as u64);
        Ok(n)
    }
}

/// One object to read whole: its listed version and size, and what it must hash to.
struct Target<'a> {
    key: &'a str,
    version: Option<&'a str>,
    size: u64,
    /// The object's sha256 (an encrypted copy's manifest may not have one: its plaintext's
    /// is checked then).
    sha256: Option<&'a str>,
    md5: Option<&'a str>,
    /// The archive's format, to walk its content (side files are not walked).
    format: Option<&'a str>,
    /// An encrypted copy: its plaintext's size and sha256.
    plain: Option<(u64, &'a str)>,
}

/// What one whole read found.
enum Found {
    /// As pushed; says whether the content was walked too.
    Match(&'static str),
    /// Bad content: CRITICAL.
    Damaged(String),
    /// The read did not end (S3 error, timeout): UNKNOWN.
    Unread(String),
}

impl Run<'_> {
    /// Whole reads within the budget, the longest unread first.
    fn reads(&mut self, sound: &[&Manifest], l: &Listing, state: &mut State) {
        let mut order: Vec<&Manifest> = sound.to_vec();
        order.sort_by_key(|m| {
            state
                .objects
                .get(&m.key)
                .and_then(|s| s.read)
                .unwrap_or(i64::MIN)
        });
        for m in order {
            let Some(e) = l.current.get(&m.key) else {
                continue;
            };
            let cost = m
                .stored_size()
                .saturating_add(m.side_files.iter().map(|s| s.stored_size()).sum());
            let seen = state.objects.get(&m.key).cloned().unwrap_or_default();
            if m.is_encrypted() && !self.can_decrypt(m, &seen) {
                continue;
            }
            if cost > self.left {
                let why = format!(
                    "{} to read, {} left of --max-egress",
                    human_bytes(cost),
                    human_bytes(self.left)
                );
                self.not_read(m, &seen, &why);
                continue;
            }
            let found = self.read_copy(m, e);
            self.record(m, e, found, state);
        }
    }

    /// An encrypted copy is read only with an identity that opens it (its manifest says
    /// for whom): else it is not read, and says why.
    fn can_decrypt(&mut self, m: &Manifest, seen: &Seen) -> bool {
        let url = self.url(&m.key);
        let why = match &self.ids {
            Some(i) if i.opens(&m.recipients) => return true,
            Some(i) => {
                let msg = format!(
                    "{url}: encrypted (age) to {}, which {} does not open: not read",
                    m.recipients.join(", "),
                    i.path()
                );
                self.add(m, "offsite-read", CheckStatus::Unknown, msg);
                return false;
            }
            None => "encrypted (age), not read: no --age-identity",
        };
        self.not_read(m, seen, why);
        false
    }

    fn read_copy(&mut self, m: &Manifest, e: &Entry) -> Found {
        let enc = m.is_encrypted();
        let archive = Target {
            key: &m.key,
            version: version(e),
            size: m.stored_size(),
            sha256: if enc {
                m.object_sha256.as_deref()
            } else {
                Some(&m.sha256)
            },
            md5: md5_etag(e),
            format: Some(&m.format),
            plain: enc.then_some((m.size, m.sha256.as_str())),
        };
        let found = self.read_one(&archive);
        if !matches!(found, Found::Match(_)) {
            return found;
        }
        for sf in &m.side_files {
            let side = Target {
                key: &sf.key,
                version: None,
                size: sf.stored_size().min(MAX_SIDE_FILE as u64 * 2),
                sha256: if enc {
                    sf.object_sha256.as_deref()
                } else {
                    Some(&sf.sha256)
                },
                md5: None,
                format: None,
                plain: enc.then_some((sf.size, sf.sha256.as_str())),
            };
            match self.read_one(&side) {
                Found::Match(_) => {}
                other => return other,
            }
        }
        found
    }

    /// Reads one object whole (its listed version); bytes counted even when it fails.
    fn read_one(&mut self, t: &Target) -> Found {
        let url = self.url(t.key);
        // A plain side file has nothing to walk; an encrypted one is decrypted to be hashed.
        let ids = t.plain.and(self.ids.clone());
        let (walker, pipe) = (t.format.is_some() || ids.is_some())
            .then(|| spawn_walk(t.format, ids))
            .unzip();
        let mut w = Reading {
            sha: Sha256::new(),
            md5: t.md5.map(|_| Md5::new()),
            n: 0,
            limit: t.size,
            walk: pipe,
        };
        let got = self.bucket.get_to(t.key, t.version, &mut w);
        // The walker sees the end of the object (or of what came) and ends.
        w.walk = None;
        let walked = walker.map(|h| h.join().unwrap_or_else(|_| Err("the walk stopped".into())));
        self.read = self.read.saturating_add(w.n);
        self.left = self.left.saturating_sub(w.n);
        if let Err(e) = got {
            return match e {
                Error::Io { .. } => {
                    Found::Damaged(format!("{url}: larger than its listed {} bytes", t.size))
                }
                e => Found::Unread(format!("{url}: not read whole ({e}); {} bytes came", w.n)),
            };
        }
        if let Some(why) = hashes(w, t) {
            return Found::Damaged(format!("{url}: {why}"));
        }
        match (walked, t.plain) {
            (Some(Err(e)), _) => Found::Damaged(format!("{url}: {e}")),
            (Some(Ok(w)), Some((size, sha))) => match w.plain {
                Some((s, n)) if n == size && s == sha => Found::Match(w.what),
                Some((s, n)) => Found::Damaged(format!(
                    "{url}: decrypted {n} bytes sha256 {s}, its manifest says {size} bytes sha256 {sha}"
                )),
                None => Found::Damaged(format!("{url}: not decrypted")),
            },
            (Some(Ok(w)), None) => Found::Match(w.what),
            (None, _) => Found::Match("not walked"),
        }
    }

    fn record(&mut self, m: &Manifest, e: &Entry, found: Found, state: &mut State) {
        let url = self.url(&m.key);
        match found {
            Found::Match(walked) => {
                let s = state.objects.entry(m.key.clone()).or_default();
                s.read = Some(self.now);
                s.etag = e.etag.clone();
                s.sha256 = Some(m.sha256.clone());
                let how = if m.is_encrypted() {
                    ", decrypted with --age-identity"
                } else {
                    ""
                };
                let msg = format!(
                    "{url}: read whole{how}, {} bytes, sha256 as its manifest says; {walked}",
                    m.size
                );
                self.add(m, "offsite-read", CheckStatus::Ok, msg);
            }
            Found::Damaged(why) => {
                // Read again next run: damage is never taken as verified.
                if let Some(s) = state.objects.get_mut(&m.key) {
                    s.read = None;
                }
                self.add(m, "offsite-read", CheckStatus::Critical, why);
            }
            Found::Unread(why) => self.add(m, "offsite-read", CheckStatus::Unknown, why),
        }
    }

    /// A copy left for a later run: OK while its cycle holds, WARNING once overdue.
    fn not_read(&mut self, m: &Manifest, seen: &Seen, why: &str) {
        let url = self.url(&m.key);
        let since = seen.read.unwrap_or(seen.first_seen);
        let due = since.saturating_add(self.cycle);
        let last = seen
            .read
            .map_or("never read".into(), |t| format!("last read {}", rfc3339(t)));
        if self.now <= due {
            let msg = format!("{url}: {last}; next read due by {} ({why})", rfc3339(due));
            self.add(m, "offsite-read", CheckStatus::Ok, msg);
        } else {
            let msg = format!("{url}: {last}, overdue since {} ({why})", rfc3339(due));
            self.add(m, "offsite-read", CheckStatus::Warning, msg);
        }
    }

    /// Bytes of all copies, and of those read whole within the cycle.
    fn coverage(&self, copies: &[Manifest], state: &State) -> (u64, u64) {
        let fresh = |m: &&Manifest| {
            let read = state.objects.get(&m.key).and_then(|s| s.read);
            read.is_some_and(|t| self.now - t < self.cycle)
        };
        let total = copies.iter().map(|m| m.size).sum();
        let covered = copies.iter().filter(fresh).map(|m| m.size).sum();
        (total, covered)
    }

    /// The checks, a stderr line and a summary with the bytes read and the cycle's coverage.
    fn report(
        self,
        out: &mut Output,
        copies: &[Manifest],
        state: &State,
        budget: u64,
        dur: f64,
    ) -> Result<u8> {
        let (total, covered) = self.coverage(copies, state);
        let pct = if total == 0 {
            100.0
        } else {
            covered as f64 * 100.0 / total as f64
        };
        pvedr::msg::say(format!(
            "verify: read {} of --max-egress {}; {} of {} ({pct:.1}%) read within the {}-day cycle",
            human_bytes(self.read),
            human_bytes(budget),
            human_bytes(covered),
            human_bytes(total),
            self.cycle / DAY
        ));
        let (code, counts) = tally(&self.checks);
        let mut extra = Map::new();
        extra.insert("bytes_read".into(), json!(self.read));
        extra.insert("max_egress".into(), json!(budget));
        extra.insert("cycle_days".into(), json!(self.cycle / DAY));
        extra.insert("bytes_total".into(), json!(total));
        extra.insert("bytes_covered".into(), json!(covered));
        for c in self.checks {
            out.write(&Record::Check(c))?;
        }
        out.write(&Record::Summary(Summary {
            tool: Some("backup-sync".into()),
            counts,
            exit_code: code,
            duration_s: Some(dur),
            extra,
            ..Default::default()
        }))?;
        Ok(code)
    }
}

/// The exit code (the worst status's) and the count of each status.
fn tally(checks: &[Check]) -> (u8, Map<String, Value>) {
    let worst = checks.iter().map(|c| rank(&c.status)).max().unwrap_or(0);
    let found: Vec<CheckStatus> = checks.iter().map(|c| c.status.clone()).collect();
    let each = [
        CheckStatus::Ok,
        CheckStatus::Warning,
        CheckStatus::Critical,
        CheckStatus::Unknown,
    ];
    let counts = pvedr::status::counts_each(&found, &each, |s| s.to_string());
    ([0, 3, 1, 2][worst], counts)
}

/// What is wrong with the bytes read, by size, sha256 and (single-part) MD5.
fn hashes(w: Reading, t: &Target) -> Option<String> {
    if w.n != t.size {
        return Some(format!(
            "{} bytes read, {} expected (truncated)",
            w.n, t.size
        ));
    }
    let sha = hex(&w.sha.finalize());
    if let Some(want) = t.sha256.filter(|want| *want != sha) {
        return Some(format!("sha256 {sha}, its manifest says {want}"));
    }
    let md5 = w.md5.map(|h| hex(&h.finalize()));
    match (t.md5, md5) {
        (Some(want), Some(got)) if !got.eq_ignore_ascii_case(want) => {
            Some(format!("MD5 {got} is not its ETag {want}"))
        }
        _ => None,
    }
}

/// As backup-check orders them: ok < unknown < warning < critical.
fn rank(status: &CheckStatus) -> usize {
    match status {
        CheckStatus::Ok => 0,
        CheckStatus::Warning => 2,
        CheckStatus::Critical => 3,
        _ => 1,
    }
}
