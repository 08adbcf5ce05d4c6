# Shared by the bench scripts: timing (best of 3), peak memory, and the results table.
# Each benchmark prints a line for people on stdout and appends a Markdown row to
# $BENCH_TABLE (bench/run.sh collects them into one table).

# Seconds one run of a command takes (its output discarded). An exit code outside
# $BENCH_OK (default 0) is fatal, so a broken command can never look fast.
t() {
  local s e rc=0
  s=$(date +%s.%N)
  "$@" > /dev/null 2>&1 || rc=$?
  e=$(date +%s.%N)
  case " ${BENCH_OK:-0} " in
    *" $rc "*) ;;
    *) echo "bench: exit $rc: $*" >&2; exit 1 ;;
  esac
  echo "$e - $s" | bc
}

# The best of three runs.
best() {
  local b=999 x
  for _ in 1 2 3; do
    x=$(t "$@")
    b=$(echo "if ($x < $b) $x else $b" | bc)
  done
  echo "$b"
}

# Peak resident memory of one run, in MiB (getrusage of the child).
peak_mib() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("%.1f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
PY
}

ratio() { echo "$1 / $2" | bc -l; }

# row BENCHMARK PVEDR ALTERNATIVE ALT_TIME RATIO [NOTE]
row() {
  [ -n "${BENCH_TABLE:-}" ] || return 0
  printf '| %s | %s | %s | %s | **%.1f×** | %s |\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >> "$BENCH_TABLE"
}

# mem WORKLOAD CMD...: the peak memory of one run, as a row of $BENCH_MEM.
mem() {
  local what=$1 m
  shift
  m=$(peak_mib "$@")
  echo "peak memory  $what: $m MiB"
  [ -n "${BENCH_MEM:-}" ] && printf '| %s | %s MiB |\n' "$what" "$m" >> "$BENCH_MEM"
  return 0
}

# start_moto NAME: a moto server on a free loopback port for the bench NAME, with the AWS
# environment pointing at it; sets PY and MOTO_PID (the caller's EXIT trap kills it).
start_moto() {
  PY=.ci-venv/bin/python
  [ -x "$PY" ] || { echo "$1 bench: .ci-venv missing: run scripts/python-deps.sh"; exit 1; }
  local port
  port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .ci-venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  MOTO_PID=$!
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testtest AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  for _ in $(seq 50); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 bench: moto did not start"; exit 1
}

# sim_sshd WORK DELAY: a real sshd on a free loopback port whose sessions run the simulated
# node in WORK/node, each pvesh taking DELAY seconds to start (PVESIM_DELAY). Sets port,
# pid (the caller's EXIT trap kills it) and CONN, the tools' flags to reach it; the client
# key is WORK/ssh/key, its known_hosts WORK/ssh/known.
sim_sshd() {
  local work=$1 delay=$2
  mkdir -p "$work/ssh" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/key"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'environment="PATH=%s:/usr/bin:/bin",environment="PVESIM_ROOT=%s",environment="PVESIM_DELAY=%s",environment="TZ=UTC",environment="HOME=%s" %s\n' \
    "$PWD/tests/sim/bin" "$work/node" "$delay" "$work/ssh" "$(cat "$work/ssh/key.pub")" > "$work/ssh/authorized_keys"
  printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s/host_key\nAuthorizedKeysFile %s/authorized_keys\nPidFile %s/pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nPermitUserEnvironment yes\nMaxStartups 100\n' \
    "$port" "$work/ssh" "$work/ssh" "$work/ssh" > "$work/ssh/config"
  /usr/sbin/sshd -D -f "$work/ssh/config" -E "$work/ssh/log" &
  pid=$!
  for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$work/ssh/host_key.pub")" > "$work/ssh/known"
  CONN=(--host 127.0.0.1 --port "$port" --identity "$work/ssh/key" --known-hosts "$work/ssh/known")
}
