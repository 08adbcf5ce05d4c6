use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main("pve-restore", pvedr::ExitScheme::Standard, pve_restore::run)
}
