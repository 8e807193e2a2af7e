"""Verify-first: every new subscriber checked the moment the platform announces it (issue 6).

The receivers (webhooks/) authenticate and parse a delivery with the platform's connector and
store it in the inbox (core/deliveries.py) before answering; everything else happens here, in
the background:

- `processor.Processor` claims stored deliveries (leased, renewed, taken over after a crash);
- `pipeline.Pipeline` takes each new subscriber through the connection's keyword rules, then
  verification with its checks (`rules.py`), then the cleanup action through the connector,
  recording every step with the delivery; `cache.RecentResults` verifies an address that signs
  up twice in a minute once;
- `registration.Registrar` registers the platform webhook while verify-first is on (where the
  platform's API allows it) and removes it when it is off or the connection is disconnected;
- `polling.Poller` asks platforms without a new-subscriber webhook (SendGrid) for contacts
  created since a stored high-water mark;
- `digest.Digests` adds up each connection's window for its Slack channel; the Slack side
  plugs in with `set_notifier` (the core never imports a transport).

`service.VerifyFirst.of(runtime)` holds them for one process.
"""

from core.verify_first.digest import Digest
from core.verify_first.registration import WebhookSetup, webhook_url
from core.verify_first.service import VerifyFirst, set_notifier

__all__ = ["Digest", "VerifyFirst", "WebhookSetup", "set_notifier", "webhook_url"]
