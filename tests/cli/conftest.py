from pathlib import Path

from tests.storage.fixtures import database, on_module_loop, services  # noqa: F401

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items) -> None:
    on_module_loop(items, HERE)
