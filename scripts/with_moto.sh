#!/usr/bin/env bash
# Usage: with_moto.sh PYTHON COMMAND...
# Starts moto (scripts/moto_server.py) on a free loopback port, runs COMMAND with
# LEADPUSH_TEST_MOTO_URL set, and stops moto however COMMAND ends.
set -euo pipefail
python=$1
shift
dir=$(mktemp -d)
"$python" "$(dirname "$0")/moto_server.py" "$dir/port" >"$dir/moto.log" 2>&1 &
moto=$!
cleanup() {
  kill "$moto" 2>/dev/null || true
  wait "$moto" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 300); do
  [ -s "$dir/port" ] && break
  if ! kill -0 "$moto" 2>/dev/null; then
    echo "moto failed to start:" >&2
    cat "$dir/moto.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$dir/port" ] || { echo "moto did not start within 30 s" >&2; cat "$dir/moto.log" >&2; exit 1; }
# The tests start local DNS/SMTP servers (scripts/enrich_fakes.py) with the same Python.
export LEADPUSH_TEST_PYTHON="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
export LEADPUSH_TEST_MOTO_URL="http://127.0.0.1:$(cat "$dir/port")"
echo "moto listening on $LEADPUSH_TEST_MOTO_URL"
"$@"
