//! backup-check's `--deep` and backup-sync verify's reads: is each archive whole? In-process for files we can read: stream-decompress
//! (zstd frame checksums, gzip CRC32; lzo and bz2 through `lzop -dc`/`bzip2 -dc`), then walk
//! the content: a VMA's header (magic, version, MD5, config blobs) and every extent (magic,
//! MD5, UUID, block map, each cluster once), or a tar's headers (checksums) and its
//! `./etc/vzdump/pct.conf`. A `sha256=` in the notes is compared with the file.

use std::io::{self, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use md5::{Digest, Md5};
use sha2::Sha256;

const VMA_HEADER_BASE: usize = 12288;
const CLUSTER: u64 = 65536;
/// VMA numbers a device's clusters with 32 bits (blockinfo bits 0-31): no device is larger.
const VMA_MAX_DEVICE: u64 = (1 << 32) * CLUSTER;
/// Clusters tracked per archive, one bit each: a 64 MiB bitmap, 32 TiB of disks.
const MAX_TRACKED_CLUSTERS: u64 = 1 << 29;
/// Longest GNU long name (`L` member) accepted; PATH_MAX is 4096.
const MAX_LONG_NAME: u64 = 1 << 16;

/// Bytes as lower-case hex: a sha256 as notes, manifests and records write it.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Hashes what passes through (for `sha256=` in the notes).
struct Hashing<R> {
    inner: R,
    hash: Option<Sha256>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn explain(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "truncated (unexpected end of data)".into(),
        _ => e.to_string(),
    }
}

/// Checks one archive file. `Err` says what is wrong.
pub fn check_file(path: &Path, format: &str, sha256: Option<&str>) -> Result<(), String> {
    // Only a regular file: a FIFO or device named like an archive would block or never end.
    let (file, len) = crate::dumpdir::open_regular(path).map_err(|e| e.to_string())?;
    if len == 0 {
        return Err("empty file".into());
    }
    let (base, compression) = match format.split_once('.') {
        Some((b, c)) => (b, Some(c)),
        None if format == "tgz" => ("tar", Some("gz")),
        None => (format, None),
    };
    let mut raw = Hashing {
        inner: BufReader::with_capacity(1 << 20, file),
        hash: sha256.map(|_| Sha256::new()),
    };
    match compression {
        None => check_content(base, &mut raw)?,
        Some("zst") => {
            let mut d =
                zstd::stream::read::Decoder::new(&mut raw).map_err(|e| format!("zstd: {e}"))?;
            check_content(base, &mut d).map_err(|e| format!("zstd stream: {e}"))?;
            // Drain: the frame checksum is verified at the end of the frame.
            skip(&mut d, u64::MAX).map_err(|e| format!("zstd: {}", explain(e)))?;
        }
        Some("gz") => {
            let mut d = flate2::read::MultiGzDecoder::new(&mut raw);
            check_content(base, &mut d).map_err(|e| format!("gzip stream: {e}"))?;
            skip(&mut d, u64::MAX).map_err(|e| format!("gzip: {}", explain(e)))?;
        }
        Some(c @ ("lzo" | "bz2")) => {
            let tool = if c == "lzo" { "lzop" } else { "bzip2" };
            check_with_decompressor(tool, path, base)?;
            io::copy(&mut raw, &mut io::sink()).map_err(|e| e.to_string())?;
        }
        Some(other) => return Err(format!("unknown compression '{other}'")),
    }
    // Anything after the content (tar padding) still counts for the file's hash.
    io::copy(&mut raw, &mut io::sink()).map_err(|e| e.to_string())?;
    if let (Some(want), Some(h)) = (sha256, raw.hash) {
        let got = hex(&h.finalize());
        if !want.eq_ignore_ascii_case(&got) {
            return Err(format!("sha256 mismatch: notes say {want}, file is {got}"));
        }
    }
    Ok(())
}

/// Checks an archive read as a stream (an offsite object): zstd and gzip are decompressed
/// here and their content walked; lzo and bz2 need their system tool on a file, so only
/// their bytes are read (`Ok(false)`: not walked). `Ok(true)`: walked and whole.
pub fn check_stream(r: &mut dyn Read, format: &str) -> Result<bool, String> {
    let (base, compression) = match format.split_once('.') {
        Some((b, c)) => (b, Some(c)),
        None if format == "tgz" => ("tar", Some("gz")),
        None => (format, None),
    };
    match compression {
        None => check_content(base, r)?,
        Some("zst") => {
            let mut d =
                zstd::stream::read::Decoder::new(&mut *r).map_err(|e| format!("zstd: {e}"))?;
            check_content(base, &mut d).map_err(|e| format!("zstd stream: {e}"))?;
            skip(&mut d, u64::MAX).map_err(|e| format!("zstd: {}", explain(e)))?;
        }
        Some("gz") => {
            let mut d = flate2::read::MultiGzDecoder::new(&mut *r);
            check_content(base, &mut d).map_err(|e| format!("gzip stream: {e}"))?;
            skip(&mut d, u64::MAX).map_err(|e| format!("gzip: {}", explain(e)))?;
        }
        Some("lzo" | "bz2") => {
            io::copy(r, &mut io::sink()).map_err(|e| e.to_string())?;
            return Ok(false);
        }
        Some(other) => return Err(format!("unknown compression '{other}'")),
    }
    io::copy(r, &mut io::sink()).map_err(|e| e.to_string())?;
    Ok(true)
}

/// lzo and bz2: the system tool decompresses (and checks its checksums); we check the content.
fn check_with_decompressor(tool: &str, path: &Path, base: &str) -> Result<(), String> {
    let mut child = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {tool} (install it): {e}"))?;
    let mut out = child.stdout.take().ok_or("no pipe")?;
    let content = check_content(base, &mut out);
    let _ = io::copy(&mut out, &mut io::sink());
    drop(out);
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        let msg = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(format!(
            "{tool}: {}",
            if msg.is_empty() { "failed".into() } else { msg }
        ));
    }
    content.map_err(|e| format!("{tool} stream: {e}"))
}

fn check_content(base: &str, r: &mut dyn Read) -> Result<(), String> {
    match base {
        "vma" => check_vma(r),
        "tar" | "tgz" => check_tar(r),
        other => Err(format!("unknown archive format '{other}'")),
    }
}

/// Which clusters of a device were seen, one bit each.
#[derive(Clone)]
struct Seen {
    words: Vec<u64>,
    len: u64,
}

impl Seen {
    fn new(len: u64) -> Self {
        // Callers bound `len` by MAX_TRACKED_CLUSTERS.
        Seen {
            words: vec![0; len.div_ceil(64) as usize],
            len,
        }
    }

    /// Marks cluster `i`: `None` if beyond the device, else whether it was already seen.
    fn set(&mut self, i: u64) -> Option<bool> {
        if i >= self.len {
            return None;
        }
        let w = self.words.get_mut(usize::try_from(i / 64).ok()?)?;
        let bit = 1u64 << (i % 64);
        let was = *w & bit != 0;
        *w |= bit;
        Some(was)
    }

    fn first_missing(&self) -> Option<u64> {
        let (w, word) = self
            .words
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)?;
        let i = w as u64 * 64 + u64::from(word.trailing_ones());
        (i < self.len).then_some(i)
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Reads a blob (u16le length + bytes) of the header's blob buffer.
fn blob(header: &[u8], buf_off: usize, buf_size: usize, p: usize) -> Result<&[u8], String> {
    if p == 0 || p + 2 > buf_size {
        return Err(format!("VMA blob offset {p} outside the blob buffer"));
    }
    let at = buf_off + p;
    let len = u16::from_le_bytes([header[at], header[at + 1]]) as usize;
    if p + 2 + len > buf_size {
        return Err(format!("VMA blob at {p} runs past the blob buffer"));
    }
    header
        .get(at + 2..at + 2 + len)
        .ok_or_else(|| format!("VMA blob at {p} runs past the header"))
}

fn cstr(b: &[u8]) -> Result<String, String> {
    match b.split_last() {
        Some((0, s)) => Ok(String::from_utf8_lossy(s).into_owned()),
        _ => Err("VMA string blob is not NUL-terminated".into()),
    }
}

/// A VMA's devices by id (1-255): the size and which clusters were seen.
type VmaDevices = Vec<Option<(u64, Seen)>>;

fn check_vma(r: &mut dyn Read) -> Result<(), String> {
    let header = read_vma_header(r)?;
    let blobs = vma_blob_buffer(&header)?;
    check_vma_configs(&header, blobs)?;
    let mut devices = vma_devices(&header, blobs)?;
    check_vma_extents(r, &header[8..24], &mut devices)?;
    check_vma_clusters(&devices)
}

/// The whole header, its magic, version, size and MD5 checked.
fn read_vma_header(r: &mut dyn Read) -> Result<Vec<u8>, String> {
    let mut header = vec![0u8; VMA_HEADER_BASE];
    r.read_exact(&mut header)
        .map_err(|e| format!("VMA header: {}", explain(e)))?;
    if &header[0..4] != b"VMA\0" {
        return Err("not a VMA archive (bad magic)".into());
    }
    if be32(&header, 4) != 1 {
        return Err(format!("wrong vma version {}", be32(&header, 4)));
    }
    let header_size = be32(&header, 56) as usize;
    if !(VMA_HEADER_BASE..=VMA_HEADER_BASE + (1 << 20)).contains(&header_size) {
        return Err(format!("VMA header size {header_size} is impossible"));
    }
    header.resize(header_size, 0);
    r.read_exact(&mut header[VMA_HEADER_BASE..])
        .map_err(|e| format!("VMA header: {}", explain(e)))?;
    let mut zeroed = header.clone();
    zeroed[32..48].fill(0);
    if Md5::digest(&zeroed).as_slice() != &header[32..48] {
        return Err("VMA header checksum (MD5) mismatch".into());
    }
    Ok(header)
}

/// The header's blob buffer (offset, size), checked to lie inside the header.
fn vma_blob_buffer(header: &[u8]) -> Result<(usize, usize), String> {
    let buf_off = be32(header, 48) as usize;
    let buf_size = be32(header, 52) as usize;
    if buf_off
        .checked_add(buf_size)
        .is_none_or(|end| end > header.len())
    {
        return Err("VMA blob buffer lies outside the header".into());
    }
    Ok((buf_off, buf_size))
}

/// The config blobs (name and data each in the blob buffer); one must be qemu-server.conf.
fn check_vma_configs(header: &[u8], (buf_off, buf_size): (usize, usize)) -> Result<(), String> {
    let mut configs = Vec::new();
    for i in 0..256 {
        let name_p = be32(header, 2044 + 4 * i) as usize;
        let data_p = be32(header, 3068 + 4 * i) as usize;
        if name_p == 0 {
            continue;
        }
        let name = cstr(blob(header, buf_off, buf_size, name_p)?)?;
        blob(header, buf_off, buf_size, data_p)?;
        configs.push(name);
    }
    if !configs.iter().any(|c| c == "qemu-server.conf") {
        return Err("VMA holds no qemu-server.conf".into());
    }
    Ok(())
}

/// The device table: each named device's size, bounded by the format and by what we track.
fn vma_devices(header: &[u8], (buf_off, buf_size): (usize, usize)) -> Result<VmaDevices, String> {
    let mut devices: VmaDevices = vec![None; 256];
    let mut tracked = 0u64;
    for (id, dev) in devices.iter_mut().enumerate().skip(1) {
        let base = 4096 + 32 * id;
        let name_p = be32(header, base) as usize;
        if name_p == 0 {
            continue;
        }
        cstr(blob(header, buf_off, buf_size, name_p)?)?;
        let size = be64(header, base + 8);
        if size > VMA_MAX_DEVICE {
            return Err(format!(
                "VMA device {id} has an impossible size of {size} bytes (the format addresses {VMA_MAX_DEVICE} at most)"
            ));
        }
        let clusters = size.div_ceil(CLUSTER);
        tracked = tracked.saturating_add(clusters);
        if tracked > MAX_TRACKED_CLUSTERS {
            return Err(format!(
                "VMA device {id} of {size} bytes takes the archive's disks beyond what --deep checks ({} bytes)",
                MAX_TRACKED_CLUSTERS * CLUSTER
            ));
        }
        *dev = Some((size, Seen::new(clusters)));
    }
    Ok(devices)
}

/// Every extent to the end of the archive: its header, its block map and its data's length.
fn check_vma_extents(
    r: &mut dyn Read,
    uuid: &[u8],
    devices: &mut VmaDevices,
) -> Result<(), String> {
    let mut eh = [0u8; 512];
    let mut n_extent = 0u64;
    loop {
        // End of the archive exactly at an extent boundary.
        let got = read_full(r, &mut eh).map_err(explain)?;
        if got == 0 {
            return Ok(());
        }
        if got < 512 {
            return Err(format!("truncated in extent {n_extent} header"));
        }
        check_extent_header(&eh, uuid, n_extent)?;
        let block_count = u64::from(u16::from_be_bytes([eh[6], eh[7]]));
        let bytes = mark_extent_clusters(&eh, devices, n_extent)?;
        if bytes != block_count * 4096 {
            return Err(format!(
                "vma extent error - missing blocks (extent {n_extent})"
            ));
        }
        let copied = skip(r, bytes).map_err(explain)?;
        if copied != bytes {
            return Err(format!("truncated in extent {n_extent} data"));
        }
        n_extent += 1;
    }
}

/// An extent header's magic, reserved field, UUID (the archive's) and MD5.
fn check_extent_header(eh: &[u8; 512], uuid: &[u8], n_extent: u64) -> Result<(), String> {
    if &eh[0..4] != b"VMAE" {
        return Err(format!("extent {n_extent}: bad magic"));
    }
    if eh[4] != 0 || eh[5] != 0 {
        return Err(format!("extent {n_extent}: reserved field set"));
    }
    if eh[8..24] != uuid[..] {
        return Err(format!("extent {n_extent}: wrong UUID"));
    }
    let mut z = *eh;
    z[24..40].fill(0);
    if Md5::digest(z).as_slice() != &eh[24..40] {
        return Err(format!("extent {n_extent}: header checksum (MD5) mismatch"));
    }
    Ok(())
}

/// Marks the clusters of an extent's block map as seen (each once, within its device) and
/// returns the bytes of data they say follow.
fn mark_extent_clusters(
    eh: &[u8; 512],
    devices: &mut VmaDevices,
    n_extent: u64,
) -> Result<u64, String> {
    let mut bytes = 0u64;
    for j in 0..59 {
        let bi = be64(eh, 40 + 8 * j);
        let dev_id = ((bi >> 32) & 0xff) as usize;
        if dev_id == 0 {
            continue;
        }
        let mask = (bi >> 48) as u16;
        let cluster = bi & 0xffff_ffff;
        bytes += if mask == 0xffff {
            CLUSTER
        } else {
            u64::from(mask.count_ones()) * 4096
        };
        let Some((_, seen)) = devices[dev_id].as_mut() else {
            return Err(format!("extent {n_extent}: unknown device {dev_id}"));
        };
        match seen.set(cluster) {
            None => {
                return Err(format!(
                    "extent {n_extent}: cluster {cluster} beyond device {dev_id}"
                ));
            }
            Some(true) => {
                return Err(format!(
                    "found duplicated cluster {cluster} of device {dev_id}"
                ));
            }
            Some(false) => {}
        }
    }
    Ok(bytes)
}

/// Every cluster of every device was in some extent.
fn check_vma_clusters(devices: &VmaDevices) -> Result<(), String> {
    for (id, dev) in devices.iter().enumerate() {
        if let Some((_, seen)) = dev
            && let Some(missing) = seen.first_missing()
        {
            return Err(format!("detected missing cluster {missing} of device {id}"));
        }
    }
    Ok(())
}

/// Reads and drops up to `n` bytes; returns how many there were. Through a buffer of
/// 256 KiB, not io::copy's 8 KiB: the decompressor then copies out in large pieces
/// (measured: about a quarter of --deep's time went to small copies).
fn skip(r: &mut dyn Read, n: u64) -> io::Result<u64> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 256 << 10]);
    }
    BUF.with_borrow_mut(|buf| {
        let mut done = 0u64;
        while done < n {
            let want = usize::try_from(n - done).map_or(buf.len(), |w| w.min(buf.len()));
            match r.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => done += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    })
}

/// Like read_exact, but returns how much was read when the data ends early.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A numeric tar field: octal, or GNU base-256 for large values. `None` when unreadable,
/// negative or beyond 64 bits.
fn octal(field: &[u8]) -> Option<u64> {
    if let Some(first) = field.first().filter(|b| *b & 0x80 != 0) {
        if first & 0x40 != 0 {
            return None; // a negative base-256 number
        }
        let top = u64::from(first & 0x3f);
        return field[1..]
            .iter()
            .try_fold(top, |a, b| a.checked_mul(256)?.checked_add(u64::from(*b)));
    }
    let s: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn check_tar(r: &mut dyn Read) -> Result<(), String> {
    let mut h = [0u8; 512];
    let mut long_name: Option<String> = None;
    let mut has_conf = false;
    let mut members = 0u64;
    loop {
        let got = read_full(r, &mut h).map_err(explain)?;
        if got < 512 {
            return Err(format!("tar truncated after {members} members"));
        }
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let stored = octal(&h[148..156]).ok_or("tar header checksum unreadable")?;
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        if sum != stored {
            return Err(format!("tar header checksum mismatch at member {members}"));
        }
        let header_name = || {
            let n: Vec<u8> = h[..100].iter().take_while(|b| **b != 0).copied().collect();
            String::from_utf8_lossy(&n).into_owned()
        };
        let size = octal(&h[124..136]).ok_or_else(|| {
            format!(
                "tar member {members} ({}): size field unreadable or beyond 64 bits",
                header_name()
            )
        })?;
        let typeflag = h[156];
        let Some(padded) = size.checked_next_multiple_of(512) else {
            return Err(format!(
                "tar member {members} ({}): impossible size {size}",
                header_name()
            ));
        };
        if typeflag == b'L' {
            if size > MAX_LONG_NAME {
                return Err(format!(
                    "tar member {members}: GNU long name of {size} bytes (more than {MAX_LONG_NAME})"
                ));
            }
            let mut name = vec![0u8; padded as usize];
            r.read_exact(&mut name)
                .map_err(|_| "tar truncated in a long name".to_string())?;
            name.truncate(size as usize);
            long_name = Some(
                String::from_utf8_lossy(&name)
                    .trim_end_matches('\0')
                    .to_string(),
            );
            continue;
        }
        let name = long_name.take().unwrap_or_else(header_name);
        if name == "./etc/vzdump/pct.conf"
            || name == "./etc/vzdump/vps.conf"
            || name == "qemu-server.conf"
        {
            has_conf = true;
        }
        let copied = skip(r, padded).map_err(explain)?;
        if copied != padded {
            return Err(format!("tar truncated in member {name}"));
        }
        members += 1;
    }
    if !has_conf {
        return Err("tar holds no ./etc/vzdump/pct.conf (not a vzdump container backup)".into());
    }
    Ok(())
}

#[cfg(test)]
mod fuzz;
