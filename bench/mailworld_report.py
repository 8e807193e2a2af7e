"""Print bench/mailworld.sh's figures side by side (reads the JSON files the script wrote)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(path: Path) -> dict | None:
    if not path.exists() or not path.read_text().strip():
        return None
    text = path.read_text().strip().splitlines()
    return json.loads(text[-1]) if path.suffix == ".json" and text[-1].startswith("{") else json.loads("\n".join(text))


def row(label: str, run: dict | None, score: dict | None) -> dict[str, str]:
    if run is None or score is None:
        return {"verifier": label}
    smtp = run.get("smtp", {})
    return {
        "verifier": label,
        "accuracy": f"{score['accuracy']:.2%}",
        "accuracy (truth known)": f"{score['accuracy_known']:.2%}",
        "false_invalid": f"{score['false_invalid']:.2%} ({score['false_invalid_n']})",
        "missed_invalid": f"{score['missed_invalid']:.2%} ({score['missed_invalid_n']})",
        "wall s": f"{run['wall_s']:.1f}",
        "x limit_s": f"{run['ratio']:.2f}",
        "peak RSS MB": f"{run['peak_rss_mb']:.0f}",
        "connections": str(smtp.get("connections", "")),
        "421 provoked": str(smtp.get("sessions_rejected_421", "")),
        "most RCPTs/session": str(smtp.get("rcpt_per_session_max", "")),
        "exit": str(run.get("exit_code", "")),
    }


def main() -> None:
    out = Path(sys.argv[1])
    workers = sys.argv[2] if len(sys.argv) > 2 else "?"
    gen = load(out / "gen.json") or {}
    ours = row("listwarden", load(out / "listwarden-run.json"), load(out / "listwarden-score.json"))
    peer = row(f"py3-validate-email ({workers} threads)", load(out / "py3ve-run.json"), load(out / "py3ve-score.json"))
    rows = [ours] + ([peer] if len(peer) > 1 else [])
    print(f"world: {out / 'world'} ({gen.get('lines')} lines, {gen.get('domains')} domains, limit_s {gen.get('limit_s')})")
    keys = [k for k in ours if k != "verifier"]
    width = max(len(k) for k in keys)
    print(" " * width + "  " + "  ".join(f"{r['verifier']:>34}" for r in rows))
    for key in keys:
        print(f"{key:<{width}}  " + "  ".join(f"{r.get(key, ''):>34}" for r in rows))
    if len(peer) > 1:
        speedup = float(peer["wall s"]) / float(ours["wall s"])
        print(f"speed-up over py3-validate-email: {speedup:.1f}x")


if __name__ == "__main__":
    main()
