#!/usr/bin/env bash
# The observer's page in a real browser (issue #5, "Real parts"):
#
#   test_chromium.sh OBSERVE_DEMO [OUT_DIR]
#
# Starts observe_demo, loads http://127.0.0.1:PORT/ in Debian's headless
# chromium (--dump-dom, 5 s of virtual time) and checks that the DOM the
# page's script built shows the supervision tree by name: (root), config,
# conn, agents with agent-1 and agent-2 inside it, and the health badge.
# The names are only in the DOM after the script fetched /tree: the page's
# source is checked not to hold them. Then it saves a screenshot,
# OUT_DIR/observer.png (default: the current directory); a failed
# screenshot is only a warning.
# Every wait is bounded; everything started is stopped on exit.
# Exit 0 = pass, 1 = fail, 77 = skipped (chromium not installed).
# shellcheck disable=SC2317 # functions run from traps look unreachable
set -u

demo=${1:-${OBSERVE_DEMO:-}}
out_dir=${2:-$PWD}
WAIT_S=${BW_REALTEST_WAIT_S:-60}    # for the demo's port
CHROME_WAIT_S=${BW_CHROME_WAIT_S:-90} # per chromium run

say() { printf 'test_chromium: %s\n' "$*"; }
fail() {
  say "FAIL: $*"
  dump_logs
  exit 1
}

chrome=
for c in chromium chromium-browser; do
  chrome=$(command -v "$c" || true)
  [ -n "$chrome" ] && break
done
if [ -z "$chrome" ]; then
  say "chromium not installed: skipped (Debian: apt-get install chromium)"
  exit 77
fi
if [ -z "$demo" ] || [ ! -x "$demo" ]; then
  say "usage: test_chromium.sh path/to/observe_demo [out_dir]"
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bw-chromium.XXXXXX") || exit 1
demo_pid=
chrome_pid=

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

# Chromium runs in a session (and process group) of its own, whose id is
# its pid: this ends the browser and every helper it started (zygote,
# renderer, gpu, crashpad).
stop_chrome() {
  [ -n "$chrome_pid" ] || return 0
  kill -TERM -- "-$chrome_pid" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 -- "-$chrome_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$chrome_pid" 2>/dev/null
  wait "$chrome_pid" 2>/dev/null
  chrome_pid=
  return 0
}

cleanup() {
  stop_chrome
  stop_pid "$demo_pid"
  demo_pid=
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

dump_logs() {
  local f
  for f in demo.out demo.err chrome.log; do
    if [ -s "$tmp/$f" ]; then
      say "--- $f (last 20 lines)"
      tail -n 20 "$tmp/$f"
    fi
  done
}

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

# run_chrome OUT ARGS...: one headless chromium run, stdout to OUT, bounded
# by CHROME_WAIT_S. Returns chromium's exit status (124 = timed out).
run_chrome() {
  local out=$1 rc
  shift
  # A fresh profile each run; HOME and XDG dirs inside tmp so nothing is
  # written outside it.
  rm -rf "$tmp/profile"
  HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_CACHE_HOME="$tmp/home/.cache" \
    setsid "$chrome" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$tmp/profile" --no-first-run --no-default-browser-check \
    --disable-extensions --disable-background-networking --disable-component-update \
    --disable-sync "$@" >"$out" 2>>"$tmp/chrome.log" </dev/null &
  chrome_pid=$!
  for _ in $(seq 1 $((CHROME_WAIT_S * 10))); do
    kill -0 "$chrome_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$chrome_pid" 2>/dev/null; then
    say "chromium still running after ${CHROME_WAIT_S}s: stopped"
    stop_chrome
    return 124
  fi
  wait "$chrome_pid"
  rc=$?
  # helpers that outlived the browser, if any
  kill -KILL -- "-$chrome_pid" 2>/dev/null
  chrome_pid=
  return $rc
}

mkdir -p "$tmp/home"

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
url="http://127.0.0.1:$port/"
say "observe_demo serves on $url"

# The names are not in the page's source: only the script can put them in.
src=$(http_get "$url") || fail "GET / failed"
case "$src" in *"get('/tree')"*) ;; *) fail "the page does not fetch /tree" ;; esac
for name in config conn agents agent-1 agent-2; do
  case "$src" in *"<b>$name</b>"*) fail "the page's source already holds <b>$name</b>" ;; esac
done

# --- the DOM after the script ran -------------------------------------------------
dom="$tmp/dom.html"
ok=
for attempt in 1 2; do
  run_chrome "$dom" --dump-dom --virtual-time-budget=5000 "$url"
  rc=$?
  if [ "$rc" -eq 0 ] && [ -s "$dom" ]; then
    ok=1
    break
  fi
  say "chromium run $attempt: exit $rc, $(wc -c <"$dom") bytes of DOM"
done
[ -n "$ok" ] || fail "chromium gave no DOM"
say "$("$chrome" --version 2>/dev/null | head -n 1): $(wc -c <"$dom") bytes of DOM"

# One line, so patterns can span the nesting.
flat=$(tr -d '\n' <"$dom")
tree=${flat#*<div id=\"tree\">}
[ "$tree" != "$flat" ] || fail "no tree element in the DOM"
case "$tree" in "loading..."*) fail "the tree was never drawn (still 'loading...')" ;; esac
missing=
for name in '(root)' config conn agents agent-1 agent-2; do
  case "$tree" in *"<b>$name</b>"*) ;; *) missing="$missing $name" ;; esac
done
[ -z "$missing" ] || fail "not in the rendered tree:$missing"
# agent-1 and agent-2 are drawn inside agents' box, after config and conn
printf '%s' "$tree" |
  grep -q '<b>(root)</b>.*<b>config</b>.*<b>conn</b>.*<div class="node sup"><b>agents</b>.*<b>agent-1</b>.*<b>agent-2</b>' ||
  fail "the tree is not drawn in its shape (root > config, conn, agents > agent-1, agent-2)"
# every actor's state badge says running
n=$(printf '%s' "$tree" | grep -o '<span class="b running">running</span>' | wc -l)
[ "$n" -ge 6 ] || fail "$n running badges, expected 6"
# the script also fetched /health, and nothing failed
case "$flat" in *'<span id="health" class="b healthy">healthy</span>'*) ;;
*) fail "the health badge does not show healthy" ;; esac
case "$flat" in *'<div id="err"></div>'*) ;; *) fail "the page shows an error: ${flat#*<div id=\"err\">}" ;; esac
say "rendered: (root) > config, conn, agents > agent-1, agent-2; health healthy"

# --- a screenshot (a warning only if it fails) ---------------------------------
shot="$out_dir/observer.png"
rm -f "$shot"
if run_chrome "$tmp/shot.out" --screenshot="$shot" --window-size=1024,768 \
  --virtual-time-budget=5000 "$url" && [ -s "$shot" ] &&
  [ "$(head -c 4 "$shot" | od -An -c | tr -d ' ')" = '211PNG' ]; then
  say "screenshot: $shot"
else
  say "warning: no screenshot (see chromium's log); the DOM check passed"
fi

finish_demo
say "PASS"
exit 0
