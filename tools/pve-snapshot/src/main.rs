use std::process::ExitCode;

fn main() -> ExitCode {
    // `ls --max-age` is a monitoring plugin: every error, usage errors included, is UNKNOWN.
    let nagios = std::env::args_os()
        .any(|a| a == "--max-age" || a.to_string_lossy().starts_with("--max-age="));
    let scheme = if nagios {
        pvedr::ExitScheme::Nagios
    } else {
        pvedr::ExitScheme::Standard
    };
    pvedr::cli::main("pve-snapshot", scheme, pve_snapshot::run)
}
