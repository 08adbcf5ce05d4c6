//! The lib's engines against real parts: OpenSSH on loopback (the simulator's node).

#![allow(clippy::unwrap_used)]

mod stream;
