//! The man page is current and complete.

#[test]
fn man_page_is_current_and_says_snapshots_are_not_backups() {
    pvedr_testkit::assert_man_page_of::<pve_snapshot::Cli>(&[
        "SNAPSHOTS ARE NOT BACKUPS",
        "snaptime",
        "vmstate",
        "parent",
        "label",
        "way_back",
        "mark",
        "reason",
    ]);
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
