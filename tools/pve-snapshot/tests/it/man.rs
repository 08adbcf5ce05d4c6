//! The man page is current and complete.

use clap::CommandFactory;

#[test]
fn man_page_is_current_and_says_snapshots_are_not_backups() {
    pvedr_testkit::assert_man_page("pve-snapshot", pve_snapshot::Cli::command());
    let page = std::fs::read_to_string(pvedr_testkit::workspace_root().join("man/pve-snapshot.1"))
        .expect("man page");
    assert!(page.contains("SNAPSHOTS ARE NOT BACKUPS"));
    for field in [
        "snaptime", "vmstate", "parent", "label", "way_back", "mark", "reason",
    ] {
        assert!(page.contains(field), "record field {field} not documented");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_subcommands() {
    for sh in ["bash", "zsh", "fish"] {
        let out = pvedr_testkit::run_ok(
            pvedr_testkit::bin("pve-snapshot").args(["--generate-completions", sh]),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["prune", "keep", "wait-lock", "max-age"] {
            assert!(text.contains(word), "{sh}: {word} missing");
        }
    }
    pvedr_testkit::run_code(
        pvedr_testkit::bin("pve-snapshot").args(["--generate-completions", "tcsh"]),
        2,
    );
}
