//! The manifest written beside each offsite archive once its upload is complete: what the
//! archive is (Proxmox's fields), its checksum, and its side files. JSON, so notes in any
//! language are kept whole (S3 metadata headers take ASCII only).

use serde::{Deserialize, Serialize};

/// Manifests are small; a larger object is not one of ours.
pub const MAX_MANIFEST: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideFile {
    pub name: String,
    pub key: String,
    /// Of the file's own bytes (the plaintext of an encrypted copy).
    pub size: u64,
    pub sha256: String,
    /// An encrypted copy's object: its size and sha256 as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_sha256: Option<String>,
}

impl SideFile {
    /// The size of its object in the bucket.
    pub fn stored_size(&self) -> u64 {
        self.object_size.unwrap_or(self.size)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version of this object.
    pub manifest: u32,
    pub archive: String,
    pub key: String,
    /// Size and sha256 of the archive itself (the plaintext of an encrypted copy), as on
    /// the node: what pull, restores and backup-check compare with.
    pub size: u64,
    pub sha256: String,
    /// The archive object as stored (the age file of an encrypted copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_sha256: Option<String>,
    /// `age` when the objects are encrypted (archive and side files), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<String>,
    /// The public keys an encrypted copy is for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    pub vmid: u64,
    pub subtype: String,
    pub format: String,
    pub ctime: i64,
    /// The whole notes file, as written on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default)]
    pub protected: bool,
    pub source_volid: String,
    /// When the upload completed (RFC 3339 UTC).
    pub pushed: String,
    #[serde(default)]
    pub side_files: Vec<SideFile>,
}

impl Manifest {
    /// The size of the archive object in the bucket.
    pub fn stored_size(&self) -> u64 {
        self.object_size.unwrap_or(self.size)
    }

    pub fn is_encrypted(&self) -> bool {
        self.encrypted.is_some()
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a backup-sync manifest: {e}"))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
