use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main("backup-sync", scheme(), backup_sync::run)
}

/// `verify` is a monitoring plugin: every error is UNKNOWN (3), as backup-check's.
fn scheme() -> pvedr::ExitScheme {
    let sub = std::env::args()
        .skip(1)
        .find(|a| ["push", "ls", "pull", "verify"].contains(&a.as_str()));
    match sub.as_deref() {
        Some("verify") => pvedr::ExitScheme::Nagios,
        _ => pvedr::ExitScheme::Standard,
    }
}
