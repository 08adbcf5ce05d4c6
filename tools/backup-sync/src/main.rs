use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main("backup-sync", pvedr::ExitScheme::Standard, backup_sync::run)
}
