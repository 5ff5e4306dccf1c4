#!/usr/bin/env bash
# Usage: bootstrap_sizes.sh DIR MAX_MB FUNCTION...
# Prints each function's bootstrap size and fails if one is larger than MAX_MB, so a
# dependency that bloats every Lambda is caught at `make build`, not in production.
set -euo pipefail
dir=$1 max=$2
shift 2
over=0
for f in "$@"; do
  bytes=$(stat -c %s "$dir/$f/bootstrap")
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
  flag=""
  if awk -v m="$mb" -v x="$max" 'BEGIN { exit !(m > x) }'; then flag="  > ${max} MB"; over=1; fi
  printf "  %-16s %6s MB%s\n" "$f" "$mb" "$flag"
done
[ "$over" = 0 ] || { echo "some bootstraps exceed ${max} MB" >&2; exit 1; }
