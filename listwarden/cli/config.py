"""`listwarden config`: every setting, its environment variable and its default."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from core.settings import describe_settings


@click.command()
def config() -> None:
    """List every setting with its environment variable, default and meaning."""
    table = Table("variable", "default", "meaning")
    for name, default, description in describe_settings():
        table.add_row(name, default, description)
    Console().print(table)
