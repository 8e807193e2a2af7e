"""Secrets are sealed with Fernet: a key file is generated once (0600, beside the database, its
path logged), keys rotate through MultiFernet, and no error message carries a key or a secret."""

from __future__ import annotations

import logging
import stat

import pytest
from cryptography.fernet import Fernet

from core.settings import Settings
from core.storage.crypto import SecretBox, SecretKeyError, key_file_for, load_box


def test_key_file_is_generated_once_with_mode_0600_and_logged(tmp_path, caplog) -> None:
    settings = Settings(DATABASE_URL=f"sqlite://{tmp_path}/lw.sqlite3")
    with caplog.at_level(logging.WARNING, logger="core.storage.crypto"):
        box = load_box(settings)
    path = key_file_for(settings)
    assert path == tmp_path / "lw.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text
    sealed = box.seal({"api_key": "s3cret"})
    assert load_box(settings).open(sealed) == {"api_key": "s3cret"}  # the second run reads the same key
    assert path.read_bytes().strip().decode() not in caplog.text


def test_postgres_without_a_key_is_refused() -> None:
    with pytest.raises(SecretKeyError, match="LISTWARDEN_SECRET_KEY"):
        load_box(Settings(DATABASE_URL="postgres://u@h/db"))


def test_rotation_with_multifernet() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_old = SecretBox([old]).seal({"k": "v"})
    both = SecretBox([new, old])
    assert both.open(sealed_old) == {"k": "v"}
    rotated = both.rotate(sealed_old)
    assert SecretBox([new]).open(rotated) == {"k": "v"}
    with pytest.raises(SecretKeyError) as err:
        SecretBox([new]).open(sealed_old)
    assert "v" not in str(err.value).split() and old.decode() not in str(err.value)


def test_a_bad_key_says_which_setting_without_echoing_it() -> None:
    with pytest.raises(SecretKeyError) as err:
        load_box(Settings(DATABASE_URL="sqlite://:memory:", LISTWARDEN_SECRET_KEY="not-a-key-zzzz"))
    assert "LISTWARDEN_SECRET_KEY" in str(err.value) and "not-a-key-zzzz" not in str(err.value)
    assert "keys=" in repr(SecretBox([Fernet.generate_key()]))
