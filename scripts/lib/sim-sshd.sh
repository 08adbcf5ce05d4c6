# Sourced by scripts/demo.sh and scripts/dr-drill.sh: a real sshd on 127.0.0.1 whose sessions
# run the simulated Proxmox node, a moto S3 server, and the Terraform root kept in it.

# start_sim_sshd WORK SIM_ROOT: sets SSHD_PORT, SSHD_PID and PVE_SSH (the tools' flags).
start_sim_sshd() {
  local work=$1 root=$2 sim
  sim="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/sim"
  mkdir -p "$work/ssh" /run/sshd 2>/dev/null || true
  ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/client_key"
  SSHD_PORT=$(free_port)
  printf 'environment="PATH=%s:/usr/bin:/bin",environment="PVESIM_ROOT=%s",environment="PVESIM_NODE=pve1",environment="TZ=UTC" %s\n' \
    "$sim/bin" "$root" "$(cat "$work/ssh/client_key.pub")" > "$work/ssh/authorized_keys"
  cat > "$work/ssh/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $work/ssh/host_key
AuthorizedKeysFile $work/ssh/authorized_keys
PidFile $work/ssh/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment yes
CFG
  /usr/sbin/sshd -D -f "$work/ssh/sshd_config" -E "$work/ssh/sshd.log" &
  SSHD_PID=$!
  wait_port "$SSHD_PORT"
  printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$work/ssh/host_key.pub")" > "$work/ssh/known_hosts"
  PVE_SSH="--host 127.0.0.1 --port $SSHD_PORT --user $(id -un) --identity $work/ssh/client_key --known-hosts $work/ssh/known_hosts"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# start_moto VENV PORT: a moto S3 server; prints its pid.
start_moto() {
  "$1/bin/moto_server" -H 127.0.0.1 -p "$2" >/dev/null 2>&1 &
  echo $!
  wait_port "$2"
}

# write_tf_prod DIR ENDPOINT DEFAULT: a Terraform root (DIR/main.tf) whose state is in the
# versioned bucket tfstate-prod at ENDPOINT, with one resource to apply versions of (-var
# v=…; DEFAULT is what a plan without -var compares with).
write_tf_prod() {
  mkdir -p "$1"
  cat > "$1/main.tf" <<TF
terraform {
  backend "s3" {
    bucket = "tfstate-prod"
    key = "terraform.tfstate"
    region = "us-east-1"
    endpoints = { s3 = "$2" }
    use_path_style = true
    skip_credentials_validation = true
    skip_region_validation = true
    skip_requesting_account_id = true
    skip_metadata_api_check = true
    use_lockfile = true
  }
}
variable "v" { default = "$3" }
resource "terraform_data" "a" { input = var.v }
TF
}
