//! `--format table`: what `pvesm prune-backups --dry-run` prints, so admins recognise it.

use std::io::{self, Write};

use pvedr::records::Backup;

/// `printf("%-${maxlen}s %15s %10s\n", volid, "<type>/<vmid>", mark)`, sorted by vmid then
/// ctime, with Proxmox's preview note when nothing is applied.
pub fn write(out: &mut dyn Write, backups: &[&Backup], preview: bool) -> io::Result<()> {
    if backups.is_empty() {
        return writeln!(out, "No backups found");
    }
    if preview {
        writeln!(
            out,
            "NOTE: this is only a preview and might not be what a subsequent"
        )?;
        writeln!(
            out,
            "prune call does if backups are removed/added in the meantime."
        )?;
        writeln!(out)?;
    }
    let mut rows: Vec<&&Backup> = backups.iter().collect();
    rows.sort_by(|a, b| {
        (a.storage.as_deref(), a.vmid.is_none(), a.vmid, a.ctime).cmp(&(
            b.storage.as_deref(),
            b.vmid.is_none(),
            b.vmid,
            b.ctime,
        ))
    });
    let maxlen = rows
        .iter()
        .map(|b| b.volid.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    writeln!(
        out,
        "{:<maxlen$} {:>15} {:>10}",
        "Backup", "Backup-ID", "Prune-Mark"
    )?;
    for b in rows {
        let id = match b.vmid {
            Some(v) => format!("{}/{v}", b.subtype),
            None => b.subtype.clone(),
        };
        let mark = b.extra.get("mark").and_then(|m| m.as_str()).unwrap_or("");
        writeln!(out, "{:<maxlen$} {id:>15} {mark:>10}", b.volid)?;
    }
    Ok(())
}
