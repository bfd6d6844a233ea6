#!/usr/bin/env bash
# The observer against a real Prometheus (issue #5, "Real parts"):
#
#   test_prometheus.sh OBSERVE_DEMO
#
# Starts observe_demo (the observer on a free loopback port), writes a
# prometheus.yml scraping it every second into a temp dir, runs Debian's
# `prometheus` on another free loopback port with its storage in that dir,
# and checks through Prometheus's HTTP API that
#   - the target is up (/api/v1/targets health "up", and up{job="bulwark"} = 1),
#   - bulwark's series arrived: bulwark_messages_sent_total,
#     bulwark_actors_live, demo_ticks_total, bulwark_mailbox_depth{actor="conn"},
#   - and keep arriving: bulwark_messages_sent_total grew between two scrapes.
# Every wait is bounded; everything started is stopped on exit.
# Exit 0 = pass, 1 = fail, 77 = skipped (prometheus not installed).
# shellcheck disable=SC2317 # functions run from traps look unreachable
set -u

demo=${1:-${OBSERVE_DEMO:-}}
WAIT_S=${BW_REALTEST_WAIT_S:-60} # per stage

say() { printf 'test_prometheus: %s\n' "$*"; }
fail() {
  say "FAIL: $*"
  dump_logs
  exit 1
}

prom=$(command -v prometheus || true)
if [ -z "$prom" ]; then
  say "prometheus not installed: skipped (Debian: apt-get install prometheus)"
  exit 77
fi
if [ -z "$demo" ] || [ ! -x "$demo" ]; then
  say "usage: test_prometheus.sh path/to/observe_demo"
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-prometheus.XXXXXX") || exit 1
demo_pid=
prom_pid=

# Stops a process we started: TERM, up to 10 s, then KILL; reaps it.
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

cleanup() {
  stop_pid "$prom_pid"
  prom_pid=
  stop_pid "$demo_pid"
  demo_pid=
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

dump_logs() {
  local f
  for f in demo.out demo.err prometheus.log; do
    if [ -s "$tmp/$f" ]; then
      say "--- $f (last 30 lines)"
      tail -n 30 "$tmp/$f"
    fi
  done
}

# GET a loopback URL, body on stdout; non-zero on any failure. Proxies are
# bypassed (only loopback is ever asked).
if command -v curl >/dev/null 2>&1; then
  http_get() { curl -fsS --noproxy '*' --max-time 5 "$1"; }
elif command -v python3 >/dev/null 2>&1; then
  http_get() {
    python3 - "$1" <<'EOF'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
sys.stdout.write(opener.open(sys.argv[1], timeout=5).read().decode())
EOF
  }
else
  say "neither curl nor python3 found: cannot talk HTTP"
  exit 1
fi

# A TCP port nobody listens on now (a race remains: callers retry).
port_in_use() {
  local hex
  hex=$(printf ':%04X ' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" {print $2 " "}' | grep -q "$hex"
}
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    port_in_use "$p" || {
      echo "$p"
      return 0
    }
  done
  return 1
}

# Stops observe_demo (SIGTERM) and wants a clean stop: exit 0 within 30 s
# and no sanitizer report (sanitizer builds run these tests too).
finish_demo() {
  local rc
  kill -TERM "$demo_pid" 2>/dev/null
  for _ in $(seq 1 300); do
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$demo_pid" 2>/dev/null && fail "observe_demo did not stop within 30s of SIGTERM"
  wait "$demo_pid"
  rc=$?
  demo_pid=
  [ "$rc" -eq 0 ] || fail "observe_demo exited with $rc"
  if grep -q 'Sanitizer' "$tmp/demo.err"; then
    fail "sanitizer report from observe_demo"
  fi
  say "observe_demo stopped cleanly"
}

# --- the observed system -----------------------------------------------------
"$demo" --port 0 --seconds 170 >"$tmp/demo.out" 2>"$tmp/demo.err" &
demo_pid=$!
port=
for _ in $(seq 1 $((WAIT_S * 10))); do
  port=$(sed -n 's/^port=\([0-9][0-9]*\)$/\1/p' "$tmp/demo.out")
  [ -n "$port" ] && break
  kill -0 "$demo_pid" 2>/dev/null || fail "observe_demo exited before serving"
  sleep 0.1
done
[ -n "$port" ] || fail "observe_demo printed no port within ${WAIT_S}s"
say "observe_demo serves on 127.0.0.1:$port"
ok=
for _ in $(seq 1 $((WAIT_S * 2))); do
  if http_get "http://127.0.0.1:$port/metrics" 2>/dev/null |
    grep -q '^# TYPE bulwark_messages_sent_total counter'; then
    ok=1
    break
  fi
  sleep 0.5
done
[ -n "$ok" ] || fail "the observer's /metrics had no bulwark_messages_sent_total within ${WAIT_S}s"

# --- Prometheus ----------------------------------------------------------------
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bulwark
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF

pport=
for _ in 1 2 3 4 5; do
  pport=$(free_port) || fail "no free port for prometheus"
  rm -rf "$tmp/data"
  "$prom" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 &
  prom_pid=$!
  ready=
  for _ in $(seq 1 $((WAIT_S * 10))); do
    if ! kill -0 "$prom_pid" 2>/dev/null; then
      wait "$prom_pid" 2>/dev/null
      prom_pid=
      break
    fi
    if http_get "http://127.0.0.1:$pport/-/ready" >/dev/null 2>&1; then
      ready=1
      break
    fi
    sleep 0.1
  done
  [ -n "$ready" ] && break
  if [ -n "$prom_pid" ]; then
    fail "prometheus on port $pport not ready within ${WAIT_S}s"
  fi
  grep -qi 'address already in use' "$tmp/prometheus.log" ||
    fail "prometheus exited at start"
  say "port $pport was taken meanwhile; another one"
done
[ -n "$ready" ] || fail "prometheus could not bind a port in 5 attempts"
say "prometheus $("$prom" --version 2>&1 | head -n 1 | awk '{print $3}') ready on 127.0.0.1:$pport"

api="http://127.0.0.1:$pport/api/v1"
# query EXPR-URL-ENCODED: the JSON answer
query() { http_get "$api/query?query=$1"; }
# first_value JSON: the first sample's value of an instant-vector answer
first_value() { sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p' | head -n 1; }

# 1. the target is up
up=
for _ in $(seq 1 $((WAIT_S * 2))); do
  t=$(http_get "$api/targets?state=active" 2>/dev/null) || t=
  case "$t" in
  *'"job":"bulwark"'*'"health":"up"'* | *'"health":"up"'*'"job":"bulwark"'*)
    up=1
    break
    ;;
  esac
  sleep 0.5
done
[ -n "$up" ] || fail "target not up within ${WAIT_S}s: $(printf '%s' "$t" | head -c 600)"
say "target health: up"
v=$(query 'up%7Bjob%3D%22bulwark%22%7D' | first_value)
[ "$v" = "1" ] || fail "up{job=\"bulwark\"} is '$v', not 1"

# 2. bulwark's series arrived (the reporter's own, the demo's, a labelled one)
got=
for _ in $(seq 1 $((WAIT_S * 2))); do
  r=$(query 'bulwark_messages_sent_total' 2>/dev/null) || r=
  case "$r" in *'"__name__":"bulwark_messages_sent_total"'*)
    got=1
    break
    ;;
  esac
  sleep 0.5
done
[ -n "$got" ] || fail "no bulwark_messages_sent_total in prometheus within ${WAIT_S}s: $r"
sent1=$(printf '%s' "$r" | first_value)
say "bulwark_messages_sent_total = $sent1"
case "$r" in *'"job":"bulwark"'*) ;; *) fail "the series lacks job=\"bulwark\": $r" ;; esac

for q in bulwark_actors_live demo_ticks_total \
  'bulwark_mailbox_depth%7Bactor%3D%22conn%22%7D' \
  'bulwark_dead_letters_total%7Breason%3D%22noproc%22%7D'; do
  r=$(query "$q") || fail "query $q failed"
  v=$(printf '%s' "$r" | first_value)
  [ -n "$v" ] || fail "no sample for $q: $r"
  say "$(printf '%b' "${q//%/\\x}") = $v"
done
live=$(query bulwark_actors_live | first_value)
# root, config, conn, agents, agent-1, agent-2, the reporter, the monitor
[ "${live%%.*}" -ge 6 ] 2>/dev/null || fail "bulwark_actors_live is '$live', expected >= 6"

# 3. and keep arriving: the counter grows from scrape to scrape
grew=
for _ in $(seq 1 $((WAIT_S * 2))); do
  sent2=$(query 'bulwark_messages_sent_total' | first_value)
  if awk -v a="$sent1" -v b="$sent2" 'BEGIN { exit !(b > a) }'; then
    grew=1
    break
  fi
  sleep 0.5
done
[ -n "$grew" ] || fail "bulwark_messages_sent_total did not grow within ${WAIT_S}s ($sent1)"
say "bulwark_messages_sent_total grew: $sent1 -> $sent2"

# Prometheus parsed the exposition's TYPE and HELP lines
m=$(http_get "$api/metadata?metric=bulwark_messages_sent_total") || fail "metadata query failed"
case "$m" in *'"type":"counter"'*'"help":"'*) ;; *) fail "no counter metadata: $m" ;; esac
say "metadata: bulwark_messages_sent_total is a counter with help"

# The scrapes Prometheus saw as fine (samples scraped > 0, no scrape errors)
n=$(query 'scrape_samples_scraped%7Bjob%3D%22bulwark%22%7D' | first_value)
[ "${n:-0}" -gt 0 ] 2>/dev/null || fail "scrape_samples_scraped is '$n'"
say "scrape_samples_scraped = $n"
finish_demo
say "PASS"
exit 0
