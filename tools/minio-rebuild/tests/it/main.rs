//! minio-rebuild's integration tests: one binary, a module per area, all through the built
//! binary against a real moto S3 server and real Terraform. Every run goes through
//! [`common::run`], which asserts the secret key appears in neither stdout nor stderr.

mod common;
mod hostile;
mod man;
mod minio;
mod rebuild;
mod reprovision;
mod wait;
