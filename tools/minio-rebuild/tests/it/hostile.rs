//! What a hostile user, export directory or server can hand the tool: names that make no
//! bucket, files that are not files, text that would drive the terminal.

use std::net::TcpListener;

use crate::common::{run, tool};

/// A loopback endpoint that counts the connections made to it.
struct Silent(TcpListener);

impl Silent {
    fn new() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        Silent(l)
    }
    fn endpoint(&self) -> String {
        format!("http://{}", self.0.local_addr().expect("addr"))
    }
    fn contacted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn an_env_or_bucket_that_names_no_valid_bucket_is_a_usage_error_before_any_contact() {
    let s = Silent::new();
    for bad in [
        ["--env", ".."],
        ["--env", "a..b"],
        ["--env", "prod-"],
        ["--env", "prod."],
        ["--bucket", "192.168.5.4"],
        ["--bucket", ".tfstate"],
        ["--bucket", "a.-b"],
    ] {
        let out = run(tool(&s.endpoint()).args(bad).arg("--yes"), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid"), "{bad:?}: {err}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
    assert!(!s.contacted(), "the endpoint was contacted");
}
