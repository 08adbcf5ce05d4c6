//! What the subcommands share: where the state is, its bucket and versions, and the
//! command that deletes one.

use pvedr::error::{Error, Result};
use pvedr::records::{TfstateVersion, rfc3339};
use pvedr::s3::{Bucket, Entry, MAX_IN_MEMORY};
use pvedr::shell::quote;

use crate::cli::Cli;
use crate::location::StateLocation;

pub(crate) fn location(cli: &Cli, env: Option<&str>) -> Result<StateLocation> {
    StateLocation::resolve(&cli.s3, env, cli.key.as_deref(), cli.workspace.as_deref())
}

pub(crate) fn one_location(cli: &Cli) -> Result<StateLocation> {
    if cli.s3.env.len() > 1 {
        return Err(Error::usage(
            "several --env: only export takes more than one",
        ));
    }
    location(cli, cli.s3.env.first().map(String::as_str))
}

/// The state's bucket and its history, newest first.
pub(crate) fn open(t: &StateLocation) -> Result<(Bucket, Vec<Entry>)> {
    let s3 = Bucket::connect(&t.endpoint, &t.bucket)?;
    let h = s3.versions(&t.key, true)?;
    Ok((s3, h))
}

pub(crate) fn get(s3: &Bucket, t: &StateLocation, version: Option<&str>) -> Result<Vec<u8>> {
    s3.get(&t.key, version, MAX_IN_MEMORY)
}

pub(crate) fn record(t: &StateLocation, e: &Entry) -> TfstateVersion {
    TfstateVersion {
        env: t.env.clone(),
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        version_id: e.version_id.clone(),
        is_latest: e.is_latest,
        delete_marker: e.delete_marker,
        last_modified: e.last_modified.map(rfc3339),
        size: e.size,
        etag: e.etag.clone(),
        ..Default::default()
    }
}

pub(crate) fn find<'a>(h: &'a [Entry], v: &str) -> Result<&'a Entry> {
    if v == "latest" {
        return h
            .first()
            .ok_or_else(|| Error::Refused("the key has no versions".into()));
    }
    h.iter()
        .find(|e| e.version_id == v)
        .ok_or_else(|| Error::Refused(format!("no version '{}' of this key", v.escape_debug())))
}

/// `aws s3api delete-object …`, every value quoted, the endpoint without credentials.
pub(crate) fn delete_command(t: &StateLocation, version: Option<&str>) -> String {
    let ep = t
        .endpoint
        .printable()
        .map(|e| format!(" --endpoint-url {}", quote(&e)))
        .unwrap_or_default();
    let v = version
        .map(|v| format!(" --version-id {}", quote(v)))
        .unwrap_or_default();
    format!(
        "aws s3api delete-object{ep} --bucket {} --key {}{v}",
        quote(&t.bucket),
        quote(&t.key)
    )
}
