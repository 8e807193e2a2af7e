#!/usr/bin/env bash
# `make bench`: every benchmark in turn, each printing its own figures against its target.
#
#   bench/run.sh [NAME ...]     names: mailworld verify-memory connectors job-recording job-memory
#                                      api slack-ack slack-clean-list webhooks
#
# mailworld and verify-memory need root (they run inside ../shared/mailworld's network namespace);
# the others run on loopback as any user. Results of the mailworld runs stay in bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
all=(mailworld verify-memory connectors job-recording job-memory api slack-ack slack-clean-list webhooks)
names=("${@:-${all[@]}}")

for name in "${names[@]}"; do
  echo "=== $name"
  case "$name" in
    mailworld)        bash bench/mailworld.sh ;;            # accuracy and speed vs py3-validate-email (issue 2)
    verify-memory)    bash bench/verify_memory.sh ;;        # 1,000,000 lines through listwarden verify -i (issue 2)
    connectors)       $py -m bench.connectors ;;            # 100,000 members per platform (issue 4)
    job-recording)    $py bench/job_recording.py ;;         # results recorded per second, SQLite and PostgreSQL (issue 3)
    job-memory)       $py bench/job_memory.py ;;            # a 1,000,000-contact job's memory (issue 3)
    api)              $py bench/api_validate.py ;;          # /v1/email/validate end to end and overhead (issue 7)
    slack-ack)        $py bench/slack_ack.py ;;             # ack latency (issue 5)
    slack-clean-list) $py bench/slack_clean_list.py ;;      # a 10,000-contact clean-list through Slack (issue 5)
    webhooks)         $py bench/webhooks_accept.py ;;       # accepted deliveries/s, accept p99, end to end (issue 6)
    *) echo "unknown benchmark $name (one of: ${all[*]})" >&2; exit 2 ;;
  esac
done
