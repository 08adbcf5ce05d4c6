#!/usr/bin/env bash
# CI check of the Debian package, on this machine as root (or with passwordless sudo):
# builds it (make deb), installs it with dpkg -i, then every tool answers --version, every
# man page renders with man -l, the completions are there (bash ones parse with bash -n and
# register), the systemd units pass systemd-analyze verify against the installed binaries;
# removes it with dpkg -r; and `make install DESTDIR=… PREFIX=/usr` installs the same set of
# bin/man/completion paths as the package.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt-need.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
say() { echo "deb-check: $*" >&2; }
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }

apt_need man-db command -v man
apt_need binutils command -v strip
apt_need systemd command -v systemd-analyze
tools=$(ls tools)

deb=$(make -s --no-print-directory deb | tail -n 1)
[ -f "$deb" ] || fail "make deb left no package ($deb)"
say "built $deb ($(du -h "$deb" | cut -f1)); $(dpkg-deb -f "$deb" Depends | sed 's/^/Depends: /')"

# Minimal images exclude man pages and docs in /etc/dpkg/dpkg.cfg.d: this check wants them.
$SUDO dpkg --path-include='/usr/share/man/man1/*' --path-include='/usr/share/doc/pvedr/*' -i "$deb" >/dev/null
trap '$SUDO dpkg -r pvedr >/dev/null 2>&1 || true' EXIT
version=$(dpkg-deb -f "$deb" Version)
for t in $tools; do
  out=$("/usr/bin/$t" --version) || fail "$t --version exited $?"
  [ "$out" = "$t $version" ] || fail "$t --version said '$out', not '$t $version'"
  page=/usr/share/man/man1/$t.1.gz
  text=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $page: $text"
  grep -q "^NAME" <<<"$text" && grep -q "$t" <<<"$text" || fail "man -l $page shows no NAME for $t"
  for f in /usr/share/bash-completion/completions/$t /usr/share/zsh/vendor-completions/_$t \
           /usr/share/fish/vendor_completions.d/$t.fish; do
    [ -s "$f" ] || fail "completion $f missing or empty"
  done
  bash -n "/usr/share/bash-completion/completions/$t" || fail "bash -n of $t's completion"
  bash -c ". /usr/share/bash-completion/completions/$t && complete -p $t" >/dev/null ||
    fail "the bash completion registers nothing for $t"
  # Completions and man pages come from one clap definition: every option the man page
  # lists (its .TP headings, not the examples) completes.
  for flag in $(zcat "$page" | grep -oE '^\\fB(\\-[a-zA-Z]\\fR, \\fB)?\\-\\-[a-z0-9-]+' | sed 's/.*\\-\\-/--/'); do
    grep -qF -- "$flag" "/usr/share/bash-completion/completions/$t" || fail "$t's bash completion lacks $flag"
    grep -qF -- "${flag#--}" "/usr/share/fish/vendor_completions.d/$t.fish" || fail "$t's fish completion lacks $flag"
  done
  if command -v zsh >/dev/null; then zsh -n "/usr/share/zsh/vendor-completions/_$t" || fail "zsh -n _$t"; fi
  # Every page a page names (backup-sync-push(1) in backup-sync's) is installed and renders.
  for named in $(zcat /usr/share/man/man1/"$t"*.1.gz | sed 's/\\-/-/g' | grep -oE "^$t-[a-z0-9-]+\(1\)" | sort -u); do
    sub=/usr/share/man/man1/${named%(1)}.1.gz
    [ -f "$sub" ] || fail "$page names $named, which is not installed"
    MANWIDTH=80 man -l "$sub" >/dev/null 2>&1 || fail "man -l $sub"
  done
done
say "$(wc -w <<<"$tools") tools answer --version $version, man -l renders each page, completions present"

units=$(dpkg -L pvedr | grep -E '^/lib/systemd/system/pvedr-.*\.(service|timer)$')
[ -n "$units" ] || fail "the package ships no systemd units"
# shellcheck disable=SC2086
verify=$(systemd-analyze verify $units 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify warns: $verify"
say "systemd-analyze verify clean: $(echo $units | xargs -n1 basename | paste -sd' ')"

$SUDO dpkg -r pvedr >/dev/null
trap - EXIT
for t in $tools; do [ ! -e "/usr/bin/$t" ] || fail "dpkg -r left /usr/bin/$t"; done
say "dpkg -r pvedr removed every binary"

# The same set from make install (man pages compared without the package's .gz).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
make -s --no-print-directory install DESTDIR="$stage" PREFIX=/usr >/dev/null
installed=$(cd "$stage" && find usr -type f | sort)
packaged=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||; s|\.gz$||' |
  grep -E '^usr/(bin/|share/man/|share/bash-completion/|share/zsh/|share/fish/)' | grep -v '/$' | sort)
diff <(echo "$installed") <(echo "$packaged") >&2 || fail "make install and the .deb install different files (< make install, > .deb)"
say "make install DESTDIR=… PREFIX=/usr installs the package's $(wc -l <<<"$installed") bin/man/completion files"
say "OK"
