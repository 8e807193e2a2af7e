"""A platform emulator served on loopback for the length of a test module, with a helper to connect it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.emulators.base import Emulator
from tests.emulators.server import LiveServer, serve

NO_RATE_LIMIT = {"rate_limit": None}  # emulators answer at once; the platforms' own limits would only slow tests


@contextlib.contextmanager
def served(module, members: int = 0) -> Iterator[tuple[Emulator, LiveServer]]:
    emulator = module.build(members=members)
    with serve(emulator.app) as server:
        yield emulator, server
