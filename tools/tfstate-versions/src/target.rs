//! Which object: bucket and key from the flags, `--env`, or a Terraform directory's
//! `backend "s3"` block; endpoint, region and credentials the AWS way.

use std::path::{Path, PathBuf};

use pvedr::error::{Error, Result};

/// Where a state lives and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub env: Option<String>,
    pub bucket: String,
    pub key: String,
    pub endpoint: Option<String>,
    pub region: String,
    /// The legacy lock table and its endpoint, from the backend block or the environment.
    pub dynamodb_table: Option<String>,
    pub dynamodb_endpoint: Option<String>,
}

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

/// Reads the `backend "s3"` block of the `.tf` files of a directory (pvedr's own fallback
/// override is ignored: it is not the user's configuration).
pub fn read_backend(dir: &Path) -> Result<Backend> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "tf")
                && p.file_name().is_none_or(|n| n != crate::fallback::OVERRIDE)
        })
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Error::io(format!("cannot read {}", f.display()), e))?;
        let body: hcl::Body = hcl::from_str(&text).map_err(|e| Error::File {
            path: f.clone(),
            message: format!("not valid HCL: {e}"),
        })?;
        for tf in body.blocks().filter(|b| b.identifier() == "terraform") {
            for be in tf.body().blocks().filter(|b| b.identifier() == "backend") {
                if be.labels().first().map(|l| l.as_str()) != Some("s3") {
                    continue;
                }
                let b = be.body();
                let endpoint = attr_str(b, "endpoint").or_else(|| endpoints_entry(b, "s3"));
                return Ok(Backend {
                    bucket: attr_str(b, "bucket"),
                    key: attr_str(b, "key"),
                    region: attr_str(b, "region"),
                    endpoint,
                    workspace_key_prefix: attr_str(b, "workspace_key_prefix"),
                    dynamodb_table: attr_str(b, "dynamodb_table"),
                    dynamodb_endpoint: attr_str(b, "dynamodb_endpoint")
                        .or_else(|| endpoints_entry(b, "dynamodb")),
                });
            }
        }
    }
    Err(Error::usage(format!(
        "no backend \"s3\" block in the .tf files of {}",
        dir.display()
    )))
}

/// A bucket name S3 accepts (3–63 of a-z, 0-9, '.', '-').
pub fn check_bucket(b: &str) -> Result<()> {
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid bucket name '{}'",
            b.escape_debug()
        )))
    }
}

pub struct Flags<'a> {
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub env: Option<&'a str>,
    pub workspace: Option<&'a str>,
    pub backend_config: Option<&'a Path>,
    pub endpoint: Option<&'a str>,
    pub region: Option<&'a str>,
}

pub fn resolve(f: &Flags) -> Result<Target> {
    let backend = f
        .backend_config
        .map(read_backend)
        .transpose()?
        .unwrap_or_default();
    let env_var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let bucket = f
        .bucket
        .map(String::from)
        .or_else(|| f.env.map(|e| format!("tfstate-{e}")))
        .or(backend.bucket.clone())
        .ok_or_else(|| {
            Error::usage("which state? give --env E, --bucket B, or --backend-config DIR")
        })?;
    check_bucket(&bucket)?;
    let base = f
        .key
        .map(String::from)
        .or(backend.key.clone())
        .unwrap_or_else(|| "terraform.tfstate".into());
    let key = match f.workspace {
        None | Some("default") => base,
        Some(w) => {
            if w.is_empty() || w.contains('/') {
                return Err(Error::usage(format!("invalid workspace '{w}'")));
            }
            format!(
                "{}/{w}/{base}",
                backend.workspace_key_prefix.as_deref().unwrap_or("env:")
            )
        }
    };
    let dynamodb_endpoint =
        env_var("AWS_ENDPOINT_URL_DYNAMODB").or(backend.dynamodb_endpoint.clone());
    Ok(Target {
        dynamodb_table: backend.dynamodb_table.clone(),
        dynamodb_endpoint,
        env: f.env.map(String::from),
        bucket,
        key,
        endpoint: f
            .endpoint
            .map(String::from)
            .or_else(|| env_var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_var("AWS_ENDPOINT_URL"))
            .or(backend.endpoint),
        region: f
            .region
            .map(String::from)
            .or_else(|| env_var("AWS_REGION"))
            .or_else(|| env_var("AWS_DEFAULT_REGION"))
            .or(backend.region)
            .unwrap_or_else(|| "us-east-1".into()),
    })
}

/// Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the profile (AWS_PROFILE or
/// `default`) in ~/.aws/credentials. Never printed.
pub fn credentials() -> Result<(String, String, Option<String>)> {
    let env_var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(a), Some(s)) = (
        env_var("AWS_ACCESS_KEY_ID"),
        env_var("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok((a, s, env_var("AWS_SESSION_TOKEN")));
    }
    let profile = env_var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let file = env_var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
    if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
        let mut section = String::new();
        let (mut ak, mut sk, mut tok) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.trim().trim_start_matches("profile ").to_string();
                continue;
            }
            if section != profile {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => ak = Some(v.trim().to_string()),
                    "aws_secret_access_key" => sk = Some(v.trim().to_string()),
                    "aws_session_token" => tok = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        if let (Some(a), Some(s)) = (ak, sk) {
            return Ok((a, s, tok));
        }
    }
    Err(Error::usage(format!(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile '{profile}' in ~/.aws/credentials"
    )))
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
        let b = read_backend(dir.path()).expect("backend");
        assert_eq!(b.bucket.as_deref(), Some("tfstate-prod"));
        assert_eq!(b.key.as_deref(), Some("infra/terraform.tfstate"));
        assert_eq!(b.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let t = resolve(&Flags {
            bucket: None,
            key: None,
            env: None,
            workspace: Some("dev"),
            backend_config: Some(dir.path()),
            endpoint: None,
            region: Some("x"),
        })
        .expect("target");
        assert_eq!(t.key, "env:/dev/infra/terraform.tfstate");
        assert_eq!(t.bucket, "tfstate-prod");
    }

    #[test]
    fn env_shorthand() {
        let t = resolve(&Flags {
            bucket: None,
            key: None,
            env: Some("lab"),
            workspace: None,
            backend_config: None,
            endpoint: Some("http://x"),
            region: None,
        })
        .expect("t");
        assert_eq!(
            (t.bucket.as_str(), t.key.as_str()),
            ("tfstate-lab", "terraform.tfstate")
        );
        assert!(check_bucket("Bad_Bucket").is_err());
    }
}
