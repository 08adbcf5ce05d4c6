//! Memory stays bounded by the part size, whatever the archive's size: an archive of 17
//! parts streams over SSH with a peak RSS within 4 x part size x jobs + 64 MiB.

use std::process::Stdio;
use std::time::Duration;

use pvedr_testkit::demo_over_ssh;

use crate::common::{Offsite, noise, of_kind, record};

const MIB: u64 = 1024 * 1024;

/// VmHWM of a running process, in bytes.
fn hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn peak_memory_is_bounded_by_the_part_size() {
    let (sim, sshd) = demo_over_ssh();
    let s3 = Offsite::new();
    let name = "vzdump-qemu-100-2024_01_16-02_00_02.vma.zst";
    let part = 5 * MIB;
    let size = 17 * part + 12345;
    std::fs::write(sim.dump_dir("local").join(name), noise(size as usize, 3)).expect("archive");
    let mut child = pvedr_testkit::spawn_fed(
        s3.push_process()
            .args(["--jobs", "1"])
            .args(sshd.args())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
        record(name, size).as_bytes(),
    );
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
    });
    // VmHWM only grows: the last value read before the exit is the peak (up to then).
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(hwm(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.wait().expect("wait").success());
    let out = reader.join().expect("join").expect("read");
    let step = &of_kind(&out, "step")[0];
    assert_eq!(step["status"], "changed", "{step}");
    assert_eq!(step["bytes"], size);
    let bound = 4 * part + 64 * MIB;
    eprintln!(
        "peak RSS {} MiB for a {} MiB archive (bound {} MiB)",
        peak / MIB,
        size / MIB,
        bound / MIB
    );
    assert!(peak > 0, "VmHWM was read");
    assert!(peak <= bound, "peak RSS {peak} > {bound}");
    assert_eq!(
        s3.object(&format!("pve/pve1/100/{name}")).len() as u64,
        size
    );
}
