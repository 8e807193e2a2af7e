"""Every setting is documented and read from its environment variable."""

from core.settings import Settings, describe_settings


def test_every_setting_has_a_description() -> None:
    rows = describe_settings()
    assert len(rows) == len(Settings.model_fields)
    missing = [name for name, _, description in rows if not description]
    assert missing == []


def test_environment_overrides_defaults(monkeypatch) -> None:
    monkeypatch.setenv("LISTWARDEN_SMTP_PER_HOST", "7")
    monkeypatch.setenv("DATABASE_URL", "postgres://127.0.0.1/test")
    settings = Settings()
    assert settings.smtp_per_host == 7
    assert settings.sqlite_path is None


def test_sqlite_path_of_default() -> None:
    assert str(Settings().sqlite_path) == "listwarden.sqlite3"
