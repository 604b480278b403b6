"""Outside dev mode, ``binome up`` refuses to start without the vault's
master keys from the operator: it never generates them beside the database."""

from __future__ import annotations

import subprocess
import sys

from tests.support.platform_process import REPOSITORY, PlatformProcess

# Not dev mode: a database and a broker are given. Neither is reached: the
# refusal comes before anything starts.
PRODUCTION = {
    "BINOME_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "BINOME_KAFKA_BOOTSTRAP": "127.0.0.1:9",
}


def binome_up(platform: PlatformProcess) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "libs.cli", "up", "--port", str(platform.port)]
    return subprocess.run(command, cwd=REPOSITORY, env=platform.env, capture_output=True, text=True, timeout=120)


def test_binome_up_outside_dev_mode_without_master_keys_refuses_to_start(tmp_path) -> None:
    platform = PlatformProcess.create(tmp_path, env=PRODUCTION)
    done = binome_up(platform)
    assert done.returncode != 0
    assert "BINOME_VAULT_MASTER_KEYS" in done.stderr
    assert "Binome is up" not in done.stdout
    assert not (platform.data_dir / "keys").exists()


def test_binome_up_refuses_a_master_key_file_inside_its_data_dir(tmp_path) -> None:
    platform = PlatformProcess.create(tmp_path, env=PRODUCTION)
    inside = platform.data_dir / "masters.json"
    inside.write_text('{"global": "' + "A" * 43 + '="}')
    platform.env["BINOME_VAULT_MASTER_KEYS_FILE"] = str(inside)
    done = binome_up(platform)
    assert done.returncode != 0
    assert "inside the data directory" in done.stderr
