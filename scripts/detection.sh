#!/usr/bin/env bash
# Re-creates the figures of docs/DETECTION.md: `bootsim bench detection`
# for every quirk over the default mix, then for each quirk with a targeted
# scenario (scenarios/hunts/qN-*.toml or scenarios/targets/qN-*.toml, named
# in the header of its regression file) over that scenario alone. Each table is
# printed to stdout; the per-start lines go to stderr.
#
#   scripts/detection.sh [--starts K] [--mix-seeds N] [--hunt-seeds N] [--jobs J]
#
# Defaults are the ones the document reports: K = 5 starts, at most 20
# seeds per start over the default mix (shrink budget 60 runs: its runs are
# long) and 100 per start over a hunt (shrink budget 100 runs), 2 jobs. Failing seeds leave artifacts in
# target/detection/. Run it `nice`d on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

starts=5 mix_seeds=20 hunt_seeds=100 jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --starts) starts="$2"; shift 2 ;;
    --mix-seeds) mix_seeds="$2"; shift 2 ;;
    --hunt-seeds) hunt_seeds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "usage: $0 [--starts K] [--mix-seeds N] [--hunt-seeds N] [--jobs J]" >&2; exit 3 ;;
  esac
done

cargo build --release -q -p bootsim
bootsim=./target/release/bootsim
common=(--starts "$starts" --jobs "$jobs")

echo "## Default mix (every scenarios/*.toml with swarm = true)"
echo
echo "\$ $bootsim bench detection ${common[*]} --max-seeds $mix_seeds --shrink-runs 60"
"$bootsim" bench detection "${common[@]}" --max-seeds "$mix_seeds" --shrink-runs 60 \
  --failures target/detection/mix

for hunt in scenarios/hunts/q*-*.toml scenarios/targets/q*-*.toml; do
  [ -e "$hunt" ] || continue
  base=$(basename "$hunt")
  quirk=$(echo "${base%%-*}" | tr q Q)
  echo
  echo "## $quirk, targeted scenario $hunt"
  echo
  echo "\$ $bootsim bench detection ${common[*]} --max-seeds $hunt_seeds --shrink-runs 100 --quirk $quirk --scenario $hunt"
  "$bootsim" bench detection "${common[@]}" --max-seeds "$hunt_seeds" --shrink-runs 100 \
    --quirk "$quirk" --scenario "$hunt" --failures "target/detection/$quirk"
done
