#!/usr/bin/env bash
# Usage: EXEMPT="fn ..." bootstrap_sizes.sh DIR MAX_MB FUNCTION...
# Prints each function's bootstrap size (MiB) and fails if one outside EXEMPT is larger
# than MAX_MB, so a dependency that bloats every Lambda is caught at `make build`, not in
# production. EXEMPT lists the functions larger than MAX_MB (the Makefile's
# BOOTSTRAP_SIZE_EXEMPT; their sizes are in docs/benchmarks.md): printed, not checked.
set -euo pipefail
dir=$1 max=$2
shift 2
over=0
for f in "$@"; do
  bytes=$(stat -c %s "$dir/$f/bootstrap")
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
  flag=""
  if awk -v m="$mb" -v x="$max" 'BEGIN { exit !(m > x) }'; then
    if [[ " ${EXEMPT:-} " == *" $f "* ]]; then flag="  (over ${max} MiB; exempt)"; else flag="  > ${max} MiB"; over=1; fi
  fi
  printf "  %-16s %6s MiB%s\n" "$f" "$mb" "$flag"
done
[ "$over" = 0 ] || { echo "some bootstraps exceed ${max} MiB" >&2; exit 1; }
