"""Shared fixtures. Suites for one part of the code live beside it in tests/<part>/."""
