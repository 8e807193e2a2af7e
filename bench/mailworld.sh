#!/usr/bin/env bash
# Verification benchmark: `listwarden verify` and py3-validate-email on the same simulated mail world.
#
#   bench/mailworld.sh [--seed N] [--profile bench|small] [--peer-workers N] [--no-peer]
#
# Builds the world with ../shared/mailworld (see its README), runs both verifiers inside it, scores
# them against the world's truth and prints accuracy, false_invalid, missed_invalid, wall time and
# its ratio to limit_s, peak RSS and the SMTP counters side by side. Needs root (network namespaces).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mailworld="${MAILWORLD:-$here/../shared/mailworld/mailworld}"
peer="$(dirname "$mailworld")/peers/py3-validate-email/run"
seed=1 profile=bench peer_workers=20 run_peer=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    --peer-workers) peer_workers="$2"; shift 2 ;;
    --no-peer) run_peer=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

listwarden="$here/.venv/bin/listwarden"
[[ -x "$listwarden" ]] || { echo "run 'make test' or 'make run' once to build .venv" >&2; exit 2; }
out="$here/bench/out/mailworld-$profile-$seed"
rm -rf "$out" && mkdir -p "$out"
"$mailworld" gen --seed "$seed" --profile "$profile" --out "$out/world" > "$out/gen.json"

# Listwarden's own settings for this world. The world's big providers allow 5 sessions per host
# (its README); LISTWARDEN_SMTP_PER_HOST defaults to a more cautious 3 for unknown real servers.
# mailworld exports PYTHONPYCACHEPREFIX for its own venv; our process keeps its normal bytecode cache.
export LISTWARDEN_MAIL_FROM=verify@mailworld.test LISTWARDEN_SMTP_PER_HOST="${LISTWARDEN_SMTP_PER_HOST:-5}"
"$mailworld" run --world "$out/world" --timeout 600 -- env -u PYTHONPYCACHEPREFIX \
  "$listwarden" verify -i "$out/world/addresses.txt" -o "$out/listwarden.csv" \
  > "$out/listwarden-run.json" 2> "$out/listwarden-stderr.txt"
"$mailworld" score --truth "$out/world/truth.csv" --results "$out/listwarden.csv" --map canonical --json \
  > "$out/listwarden-score.json"

if [[ "$run_peer" == 1 ]]; then
  "$peer"  # installs itself, outside the world
  "$mailworld" run --world "$out/world" --timeout 3600 -- \
    "$peer" "$out/world/addresses.txt" "$out/py3ve.csv" --workers "$peer_workers" > "$out/py3ve-run.json"
  "$mailworld" score --truth "$out/world/truth.csv" --results "$out/py3ve.csv" --map bool --json \
    > "$out/py3ve-score.json"
fi

python3 "$here/bench/mailworld_report.py" "$out" "$peer_workers"
