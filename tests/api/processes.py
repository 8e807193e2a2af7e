"""The app served for real on loopback: `listwarden serve` and other commands in processes of their own,
as an operator runs them, or uvicorn in a thread (LiveApp) where a test needs the app beside it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.emulators.server import free_port


def command(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    """Run `listwarden ARGS`; its stdout (fails the test with its stderr)."""
    done = subprocess.run([sys.executable, "-m", "listwarden", *args], env={**os.environ, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path) -> Iterator[str]:
    """`listwarden serve` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    log = (cwd / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "listwarden", "serve"], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **env, "LISTWARDEN_PORT": str(port), "LISTWARDEN_HOST": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json().get("started"):
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (cwd / f"serve-{port}.log").read_text()
            assert time.monotonic() < deadline, "serve did not start in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class LiveApp:
    """An ASGI app under uvicorn in a thread of its own, lifespan included (the storage opens there)."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = None
        self.thread = None
        self.url = ""

    def _start(self) -> bool:
        import threading

        import uvicorn

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="live-app")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive():
                return False  # the port was taken between choosing and binding it (other suites run beside us)
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.02)
        return True

    def __enter__(self) -> LiveApp:
        for _ in range(5):
            if self._start():
                return self
        raise AssertionError("the app could not bind a loopback port")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
