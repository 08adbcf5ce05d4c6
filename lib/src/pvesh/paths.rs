//! The Proxmox API paths pvedr reads and changes through `pvesh`, built in one place.
//! Every value in a path has been validated (node, storage, volid, vmid) before.

pub const CLUSTER_STATUS: &str = "/cluster/status";
pub const CLUSTER_RESOURCES: &str = "/cluster/resources";
pub const CLUSTER_BACKUP: &str = "/cluster/backup";
pub const NODES: &str = "/nodes";

/// `/nodes/NODE/storage`.
pub fn storages(node: &str) -> String {
    format!("/nodes/{node}/storage")
}

/// `/nodes/NODE/network`: the node's interfaces.
pub fn network(node: &str) -> String {
    format!("/nodes/{node}/network")
}

/// `/nodes/NODE/storage/STORAGE/status`: its type, whether it is active, its space.
pub fn storage_status(node: &str, storage: &str) -> String {
    format!("/nodes/{node}/storage/{storage}/status")
}

/// `/nodes/NODE/storage/STORAGE/content`.
pub fn contents(node: &str, storage: &str) -> String {
    format!("/nodes/{node}/storage/{storage}/content")
}

/// `/nodes/NODE/storage/STORAGE/content/VOLID`: one volume (its path, notes, protection).
pub fn content(node: &str, storage: &str, volid: &str) -> String {
    format!("/nodes/{node}/storage/{storage}/content/{volid}")
}

/// `/nodes/NODE/time`: the node's clock and time zone (`localhost`: the node pvesh runs on).
pub fn node_time(node: &str) -> String {
    format!("/nodes/{node}/time")
}

/// `/nodes/NODE/tasks`.
pub fn tasks(node: &str) -> String {
    format!("/nodes/{node}/tasks")
}

/// `/nodes/NODE/tasks/UPID/log`.
pub fn task_log(node: &str, upid: &str) -> String {
    format!("/nodes/{node}/tasks/{upid}/log")
}

/// `/nodes/NODE/{qemu,lxc}/VMID/snapshot`: a guest's snapshots and the `current` entry.
pub fn guest_snapshots(node: &str, guest_type: &str, vmid: u64) -> String {
    format!("/nodes/{node}/{guest_type}/{vmid}/snapshot")
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths() {
        assert_eq!(
            super::content("pve1", "local", "local:backup/x.vma.zst"),
            "/nodes/pve1/storage/local/content/local:backup/x.vma.zst"
        );
        assert_eq!(
            super::task_log("pve1", "UPID:x"),
            "/nodes/pve1/tasks/UPID:x/log"
        );
    }
}
