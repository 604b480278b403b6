"""Where the vault's master keys may come from: outside dev mode, only from
the operator (environment or a key file outside the data dir), never
generated beside the database."""

from __future__ import annotations

import base64
import json
import os

import pytest

from libs.gdpr.cipher import new_data_key
from libs.gdpr.masters import MasterKeys, MasterKeysMissing
from libs.settings import Settings


def key_file(path, region: str = "global") -> bytes:
    key = os.urandom(32)
    path.write_text(json.dumps({region: base64.b64encode(key).decode()}))
    return key


def test_outside_dev_mode_no_master_keys_is_a_refusal(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data", dev_mode=False, vault_master_keys={}, vault_master_keys_file=None)
    with pytest.raises(MasterKeysMissing, match="BINOME_VAULT_MASTER_KEYS"):
        MasterKeys.from_settings(settings)
    assert not (tmp_path / "data" / "keys").exists()


def test_dev_mode_generates_keys_in_the_data_dir(tmp_path) -> None:
    masters = MasterKeys.from_settings(Settings(data_dir=tmp_path, dev_mode=True, vault_master_keys={}))
    masters.wrap("global", new_data_key())
    assert (tmp_path / "keys" / "vault-global.key").stat().st_size == 32


def test_a_key_file_outside_the_data_dir_is_used(tmp_path) -> None:
    key = key_file(tmp_path / "masters.json", "emea")
    settings = Settings(
        data_dir=tmp_path / "data", dev_mode=False, vault_master_keys={},
        vault_master_keys_file=tmp_path / "masters.json",
    )  # fmt: skip
    masters = MasterKeys.from_settings(settings)
    assert masters.keys == {"emea": key}
    assert masters.dev_dir is None


def test_a_key_file_inside_the_data_dir_is_refused_outside_dev_mode(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    key_file(tmp_path / "data" / "masters.json")
    settings = Settings(
        data_dir=tmp_path / "data", dev_mode=False, vault_master_keys={},
        vault_master_keys_file=tmp_path / "data" / "masters.json",
    )  # fmt: skip
    with pytest.raises(MasterKeysMissing, match="inside the data directory"):
        MasterKeys.from_settings(settings)
