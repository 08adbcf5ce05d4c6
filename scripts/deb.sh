#!/usr/bin/env bash
# Builds the Debian package with dpkg-deb: the `make install PREFIX=/usr` set (binaries, man
# pages, bash/zsh/fish completions), the systemd units under /lib/systemd/system, contrib and
# docs under /usr/share/doc/pvedr. Prints the .deb's path on stdout.
#   scripts/deb.sh            (after `make release`; `make deb` does both)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${CARGO_TARGET_DIR:-target}/deb
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "deb.sh: no version in Cargo.toml [workspace.package]" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
make --no-print-directory install DESTDIR="$root" PREFIX=/usr >/dev/null

# Debian ships stripped binaries and compressed man pages (man -l reads them as they are).
strip --strip-unneeded "$root"/usr/bin/*
gzip -9n "$root"/usr/share/man/man1/*.1

doc=$root/usr/share/doc/pvedr
install -d "$doc" "$root/lib/systemd/system"
install -m 644 contrib/systemd/*.service contrib/systemd/*.timer "$root/lib/systemd/system/"
cp -r contrib "$doc/contrib"
install -m 644 README.md "$doc/"
cp -r docs "$doc/docs"
cat > "$doc/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pvedr

Files: *
License: MIT or Apache-2.0
COPY
find "$doc" -type d -exec chmod 755 {} + && find "$doc" -type f -exec chmod 644 {} +

# Depends: the Debian packages owning the shared libraries the binaries link, with minimum
# versions from dpkg-shlibdeps (dpkg-dev) when it is there, else the names (ldd, dpkg -S).
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir "$root/debian"
  printf 'Source: pvedr\n\nPackage: pvedr\nArchitecture: any\n' > "$root/debian/control"
  depends=$(cd "$root" && dpkg-shlibdeps -O usr/bin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  rm -r "$root/debian"
else
  depends=$(for b in "$root"/usr/bin/*; do ldd "$b"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    while read -r lib; do
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || {
        echo "deb.sh: no package owns $lib" >&2; exit 1; }
    done | cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')
fi
[ -n "$depends" ] || { echo "deb.sh: no shared-library dependencies found" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
install -d "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CTRL
Package: pvedr
Version: $version
Architecture: $arch
Maintainer: pvedr maintainers <pvedr@example.invalid>
Installed-Size: $size
Depends: $depends
Recommends: zstd, lzop, jq
Section: admin
Priority: optional
Homepage: https://example.invalid/pvedr
Description: Proxmox VE backup and disaster-recovery tools (JSON Lines)
 Small command-line tools that list, prune, check, snapshot and restore Proxmox VE
 backups and Terraform state, writing and reading JSON Lines so they chain with each
 other, jq, systemd timers and Ansible. Includes man pages, shell completions, systemd
 units (not enabled) and an Ansible role under /usr/share/doc/pvedr/contrib.
CTRL
mkdir -p "$out"
deb=$out/pvedr_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
