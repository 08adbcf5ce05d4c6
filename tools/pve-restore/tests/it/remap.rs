//! Restoring onto a replacement node with other storages and bridges (issue 26): maps,
//! every check before any change, each disk and NIC where the map says.

use crate::common::{argv, backup_holding, offsite_moto, reinstalled};
use pvedr_testkit::{ApiFront, SimNode, Sshd, assert_says, json_lines, outcome};
use serde_json::{Value, json};

const G: u64 = 1 << 30;
/// Room on `bulk` for 20 guests' 200 GiB disks at once: a run of many guests is one site,
/// whose disks must fit together (`site::pack`), not only each alone.
const SITE_ROOM: u64 = 20 * 200 * G + 250 * G;

const VM: &str = "boot: order=scsi0\ncores: 2\nmemory: 2048\nname: app\n\
    net0: virtio=BC:24:11:00:02:00,bridge=vmbr0,firewall=1\n\
    net1: virtio=BC:24:11:00:02:01,bridge=vmbr1,tag=20\n\
    net2: e1000=BC:24:11:00:02:02,bridge=vmbr2\n\
    scsi0: local-lvm:vm-200-disk-0,size=32G\nscsi1: local-lvm:vm-200-disk-1,size=64G\n\
    scsi2: nas:200/vm-200-disk-2.qcow2,size=200G\nscsihw: virtio-scsi-single\n";

/// Storage and bridge maps that place every disk and NIC of [`VM`] on the replacement node.
const VM_ONTO: (&str, &str) = ("local-lvm:nvme,nas:bulk", "vmbr1:vmbr9,vmbr2:vmbr9");

const PCI_VM: &str = "memory: 1024\nname: gpu\nnet0: virtio=BC:24:11:00:02:10,bridge=vmbr0\n\
    scsi0: local-lvm:vm-201-disk-0,size=8G\nhostpci0: 0000:01:00.0,pcie=1\n";

const CT: &str = "arch: amd64\nhostname: files\nmemory: 512\nostype: debian\nunprivileged: 1\n\
    net0: name=eth0,bridge=vmbr1,hwaddr=BC:24:11:01:02:02,ip=dhcp,type=veth\n\
    rootfs: local-lvm:vm-202-disk-0,size=8G\n\
    mp0: nas:202/vm-202-disk-1.raw,mp=/data,backup=1,size=20G\n";

/// The demo cluster with pve1 reinstalled: only `local` (no images), `nvme` (lvmthin) and
/// `bulk` (dir, `bulk_free` bytes free); bridges vmbr0 and vmbr9.
fn replacement_node(bulk_free: u64) -> SimNode {
    let sim = reinstalled(|root| {
        vec![
            json!({"storage": "nvme", "type": "lvmthin", "content": "images,rootdir", "shared": 0,
                   "status": {"total": 500 * G, "used": 100 * G, "avail": 400 * G}}),
            json!({"storage": "bulk", "type": "dir", "path": format!("{root}/bulk"),
                   "content": "images,rootdir", "shared": 0,
                   "status": {"total": bulk_free + 750 * G, "used": 750 * G, "avail": bulk_free}}),
        ]
    });
    sim.write_json(
        "network.json",
        &json!({"pve1": [{"iface": "vmbr0", "type": "bridge"}, {"iface": "vmbr9", "type": "bridge"},
                         {"iface": "eno1", "type": "eth"}]}),
    );
    sim
}

/// A backup of `vmid` on `local` holding `config`; its volid.
fn backup(sim: &SimNode, kind: &str, vmid: u64, config: &str) -> String {
    let name = backup_holding(sim, kind, vmid, 1705197602, config);
    format!("local:backup/{name}")
}

/// [`replacement_node`] over sshd.
fn replacement(bulk_free: u64) -> (SimNode, Sshd) {
    let sim = replacement_node(bulk_free);
    let sshd = Sshd::start(&sim);
    (sim, sshd)
}

/// [`replacement`] with room on `bulk` for one guest, and a backup of `vmid` holding
/// `config` on `local`: its volid.
fn replacement_with(kind: &str, vmid: u64, config: &str) -> (SimNode, Sshd, String) {
    let (sim, sshd) = replacement(250 * G);
    let volid = backup(&sim, kind, vmid, config);
    (sim, sshd, volid)
}

/// The storage and bridge maps `--target-storage storage --target-bridge bridge`.
fn maps<'a>(storage: &'a str, bridge: &'a str) -> [&'a str; 4] {
    ["--target-storage", storage, "--target-bridge", bridge]
}

/// The arguments that restore `volid` with [`maps`] (`--yes`).
fn mapped<'a>(volid: &'a str, storage: &'a str, bridge: &'a str) -> Vec<&'a str> {
    [&["--volid", volid][..], &maps(storage, bridge), &["--yes"]].concat()
}

/// The arguments that restore `volid` with its disks on `storage` (`--yes`).
fn onto<'a>(volid: &'a str, storage: &'a str) -> [&'a str; 5] {
    ["--volid", volid, "--target-storage", storage, "--yes"]
}

/// The config of [`VM`] restored as 200 with [`VM_ONTO`]: each disk and NIC where mapped.
fn vm_where_mapped(sim: &SimNode) -> Value {
    let c = config(sim, 200);
    // qmrestore puts all on nvme (the target with room for all), scsi2 then moves.
    assert_eq!(
        ["scsi0", "scsi1", "scsi2"].map(|k| storage_of(&c[k])),
        ["nvme", "nvme", "bulk"],
        "{c}"
    );
    assert_eq!(c["net2"], "e1000=BC:24:11:00:02:02,bridge=vmbr9");
    c
}

/// pve-restore with `--all` on the backup records of `backups`, then `args`.
fn all(sshd: &Sshd, backups: &[(u64, String)], args: &[&str]) -> assert_cmd::Command {
    let mut cmd = sshd.bin("pve-restore");
    cmd.arg("--all").args(args).write_stdin(records(backups));
    cmd
}

fn restore(sshd: &Sshd, args: &[&str]) -> (Option<Value>, i32, String) {
    let out = sshd.bin("pve-restore").args(args).output().expect("run");
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (rec, out.status.code().unwrap_or(-1), err)
}

fn config(sim: &SimNode, vmid: u64) -> Value {
    sim.read_json(&format!("guests/{vmid}.json"))["config"].clone()
}

fn storage_of(v: &Value) -> &str {
    v.as_str().and_then(|s| s.split(':').next()).unwrap_or("")
}

#[test]
fn every_mismatch_of_the_replacement_node_in_one_refusal_and_nothing_changed() {
    let (sim, sshd, volid) = replacement_with("qemu", 200, VM);
    sim.clear_commands();
    let args = mapped(&volid, "local-lvm:nvme,nas:local", "vmbr1:vmbr9");
    let (_, code, err) = restore(&sshd, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("storage local (scsi2) does not allow content images"),
        "{err}"
    );
    assert!(err.contains("bridge vmbr2 (net2)"), "{err}");
    assert!(!err.contains("vmbr9 (net1)"), "{err}");
    assert_eq!(sim.mutations(), Vec::<String>::new());
    assert!(sim.read_json("guests/200.json").is_null());
}

#[test]
fn without_maps_a_backup_the_replacement_node_cannot_take_is_refused_naming_what_is_missing() {
    let (sim, sshd, volid) = replacement_with("qemu", 200, VM);
    sim.clear_commands();
    let (_, code, err) = restore(&sshd, &["--volid", &volid, "--yes"]);
    assert_eq!(code, 2, "{err}");
    for missing in [
        "storage local-lvm (scsi0, scsi1) does not exist",
        "storage nas (scsi2) does not exist",
        "bridge vmbr1 (net1)",
        "bridge vmbr2 (net2)",
        "--target-storage",
    ] {
        assert!(err.contains(missing), "{missing}: {err}");
    }
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_map_that_overflows_a_storage_and_a_host_device_are_refused() {
    let (sim, sshd, volid) = replacement_with("qemu", 200, VM);
    let (_, code, err) = restore(&sshd, &mapped(&volid, "bulk", "vmbr9"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("storage bulk (scsi0, scsi1, scsi2) has 250.0 GiB free for 296.0 GiB"),
        "{err}"
    );
    let pci = backup(&sim, "qemu", 201, PCI_VM);
    let (_, code, err) = restore(&sshd, &onto(&pci, "nvme"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hostpci0 passes host device 0000:01:00.0"),
        "{err}"
    );
    assert!(err.contains("--drop-passthrough"), "{err}");
    assert_eq!(sim.mutations(), Vec::<String>::new());
    // Dropped when asked, and the record says so; --storage with a bridge map is the
    // storage map's one target.
    let args = argv("--storage nvme --target-bridge 1 --drop-passthrough --yes");
    let (rec, code, err) = restore(&sshd, &[&["--volid", &pci][..], &args].concat());
    assert_eq!(code, 0, "{err}");
    let rec = rec.expect("record");
    assert_eq!(rec["dropped"], json!(["hostpci0"]));
    let c = config(&sim, 201);
    assert!(c.get("hostpci0").is_none(), "{c}");
    assert_eq!(storage_of(&c["scsi0"]), "nvme");
}

#[test]
fn a_vm_comes_back_with_each_disk_and_nic_where_mapped_and_stopped() {
    let (sim, sshd, volid) = replacement_with("qemu", 200, VM);
    let (rec, code, err) = restore(&sshd, &mapped(&volid, VM_ONTO.0, VM_ONTO.1));
    assert_eq!(code, 0, "{err}");
    let rec = rec.expect("record");
    let c = vm_where_mapped(&sim);
    assert!(
        c.as_object()
            .expect("config")
            .keys()
            .all(|k| !k.starts_with("unused")),
        "{c}"
    );
    assert_eq!(
        c["net0"],
        "virtio=BC:24:11:00:02:00,bridge=vmbr0,firewall=1"
    );
    assert_eq!(c["net1"], "virtio=BC:24:11:00:02:01,bridge=vmbr9,tag=20");
    assert_eq!(sim.read_json("guests/200.json")["status"], "stopped");
    assert_eq!(
        rec["disks"][2],
        json!({"key": "scsi2", "source_storage": "nas", "target_storage": "bulk", "size": 200 * G})
    );
    assert_eq!(
        rec["nets"][1],
        json!({"key": "net1", "source_bridge": "vmbr1", "target_bridge": "vmbr9"})
    );
    assert_eq!(rec["way_back"], "qm destroy 200");
    let moves: Vec<String> = sim
        .mutations()
        .into_iter()
        .filter(|m| m.contains("disk move"))
        .collect();
    assert_eq!(moves, ["qm disk move 200 scsi2 bulk --delete 1"]);
}

#[test]
fn a_cpu_type_or_machine_the_node_does_not_offer_is_warned_and_the_restore_goes_on() {
    let (sim, sshd) = replacement(250 * G);
    let text = format!("{PCI_VM}cpu: x86-64-v5,flags=+aes\nmachine: pc-q35-10.1+pve1\n")
        .replace("hostpci0: 0000:01:00.0,pcie=1\n", "");
    let volid = backup(&sim, "qemu", 201, &text);
    let (_, code, err) = restore(&sshd, &onto(&volid, "nvme"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("cpu x86-64-v5 is not one node pve1 offers"),
        "{err}"
    );
    assert!(
        err.contains("machine pc-q35-10.1+pve1 is not one node pve1 offers"),
        "{err}"
    );
    assert_eq!(config(&sim, 201)["cpu"], "x86-64-v5,flags=+aes");
}

#[test]
fn a_mapped_device_needs_an_entry_for_the_target_node() {
    let (sim, sshd) = replacement(250 * G);
    let text = PCI_VM.replace(
        "hostpci0: 0000:01:00.0,pcie=1",
        "hostpci0: mapping=gpu,pcie=1",
    );
    let volid = backup(&sim, "qemu", 201, &text);
    let gpu = |node: &str| json!({"pci": [{"id": "gpu", "map": [format!("node={node},path=0000:01:00.0,id=10de:2204")]}]});
    sim.write_json("mapping.json", &gpu("pve2"));
    let args = onto(&volid, "nvme");
    let (_, code, err) = restore(&sshd, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("hostpci0 uses pci mapping gpu which has no device on node pve1"),
        "{err}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
    sim.write_json("mapping.json", &gpu("pve1"));
    let (_, code, err) = restore(&sshd, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(config(&sim, 201)["hostpci0"], "mapping=gpu,pcie=1");
}

#[test]
fn a_failed_disk_move_leaves_the_new_guest_and_names_its_destroy() {
    let (sim, sshd, volid) = replacement_with("qemu", 200, VM);
    sim.set_faults(json!([{"match": "qm disk move 200 scsi2", "stderr": "storage migration failed: copy interrupted"}]));
    let args = mapped(&volid, VM_ONTO.0, "vmbr9");
    let (rec, code, err) = restore(&sshd, &args);
    assert_eq!(code, 1, "{err}");
    let rec = rec.expect("record");
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .is_some_and(|e| e.contains("storage migration failed")),
        "{rec}"
    );
    assert_eq!(rec["way_back"], "qm destroy 200");
    // Nothing ran after the failed move: the NICs keep the backup's bridges.
    let c = config(&sim, 200);
    assert_eq!(c["net1"], "virtio=BC:24:11:00:02:01,bridge=vmbr1,tag=20");
}

#[test]
fn a_container_gets_each_volume_with_its_options_and_its_nic_on_the_mapped_bridge() {
    let (sim, sshd, volid) = replacement_with("lxc", 202, CT);
    let args = mapped(&volid, VM_ONTO.0, "vmbr1:vmbr9");
    let (rec, code, err) = restore(&sshd, &args);
    assert_eq!(code, 0, "{err}");
    let restore = sim
        .mutations()
        .into_iter()
        .find(|m| m.starts_with("pct restore"))
        .expect("pct restore ran");
    assert!(
        restore.ends_with(
            "--rootfs nvme:8 --mp0 bulk:20,mp=/data,backup=1 --net0 name=eth0,bridge=vmbr9,hwaddr=BC:24:11:01:02:02,ip=dhcp,type=veth"
        ),
        "{restore}"
    );
    let c = config(&sim, 202);
    assert_eq!(storage_of(&c["rootfs"]), "nvme", "{c}");
    assert!(
        c["mp0"]
            .as_str()
            .is_some_and(|v| v.starts_with("bulk:") && v.contains("mp=/data,backup=1")),
        "{c}"
    );
    assert_eq!(
        c["net0"],
        "name=eth0,bridge=vmbr9,hwaddr=BC:24:11:01:02:02,ip=dhcp,type=veth"
    );
    assert_eq!(rec.expect("record")["disks"][1]["target_storage"], "bulk");
}

#[test]
fn a_bad_map_is_a_usage_error_before_any_connection() {
    let (sim, sshd) = replacement(250 * G);
    let args = argv("--vmid 100 --target-storage local-lvm:nvme,local-lvm:bulk --yes");
    let (_, code, err) = restore(&sshd, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("duplicate mapping for source 'local-lvm'"),
        "{err}"
    );
    assert!(sim.commands().is_empty(), "{:?}", sim.commands());
}

const SECRET: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

fn over_api(front: &ApiFront, token: &str, args: &[&str]) -> (Option<Value>, i32, String) {
    let out = front
        .bin("pve-restore", token, SECRET)
        .args(["--no-archive-test", "--yes"])
        .args(args)
        .output()
        .expect("run");
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (rec, out.status.code().unwrap_or(-1), err)
}

#[test]
fn over_the_api_the_same_maps_end_the_same_and_a_bridge_the_token_cannot_see_is_refused() {
    let sim = replacement_node(250 * G);
    let front = ApiFront::start(&sim);
    let volid = backup(&sim, "qemu", 200, VM);
    let maps = [
        &["--volid", volid.as_str()][..],
        &maps(VM_ONTO.0, VM_ONTO.1),
    ]
    .concat();
    // Everything but SDN: Proxmox lists no bridge such a token may not use.
    let no_sdn = json!([
        {"path": "/", "roles": ["PVEVMAdmin", "PVEDatastoreAdmin", "PVESysAdmin"], "propagate": true},
    ]);
    front.add_token("dr@pve!nosdn", SECRET, no_sdn);
    let (_, code, err) = over_api(&front, "dr@pve!nosdn", &maps);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bridge vmbr9 (net1)") && err.contains("SDN.Use"),
        "{err}"
    );
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    front.add_token(
        "dr@pve!admin",
        SECRET,
        json!([{"path": "/", "roles": ["Administrator"], "propagate": true}]),
    );
    let (rec, code, err) = over_api(&front, "dr@pve!admin", &maps);
    assert_eq!(code, 0, "{err}\n{}", front.server_log());
    vm_where_mapped(&sim);
    assert_eq!(rec.expect("record")["nets"][2]["target_bridge"], "vmbr9");
}

/// `volid`'s archive moved off the node into an offsite bucket (moto), as `backup-sync
/// push` leaves it after the node is lost, then restored from there, streamed, with
/// `args`: the restore record, and whether the archive came back onto the node's disk.
fn restore_streamed(
    sim: &SimNode,
    sshd: &Sshd,
    volid: &str,
    subtype: &str,
    args: &[&str],
) -> (Value, bool) {
    use sha2::{Digest, Sha256};
    let moto = offsite_moto();
    let name = volid.rsplit('/').next().expect("name").to_string();
    let file = sim.root().join("local/dump").join(&name);
    let bytes = std::fs::read(&file).expect("archive");
    std::fs::remove_file(&file).expect("the node lost it");
    let vmid: u64 = name
        .split('-')
        .nth(2)
        .and_then(|v| v.parse().ok())
        .expect("vmid");
    let key = format!("pve1/{vmid}/{name}");
    crate::common::put(&moto.endpoint(), &key, bytes.clone());
    let format = name.split_once('.').map(|(_, f)| f).unwrap_or("");
    let record = json!({"kind": "backup", "node": "pve1", "storage": "offsite",
        "volid": format!("offsite:backup/{key}"), "vmid": vmid, "subtype": subtype,
        "ctime": 1705197602, "size": bytes.len(), "format": format,
        "url": format!("s3://offsite/{key}"), "sha256": format!("{:x}", Sha256::digest(&bytes))});
    let out = sshd
        .bin("pve-restore")
        .args(["--endpoint", &moto.endpoint(), "--yes"])
        .args(args)
        .envs(pvedr_testkit::s3::s3_env())
        .write_stdin(record.to_string())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore")
        .expect("record");
    assert_eq!(
        rec["offsite"]["bytes"],
        json!(bytes.len()),
        "not streamed: {rec}"
    );
    let log = std::fs::read_to_string(sim.root().join("commands.log")).unwrap_or_default();
    let piped = if subtype == "lxc" {
        format!(r#""argv": ["restore", "{vmid}", "-", "#)
    } else {
        r#""argv": ["-", "#.to_string()
    };
    assert!(log.contains(&piped), "not streamed: {log}");
    (rec, file.exists())
}

/// The disaster case end to end: the node is reinstalled with other storage and bridge
/// names, and the container comes back from its offsite copy, streamed (no archive on the
/// node), with every volume and NIC where the maps say, its config read from the head of
/// the object.
#[test]
fn a_container_streamed_from_its_offsite_copy_lands_where_mapped() {
    let (sim, sshd, volid) = replacement_with("lxc", 202, CT);
    let maps = maps("nvme", "vmbr9");
    let (rec, on_disk) = restore_streamed(&sim, &sshd, &volid, "lxc", &maps);
    assert_eq!(rec["status"], "restored", "{rec}");
    assert!(!on_disk, "an archive was written on the node");
    let c = config(&sim, 202);
    assert_eq!(
        [storage_of(&c["rootfs"]), storage_of(&c["mp0"])],
        ["nvme", "nvme"],
        "{c}"
    );
    assert!(c["mp0"].as_str().unwrap_or("").contains("mp=/data"), "{c}");
    assert!(
        c["net0"].as_str().unwrap_or("").contains("bridge=vmbr9"),
        "{c}"
    );
    assert_says(&c, "net0", "hwaddr=BC:24:11:01:02:02");
    assert_eq!(c["unprivileged"], "1", "{c}");
    assert_eq!(rec["disks"][1]["target_storage"], "nvme", "{rec}");
    assert_eq!(rec["nets"][0]["target_bridge"], "vmbr9", "{rec}");
}

/// The same for a VM: its config from the VMA's header, every disk streamed onto the
/// mapped storage with room for all, then moved where its map says; NICs rebridged.
#[test]
fn a_vm_streamed_from_its_offsite_copy_lands_where_mapped() {
    let (sim, sshd, volid) = replacement_with("qemu", 200, VM);
    let maps = maps(VM_ONTO.0, VM_ONTO.1);
    let (rec, on_disk) = restore_streamed(&sim, &sshd, &volid, "qemu", &maps);
    assert_eq!(rec["status"], "restored", "{rec}");
    assert!(!on_disk, "an archive was written on the node");
    let c = vm_where_mapped(&sim);
    assert_eq!(c["net1"], "virtio=BC:24:11:00:02:01,bridge=vmbr9,tag=20");
}

/// Backup records of `volids` (VMs on `local` of pve1), as pve-ls-backups prints them.
fn records(volids: &[(u64, String)]) -> String {
    volids
        .iter()
        .map(|(vmid, volid)| {
            let r = json!({"kind": "backup", "volid": volid, "vmid": vmid, "subtype": "qemu",
                "format": "vma.zst", "node": "pve1", "storage": "local", "ctime": 1705197602,
                "time": "2024-01-14T02:00:02Z"});
            format!("{r}\n")
        })
        .collect()
}

/// How many simulated `pvesh get PATH` (or `pvesm extractconfig`) calls ran.
fn calls(sim: &SimNode, cmd: &str, first: &str) -> usize {
    sim.commands()
        .iter()
        .filter(|c| c["cmd"] == cmd && c["argv"][0] == first)
        .count()
}

fn pvesh_gets(sim: &SimNode, path: &str) -> usize {
    sim.commands()
        .iter()
        .filter(|c| c["cmd"] == "pvesh" && c["argv"][0] == "get" && c["argv"][1] == path)
        .count()
}

#[test]
fn twenty_guests_planned_in_one_run_read_the_node_once_and_are_refused_as_alone() {
    let (sim, sshd) = replacement(SITE_ROOM);
    // The last one has a disk on `tank`, which the map sends to `local` (no images).
    let backups: Vec<(u64, String)> = (300..320)
        .map(|v| {
            let text = match v {
                319 => VM.replace("scsi1: local-lvm:", "scsi1: tank:"),
                _ => VM.to_string(),
            };
            (v, backup(&sim, "qemu", v, &text))
        })
        .collect();
    sim.clear_commands();
    let onto = maps("local-lvm:nvme,nas:bulk,tank:local", VM_ONTO.1);
    let (lines, code, err) = outcome(all(&sshd, &backups, &[&["--dry-run"][..], &onto].concat()));
    // Among several records the guest is refused alone, the others planned.
    assert_eq!(code, 3, "{err}");
    let planned = lines
        .iter()
        .filter(|r| r["kind"] == "restore" && r["status"] == "planned");
    assert_eq!(planned.count(), 19, "{err}");
    let refused = format!(
        "{} cannot be restored on node pve1 as mapped; nothing was changed:\n  storage local (scsi1) does not allow content images",
        backups[19].1
    );
    assert!(err.contains(&refused), "{err}");
    let last = lines
        .iter()
        .find(|r| r["vmid"] == 319)
        .expect("319's record");
    assert_eq!(last["status"], "refused", "{last}");
    assert_says(last, "error", &refused);
    assert_eq!(lines.last().expect("summary")["kind"], "summary");
    // Once per node per run, not once per guest; each archive's config once.
    assert_eq!(pvesh_gets(&sim, "/nodes/pve1/storage"), 1);
    assert_eq!(pvesh_gets(&sim, "/nodes/pve1/network"), 1);
    assert_eq!(pvesh_gets(&sim, "/cluster/resources"), 1);
    assert_eq!(calls(&sim, "pvesm", "extractconfig"), 20);
    assert_eq!(sim.mutations(), Vec::<String>::new());
    // The same verdict for that guest alone.
    let args = [&["--volid", &backups[19].1, "--dry-run"][..], &onto[..2]].concat();
    let (_, code, alone) = restore(&sshd, &args);
    assert_eq!(code, 2, "{alone}");
    assert!(alone.contains(&refused), "{alone}");
}

#[test]
fn a_restore_reads_the_cluster_again_after_each_guest_it_changed() {
    let (sim, sshd) = replacement(SITE_ROOM);
    // Two backups of one guest: once the first is restored, the second would overwrite it.
    let backups: Vec<(u64, String)> = [1705197602, 1705111202]
        .map(|epoch| {
            let name = backup_holding(&sim, "qemu", 300, epoch, VM);
            (300, format!("local:backup/{name}"))
        })
        .to_vec();
    let onto = maps(VM_ONTO.0, "vmbr9");
    let (lines, _, err) = outcome(all(&sshd, &backups, &[&["--yes"][..], &onto].concat()));
    let recs: Vec<Value> = lines
        .into_iter()
        .filter(|r| r["kind"] == "restore")
        .collect();
    assert_eq!(recs.len(), 2, "{err}");
    assert_eq!(recs[0]["status"], "restored", "{err}");
    // Not "free" from what the run read before the first restore.
    assert_eq!(recs[1]["status"], "refused", "{err}");
    assert!(
        recs[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("guest 300 exists on pve1: overwriting it needs --force")),
        "{}",
        recs[1]
    );
    assert_eq!(
        sim.mutations()
            .iter()
            .filter(|m| m.starts_with("qmrestore"))
            .count(),
        1
    );
}

#[test]
fn drills_of_all_records_refuse_a_guest_the_maps_cannot_place_and_go_on_to_the_summary() {
    let (sim, sshd) = replacement(SITE_ROOM);
    // The first has a disk on `tank`, which the map sends to `local` (no images).
    let backups = vec![
        (
            300,
            backup(
                &sim,
                "qemu",
                300,
                &VM.replace("scsi1: local-lvm:", "scsi1: tank:"),
            ),
        ),
        (301, backup(&sim, "qemu", 301, VM)),
    ];
    let locks = tempfile::tempdir().expect("locks");
    sim.clear_commands();
    let onto = maps("local-lvm:nvme,nas:bulk,tank:local", VM_ONTO.1);
    let mut cmd = all(
        &sshd,
        &backups,
        &[&["--test", "--dry-run"][..], &onto].concat(),
    );
    let (lines, code, err) = outcome(cmd.env("XDG_RUNTIME_DIR", locks.path()));
    assert_eq!(code, 3, "{err}");
    let recs: Vec<&Value> = lines.iter().filter(|r| r["kind"] == "restore").collect();
    assert_eq!(recs.len(), 2, "{err}");
    assert_eq!(recs[0]["vmid"], 300);
    assert_eq!(recs[0]["status"], "refused", "{}", recs[0]);
    assert_eq!(recs[0]["drill"], true);
    assert_says(
        recs[0],
        "error",
        "storage local (scsi1) does not allow content images",
    );
    assert_eq!(recs[1]["vmid"], 301);
    assert_eq!(recs[1]["status"], "planned", "{}", recs[1]);
    let summary = lines.last().expect("summary");
    assert_eq!(summary["kind"], "summary", "{err}");
    assert_eq!(summary["exit_code"], 3);
    assert_eq!(summary["counts"]["refused"], 1, "{summary}");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}
