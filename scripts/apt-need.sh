# Sourced by the check scripts: `apt_need PACKAGE CHECK...` installs PACKAGE with apt-get
# (as root, or with passwordless sudo) when the command CHECK fails.
apt_need() {
  local pkg=$1; shift
  if "$@" >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "$(basename "$0"): installing $pkg" >&2
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}
