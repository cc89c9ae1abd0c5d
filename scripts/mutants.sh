#!/usr/bin/env bash
# Mutation testing of the bootstrap (src/) against the regression suite and
# a short swarm-like run (see docs/DETECTION.md, "Mutation testing").
#
#   scripts/mutants.sh [--commit REV] [--list] [-- CARGO-MUTANTS-ARGS...]
#
# It mutates a clean export of commit REV (default HEAD) in
# target/mutants-src/, never the working tree, so uncommitted edits neither
# leak into the run nor get mutated; results go to ./mutants.out/ (gitignored:
# caught.txt, missed.txt, timeout.txt, unviable.txt, outcomes.json).
#
# Which mutants: the configuration in .cargo/mutants.toml (src/ only, the
# bootstrap-critical files; the tests that decide). Narrow or widen with
# cargo-mutants' own arguments after `--`, e.g.
#   scripts/mutants.sh -- --file src/peer_server.rs
#   scripts/mutants.sh -- --shard 1/4
#   scripts/mutants.sh --list -- --file src/manager.rs
# The documented sample (docs/DETECTION.md, "Mutation testing"): the five
# bootstrap-critical files, every 16th mutant,
#   nice -n 10 scripts/mutants.sh --commit <REV> -- --file src/table_shard/copy.rs \
#     --file src/peer_server.rs --file src/peer_source.rs --file src/manager.rs \
#     --file src/datanode/assign.rs --shard 1/16 --sharding round-robin
# Do not edit this script while it runs: bash reads it as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rev=HEAD
list=false
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) rev="$2"; shift 2 ;;
    --list) list=true; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--commit REV] [--list] [-- CARGO-MUTANTS-ARGS...]" >&2; exit 3 ;;
  esac
done

if ! cargo mutants --version >/dev/null 2>&1; then
  echo "installing cargo-mutants (cargo install cargo-mutants --locked)" >&2
  cargo install cargo-mutants --locked
fi

commit=$(git rev-parse --verify "$rev^{commit}")
# A listing gets a directory of its own, so that it never rewrites the
# sources under a run that is mutating them in place.
if $list; then
  src="$repo/target/mutants-list-src"
else
  src="$repo/target/mutants-src"
fi
# Keep the build cache of an earlier export; replace the sources.
mkdir -p "$src"
find "$src" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
git archive "$commit" | tar -x -C "$src"
echo "mutating a clean export of $commit in $src" >&2

if $list; then
  exec cargo mutants --dir "$src" --list "$@"
fi

# The tests that decide: the regression suite, the quirk regressions (once
# they exist), chaos-default seeds 1..=50 (the other chaos tests are
# skipped: same kind of check, four times the time), and the cheap direct
# ones: src/'s unit tests and tests/upstream_behaviour.rs (the peer protocol
# request by request). Given as cargo args (-C), not cargo-test args, so that
# the build phase (`cargo test --no-run`) builds only these test binaries.
tests=(-C --lib -C --test=upstream_behaviour -C --test=regressions -C --test=chaos)
if [ -f "$src/tests/quirk_regressions.rs" ]; then
  tests+=(-C --test=quirk_regressions)
fi
skips=(--skip seeds_51_to --skip seeds_101_to --skip seeds_151_to --skip is_deterministic)

# --in-place: the export is already a scratch copy (and keeps its target/
# between runs). The baseline (the tests on the unmutated tree) runs first
# and must pass.
status=0
cargo mutants --dir "$src" --in-place --output "$repo" -p shardboot "${tests[@]}" "$@" \
  -- -- "${skips[@]}" || status=$?
echo "commit: $commit" > "$repo/mutants.out/commit.txt"
exit "$status"
