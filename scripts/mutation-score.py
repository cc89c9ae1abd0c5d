#!/usr/bin/env python3
"""The swarm's own mutation score (docs/DETECTION.md, "Mutation score").

    scripts/mutation-score.py [--commit REV] [--every N] [--seeds N] [--out FILE]

Mutates a clean export of commit REV (default HEAD) in
target/mutation-score/src (never the working tree), one mutant at a time:
every N-th (default 8th) of the mutants `cargo mutants --list` gives for
src/, in its order, so the sample spreads over every file of the port. Per
mutant, one build (`cargo test --profile mutants --no-run`: the port, the
simulator, the `bootsim` binary and every test binary, incremental, no
LTO), then two verdicts from that one build:

  swarm   `bootsim swarm --seeds N --stop-on-failure --require-coverage`
          over the default mix (every scenarios/*.toml with swarm = true; no
          hunts, no quirk), judged as CI judges its swarm: caught when some
          seed fails or some coverage probe is reached by no seed (a port
          that never gets to a situation any more), missed when all pass;
  tests   `cargo test --profile mutants` (the whole suite, as CI runs it,
          with CI=true): caught when a test fails, missed when all pass.

A mutant that does not compile is `unviable` (left out of the rate); one
whose run exceeds three times the unmutated run's time is `timeout` and
counts as caught (the run did not pass), with the number of timeouts
printed apart. Every verdict is appended as one JSON line to --out
(default target/mutation-score/results.jsonl) as soon as
it is known, so a killed run resumes where it stopped: mutants already in
the file are skipped. At the end it prints the two kill-rate lines of
docs/DETECTION.md and every survivor.

Needs cargo-mutants (installed here when missing) and patch(1).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, cwd, timeout=None, env=None, log=None):
    """Run `cmd`; return (exit code or "timeout", seconds)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, timeout=timeout,
            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    return code, time.monotonic() - start


def ensure_cargo_mutants():
    if subprocess.run(["cargo", "mutants", "--version"], capture_output=True).returncode != 0:
        print("installing cargo-mutants (cargo install cargo-mutants --locked)", file=sys.stderr)
        subprocess.run(["cargo", "install", "cargo-mutants", "--locked"], check=True)


def export(commit, src):
    """A clean copy of `commit` in `src`, keeping an earlier export's target/."""
    os.makedirs(src, exist_ok=True)
    for name in os.listdir(src):
        if name != "target":
            path = os.path.join(src, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)


def mutants(src):
    out = subprocess.run(
        ["cargo", "mutants", "--list", "--json", "--diff", "-p", "shardboot"],
        cwd=src, capture_output=True, check=True, text=True,
    )
    return json.loads(out.stdout)


def apply(src, mutant, reverse=False):
    """Apply (or undo) a mutant's diff: its `+++` line names the mutant, not
    the file, so it is rewritten to the file before patch reads it."""
    lines = mutant["diff"].splitlines(keepends=True)
    lines = [f"+++ {mutant['file']}\n" if l.startswith("+++ ") else l for l in lines]
    cmd = ["patch", "-p0", "--quiet", "--forward"] + (["--reverse"] if reverse else [])
    subprocess.run(cmd, cwd=src, input="".join(lines), text=True, check=True)


class Checks:
    """The build and the two verdicts, with timeouts from the baseline."""

    def __init__(self, src, seeds, logs):
        self.src = src
        self.seeds = seeds
        self.logs = logs
        self.env = dict(os.environ, CI="true")
        self.swarm_limit = None
        self.tests_limit = None

    def build(self, log):
        cmd = ["cargo", "test", "--profile", "mutants", "--no-run"]
        return run(cmd, self.src, env=self.env, log=log)

    def swarm(self, log):
        failures = tempfile.mkdtemp(prefix="mutant-failures-")
        cmd = [
            os.path.join(self.src, "target", "mutants", "bootsim"), "swarm",
            "--seeds", str(self.seeds), "--stop-on-failure", "--require-coverage",
            "--failures", failures,
        ]
        code, secs = run(cmd, self.src, timeout=self.swarm_limit, env=self.env, log=log)
        shutil.rmtree(failures, ignore_errors=True)
        return code, secs

    def tests(self, log):
        cmd = ["cargo", "test", "--profile", "mutants"]
        return run(cmd, self.src, timeout=self.tests_limit, env=self.env, log=log)


def verdict(code):
    if code == "timeout":
        return "timeout"
    return "missed" if code == 0 else "caught"


def score(records, key):
    caught = sum(1 for r in records if r[key] in ("caught", "timeout"))
    judged = sum(1 for r in records if r[key] in ("caught", "timeout", "missed"))
    pct = 100.0 * caught / judged if judged else 0.0
    return caught, judged, pct


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commit", default="HEAD", help="the commit to mutate (default HEAD)")
    ap.add_argument("--every", type=int, default=8, help="sample every N-th mutant (default 8)")
    ap.add_argument("--seeds", type=int, default=1000, help="swarm seeds per mutant (default 1000)")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "mutation-score", "results.jsonl"),
                    help="verdicts, one JSON line per mutant (default target/mutation-score/results.jsonl)")
    ap.add_argument("--limit", type=int, default=None, help="stop after this many new mutants")
    ap.add_argument("--equivalent", default=os.path.join(ROOT, "docs", "mutation", "equivalent.txt"),
                    help="mutants that change nothing observable, one per line: the mutant's name, "
                         "' -- ', why (default docs/mutation/equivalent.txt); left out of N")
    args = ap.parse_args()
    if args.every < 1 or args.seeds < 1:
        ap.error("--every and --seeds must be at least 1")

    ensure_cargo_mutants()
    commit = subprocess.run(["git", "rev-parse", "--verify", args.commit + "^{commit}"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    work = os.path.join(ROOT, "target", "mutation-score")
    src = os.path.join(work, "src")
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export(commit, src)
    sample = mutants(src)[:: args.every]
    print(f"commit {commit}: {len(sample)} mutants (every {args.every}th)", file=sys.stderr)

    done = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            for line in f:
                r = json.loads(line)
                if r["commit"] == commit and r["every"] == args.every and r["seeds"] == args.seeds:
                    done[r["name"]] = r

    checks = Checks(src, args.seeds, logs)
    with open(os.path.join(logs, "baseline.log"), "w") as log:
        code, build_s = checks.build(log)
        if code != 0:
            sys.exit(f"the unmutated build fails (see {log.name})")
        code, swarm_s = checks.swarm(log)
        if code != 0:
            sys.exit(f"the unmutated swarm fails (see {log.name})")
        code, tests_s = checks.tests(log)
        if code != 0:
            sys.exit(f"the unmutated tests fail (see {log.name})")
    checks.swarm_limit = max(60.0, 3 * swarm_s)
    checks.tests_limit = max(120.0, 3 * tests_s)
    print(f"baseline: build {build_s:.0f}s, swarm {swarm_s:.0f}s, tests {tests_s:.0f}s", file=sys.stderr)

    new = 0
    for i, m in enumerate(sample):
        if m["name"] in done:
            continue
        if args.limit is not None and new >= args.limit:
            break
        new += 1
        rec = {"commit": commit, "every": args.every, "seeds": args.seeds, "index": i, "name": m["name"]}
        with open(os.path.join(logs, f"{i:03}.log"), "w") as log:
            apply(src, m)
            try:
                code, rec["build_s"] = checks.build(log)
                if code != 0:
                    rec["swarm"] = rec["tests"] = "unviable"
                else:
                    code, rec["swarm_s"] = checks.swarm(log)
                    rec["swarm"] = verdict(code)
                    code, rec["tests_s"] = checks.tests(log)
                    rec["tests"] = verdict(code)
            finally:
                apply(src, m, reverse=True)
        done[m["name"]] = rec
        with open(args.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"[{i + 1}/{len(sample)}] swarm {rec['swarm']:8} tests {rec['tests']:8} {m['name']}",
              file=sys.stderr)

    equivalent = {}
    if os.path.exists(args.equivalent):
        with open(args.equivalent) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    name, _, why = line.rstrip("\n").partition(" -- ")
                    equivalent[name.strip()] = why.strip()
    records = [done[m["name"]] for m in sample if m["name"] in done and m["name"] not in equivalent]
    for name, why in equivalent.items():
        if name in done:
            print(f"equivalent (left out): {name}: {why}")
    unviable = sum(1 for r in records if r["swarm"] == "unviable")
    print(f"commit {commit}, every {args.every}th mutant of src/, {len(records)} of {len(sample)} run, "
          f"{unviable} unviable")
    for key, label in (("tests", "cargo-test"), ("swarm", "swarm-only")):
        k, n, p = score(records, key)
        timeouts = sum(1 for r in records if r[key] == "timeout")
        print(f"{label} kill rate: {k}/{n} ({p:.0f}%)")
        print(f"  ({timeouts} of the {k} by timeout)", file=sys.stderr)
    for r in records:
        if "missed" in (r["swarm"], r["tests"]):
            print(f"survivor (swarm {r['swarm']}, tests {r['tests']}): {r['name']}")


if __name__ == "__main__":
    main()
