//! The lib's engines against real parts: OpenSSH on loopback (the simulator's node) and a
//! moto S3 server (with the `s3` feature, as the workspace builds it).

#![allow(clippy::unwrap_used)]

mod fuzz;
#[cfg(feature = "s3")]
mod restream;
#[cfg(feature = "s3")]
mod s3;
mod stream;
