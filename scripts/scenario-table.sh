#!/usr/bin/env bash
# What each scenario of the default mix earns (docs/DETECTION.md, "Per
# scenario"): for every quirk that can fail, how many seeds of the
# undirected mix fail in each scenario; and for every coverage probe, which
# scenarios reach it, marking the probes only one scenario reaches.
#
#   scripts/scenario-table.sh [QUIRK_SEEDS] [PROBE_SEEDS] [--jobs J]
#
# QUIRK_SEEDS (default 300) seeds of `bootsim swarm --quirk Qn` over the
# default mix per quirk, from seed 1; PROBE_SEEDS (default 60) seeds of
# `bootsim swarm --scenario F` per scenario, from seed 1. Prints two
# Markdown tables. Deterministic: the same build prints the same tables.
set -euo pipefail
cd "$(dirname "$0")/.."

quirk_seeds=300 probe_seeds=60 jobs=()
pos=0
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs=(--jobs "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*|"") echo "$0: '$1' is not a whole number" >&2; exit 3 ;;
    *) if [ $pos -eq 0 ]; then quirk_seeds="$1"; else probe_seeds="$1"; fi; pos=$((pos+1)); shift ;;
  esac
done

cargo build --release -q -p bootsim
bootsim=./target/release/bootsim
mix=$(grep -l '^swarm = true' scenarios/*.toml)
names=$(for f in $mix; do basename "$f" .toml; done)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "### Failing seeds per scenario, per quirk ($quirk_seeds seeds of the default mix each)"
echo
printf '| quirk |'; for n in $names; do printf ' %s |' "$n"; done; echo
printf '|---|'; for _ in $names; do printf -- '---|'; done; echo
for q in Q2 Q4 Q5 Q7 Q10 Q11 Q13 Q14; do
  "$bootsim" swarm --quirk "$q" --seeds "$quirk_seeds" "${jobs[@]}" \
    --failures "$out/f" >"$out/$q.txt" 2>/dev/null || true
  printf '| %s |' "$q"
  for n in $names; do
    c=$(grep -cE "^  seed [0-9]+ $n: " "$out/$q.txt" || true)
    printf ' %s |' "$c"
  done
  echo
done
echo
echo "### Probes reached, per scenario ($probe_seeds seeds of each alone)"
echo
for f in $mix; do
  n=$(basename "$f" .toml)
  "$bootsim" swarm --scenario "$f" --seeds "$probe_seeds" "${jobs[@]}" \
    --failures "$out/f" 2>/dev/null |
    awk -v n="$n" '/coverage:/ {on=1; next} on && $1 !~ /:$/ && NF >= 2 && $2 ~ /^[0-9]+$/ && $2 > 0 {print $1, n}' \
    >>"$out/probes.txt" || true
done
echo "| probe | reached by | only |"
echo "|---|---|---|"
for p in $(awk '{print $1}' "$out/probes.txt" | sort -u); do
  by=$(awk -v p="$p" '$1 == p {print $2}' "$out/probes.txt" | paste -sd, - | sed 's/,/, /g')
  count=$(awk -v p="$p" '$1 == p' "$out/probes.txt" | wc -l)
  only=""; [ "$count" -eq 1 ] && only="yes"
  echo "| $p | $by | $only |"
done
