//! The `backend "s3"` block of a Terraform directory: where its state lives.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The override file `tfstate-versions fallback` writes; not the user's configuration.
pub const FALLBACK_OVERRIDE: &str = "pvedr_fallback_override.tf";

/// What a `backend "s3"` block says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backend {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub workspace_key_prefix: Option<String>,
    pub dynamodb_table: Option<String>,
    pub dynamodb_endpoint: Option<String>,
}

fn attr_str(body: &hcl::Body, name: &str) -> Option<String> {
    body.attributes()
        .find(|a| a.key() == name)
        .and_then(|a| match a.expr() {
            hcl::Expression::String(s) => Some(s.clone()),
            _ => None,
        })
}

/// `endpoints = { s3 = "…", dynamodb = "…" }` → the one for `service`.
fn endpoints_entry(b: &hcl::Body, service: &str) -> Option<String> {
    let a = b.attributes().find(|a| a.key() == "endpoints")?;
    let hcl::Expression::Object(o) = a.expr() else {
        return None;
    };
    o.iter().find_map(|(k, v)| {
        let key = match k {
            hcl::ObjectKey::Identifier(i) => i.to_string(),
            hcl::ObjectKey::Expression(hcl::Expression::String(s)) => s.clone(),
            _ => return None,
        };
        match v {
            hcl::Expression::String(s) if key == service => Some(s.clone()),
            _ => None,
        }
    })
}

fn backend_of(b: &hcl::Body) -> Backend {
    Backend {
        bucket: attr_str(b, "bucket"),
        key: attr_str(b, "key"),
        region: attr_str(b, "region"),
        endpoint: attr_str(b, "endpoint").or_else(|| endpoints_entry(b, "s3")),
        workspace_key_prefix: attr_str(b, "workspace_key_prefix"),
        dynamodb_table: attr_str(b, "dynamodb_table"),
        dynamodb_endpoint: attr_str(b, "dynamodb_endpoint")
            .or_else(|| endpoints_entry(b, "dynamodb")),
    }
}

fn tf_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "tf")
                && p.file_name().is_none_or(|n| n != FALLBACK_OVERRIDE)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the `backend "s3"` block of the `.tf` files of a directory.
pub fn read_backend(dir: &Path) -> Result<Backend> {
    for f in tf_files(dir)? {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Error::io(format!("cannot read {}", f.display()), e))?;
        let body: hcl::Body = hcl::from_str(&text).map_err(|e| Error::File {
            path: f.clone(),
            message: format!("not valid HCL: {e}"),
        })?;
        for tf in body.blocks().filter(|b| b.identifier() == "terraform") {
            let s3 = tf.body().blocks().find(|b| {
                b.identifier() == "backend" && b.labels().first().map(|l| l.as_str()) == Some("s3")
            });
            if let Some(be) = s3 {
                return Ok(backend_of(be.body()));
            }
        }
    }
    Err(Error::usage(format!(
        "no backend \"s3\" block in the .tf files of {}",
        dir.display()
    )))
}

/// The state key of a workspace: `<workspace_key_prefix, default env:>/W/<key>`.
pub fn workspace_key(backend: &Backend, key: &str, workspace: Option<&str>) -> Result<String> {
    match workspace {
        None | Some("default") => Ok(key.to_string()),
        Some(w) => {
            if w.is_empty() || w.contains('/') || w.len() > 256 {
                return Err(Error::usage(format!(
                    "invalid workspace '{}'",
                    w.escape_debug()
                )));
            }
            Ok(format!(
                "{}/{w}/{key}",
                backend.workspace_key_prefix.as_deref().unwrap_or("env:")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_block() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("main.tf"),
            "terraform {\n  backend \"s3\" {\n    bucket = \"tfstate-prod\"\n    key = \"infra/terraform.tfstate\"\n    region = \"eu-west-3\"\n    endpoints = { s3 = \"http://127.0.0.1:9000\" }\n    use_path_style = true\n  }\n}\nresource \"terraform_data\" \"a\" {}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join(FALLBACK_OVERRIDE),
            "terraform {\n backend \"local\" {}\n}\n",
        )
        .expect("write");
        let b = read_backend(dir.path()).expect("backend");
        assert_eq!(b.bucket.as_deref(), Some("tfstate-prod"));
        assert_eq!(b.key.as_deref(), Some("infra/terraform.tfstate"));
        assert_eq!(b.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            workspace_key(&b, "infra/terraform.tfstate", Some("dev")).expect("key"),
            "env:/dev/infra/terraform.tfstate"
        );
        assert!(workspace_key(&b, "k", Some("a/b")).is_err());
    }
}
