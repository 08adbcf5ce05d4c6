use std::process::ExitCode;

fn main() -> ExitCode {
    pvedr::cli::main(
        "backup-prune",
        pvedr::ExitScheme::Standard,
        backup_prune::run,
    )
}
