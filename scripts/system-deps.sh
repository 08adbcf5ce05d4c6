#!/usr/bin/env bash
# The Debian packages `make demo` and `make test` need, installed when missing.
#   scripts/system-deps.sh demo|test
# As root (or with passwordless sudo) it installs what is missing with apt-get; otherwise it
# stops with one line naming the exact command to run. Idempotent: nothing to do, nothing run.
set -euo pipefail
what=${1:-test}

# package: the check that it is there
need=(
  "pkg-config:command -v pkg-config"
  "libssl-dev:pkg-config --exists openssl"
  "zstd:command -v zstd"
  "lzop:command -v lzop"
  "gzip:command -v gzip"
  "jq:command -v jq"
)
if [ "$what" = test ]; then
  need+=(
    "openssh-server:test -x /usr/sbin/sshd"
    "openssh-client:command -v ssh-keygen"
    "prometheus:command -v promtool"
    # The standard age command decrypts an encrypted offsite copy in the tests (issue 29).
    "age:command -v age"
  )
fi
if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  need+=("python3-venv:false")
fi

missing=()
for n in "${need[@]}"; do
  pkg=${n%%:*}
  check=${n#*:}
  # pkg-config itself must be there before libssl-dev can be checked through it.
  if ! eval "$check" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "system-deps: missing ${missing[*]}: run \`sudo apt-get update && sudo $cmd\`" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "system-deps: missing ${missing[*]} and no apt-get: install them with your package manager" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO $cmd -qq >/dev/null
