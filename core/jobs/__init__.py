"""Durable jobs: verify a list, clean it after approval, verify an uploaded file (and plug-in kinds).

Transports use `services.jobs` (core/jobs/service.py) and `services.events` (core/jobs/events.py);
core/jobs/README.md explains the states, the guarantees and how to add a kind.
"""
