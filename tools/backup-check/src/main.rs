use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main("backup-check", pvedr::ExitScheme::Nagios, backup_check::run)
}
