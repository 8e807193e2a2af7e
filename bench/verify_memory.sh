#!/usr/bin/env bash
# Memory benchmark: a 1,000,000-line file streamed through `listwarden verify -i` (target <= 300 MB).
#
#   bench/verify_memory.sh [--lines N]
#
# The file is the bench world's addresses with unique local parts (so no answer is served from
# the duplicate cache), verified over real DNS and SMTP inside ../shared/mailworld, with the
# world's reply latency lowered so that a million RCPTs take minutes rather than an hour.
# Prints wall time, peak RSS and the rows written. Needs root (network namespaces).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mailworld="${MAILWORLD:-$here/../shared/mailworld/mailworld}"
lines=1000000
[[ "${1:-}" == "--lines" ]] && lines="$2"
out="$here/bench/out/verify-memory"
rm -rf "$out" && mkdir -p "$out"
"$mailworld" gen --seed 7 --profile bench --latency-ms 2 --banner-ms 5 --greylist-s 1 --out "$out/world" > /dev/null
python3 - "$out/world/addresses.txt" "$out/input.txt" "$lines" <<'EOF'
import sys
source, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = [line.strip() for line in open(source, encoding="utf-8") if line.strip()]
with open(target, "w", encoding="utf-8") as out:
    for i in range(n):
        address = base[i % len(base)]
        local, at, domain = address.rpartition("@")
        out.write(f"{local}.{i // len(base)}@{domain}\n" if at and i >= len(base) else address + "\n")
EOF
export LISTWARDEN_MAIL_FROM=verify@mailworld.test LISTWARDEN_SMTP_PER_HOST=5
"$mailworld" run --world "$out/world" --timeout 3600 -- env -u PYTHONPYCACHEPREFIX \
  "$here/.venv/bin/listwarden" verify -i "$out/input.txt" -o "$out/results.csv" > "$out/run.json" 2> "$out/stderr.txt"
python3 - "$out" "$lines" <<'EOF'
import json, sys
out, lines = sys.argv[1], int(sys.argv[2])
run = json.loads(open(f"{out}/run.json").read().strip().splitlines()[-1])
rows = sum(1 for _ in open(f"{out}/results.csv", encoding="utf-8", errors="replace")) - 1
print(f"lines {lines:,}  rows written {rows:,}  wall {run['wall_s']:.0f} s  peak RSS {run['peak_rss_mb']:.0f} MB "
      f"(target <= 300)  SMTP connections {run['smtp']['connections']:,}  RCPTs {run['smtp']['rcpt_commands']:,}")
EOF
tail -1 "$out/stderr.txt"
