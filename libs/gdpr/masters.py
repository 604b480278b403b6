"""Region master keys (key-encryption keys) that wrap participants' data keys.

In production each region's key comes from the operator (a KMS export or a
secret mounted into the container): ``BINOME_VAULT_MASTER_KEYS`` or a JSON
file named by ``BINOME_VAULT_MASTER_KEYS_FILE``, outside the data directory.
Only in dev mode is a key per region created once under ``<data_dir>/keys``,
like the dev JWT key: a master key kept beside the database would let anyone
who copies the data directory unwrap every key, erased ones included (from
old pages or the WAL). Outside dev mode, no keys is a refusal to start.
Wrapping uses AES key wrap (RFC 3394) from ``cryptography``.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from libs.localfiles import write_new_file
from libs.settings import Settings, get_settings

MASTER_KEY_BYTES = 32


class UnknownRegion(LookupError):
    """A region with no master key while dev keys are off."""


class MasterKeysMissing(RuntimeError):
    """Outside dev mode, no master keys were given, or they sit in the data dir."""


@dataclass
class MasterKeys:
    keys: dict[str, bytes]
    country_regions: dict[str, str] = field(default_factory=dict)
    default_region: str = "global"
    #: Where dev keys of new regions go; None: only the configured keys exist.
    dev_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> MasterKeys:
        settings = settings or get_settings()
        given = {**_from_file(settings), **settings.vault_master_keys}
        configured = {region: base64.b64decode(value) for region, value in given.items()}
        for region, key in configured.items():
            if len(key) != MASTER_KEY_BYTES:
                raise ValueError(f"master key of region {region!r} must be {MASTER_KEY_BYTES} bytes")
        if not configured and not settings.in_dev_mode:
            raise MasterKeysMissing(
                "no vault master keys: outside dev mode Binome never keeps them in its data directory. "
                "Give BINOME_VAULT_MASTER_KEYS='{\"global\": \"<base64 of 32 bytes>\"}' or "
                "BINOME_VAULT_MASTER_KEYS_FILE=<a JSON file of that shape, outside the data directory> "
                "(or BINOME_DEV_MODE=true on a laptop)."
            )
        return cls(
            keys=configured,
            country_regions={c.upper(): r for c, r in settings.country_regions.items()},
            default_region=settings.vault_default_region,
            dev_dir=None if configured else Path(settings.data_dir) / "keys",
        )

    def region_of(self, country: str | None) -> str:
        return self.country_regions.get((country or "").upper(), self.default_region)

    def wrap(self, region: str, data_key: bytes) -> bytes:
        return aes_key_wrap(self._master(region), data_key)

    def unwrap(self, region: str, wrapped: bytes) -> bytes:
        return aes_key_unwrap(self._master(region), wrapped)

    def _master(self, region: str) -> bytes:
        key = self.keys.get(region)
        if key is None:
            key = self._dev_key(region)
            self.keys[region] = key
        return key

    def _dev_key(self, region: str) -> bytes:
        if self.dev_dir is None or not region.isidentifier():
            raise UnknownRegion(region)
        self.dev_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.dev_dir / f"vault-{region}.key"
        write_new_file(path, os.urandom(MASTER_KEY_BYTES), 0o600)  # no-op if another process won
        return path.read_bytes()


def _from_file(settings: Settings) -> dict[str, str]:
    """The key file's regions (``{"region": "<base64>"}``); none if unset.
    Outside dev mode the file must not be inside the data directory."""
    path = settings.vault_master_keys_file
    if path is None:
        return {}
    resolved, data_dir = Path(path).resolve(), Path(settings.data_dir).resolve()
    if not settings.in_dev_mode and resolved.is_relative_to(data_dir):
        raise MasterKeysMissing(
            f"BINOME_VAULT_MASTER_KEYS_FILE ({path}) is inside the data directory ({settings.data_dir}): "
            "keep master keys apart from the database they protect."
        )
    keys = json.loads(resolved.read_text())
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise ValueError(f"{path}: expected a JSON object of region -> base64 key")
    return keys
