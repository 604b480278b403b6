"""Dev keypair and dev tokens (``binome token``)."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest
import typer
from typer.testing import CliRunner

from libs.auth.devkeys import ensure_dev_keypair, mint, token
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE
from libs.auth.tokens import TokenVerifier
from libs.settings import Settings


def test_keypair_is_created_once_with_a_private_private_key(tmp_path: Path) -> None:
    private, public = ensure_dev_keypair(tmp_path)
    assert private.parent == tmp_path / "keys"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    first = private.read_bytes(), public.read_bytes()
    assert ensure_dev_keypair(tmp_path) == (private, public)
    assert (private.read_bytes(), public.read_bytes()) == first  # not regenerated
    assert b"PRIVATE KEY" in first[0] and b"PUBLIC KEY" in first[1]


def test_minted_token_verifies_with_the_settings_verifier(tmp_path: Path) -> None:
    # No JWKS URL and no key file configured: the verifier falls back to the
    # dev key under data_dir, the one mint() signs with.
    settings = Settings(data_dir=tmp_path, jwt_issuer="binome-dev", jwt_audience="binome")
    verifier = TokenVerifier.from_settings(settings)
    t = mint(
        "u1", "acme", [REGIONAL_COMMITTEE], ["fr"], data_dir=tmp_path,
        issuer="binome-dev", audience="binome",
    )
    p = verifier.verify(t)
    assert (p.subject, p.organisation, p.roles, p.countries) == (
        "u1", "acme", frozenset({REGIONAL_COMMITTEE}), frozenset({"FR"}),
    )
    header = jwt.get_unverified_header(t)
    assert header["alg"] == "RS256"
    assert jwt.decode(t, options={"verify_signature": False})["exp"] > 0


def test_token_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from libs.settings import get_settings

    monkeypatch.setenv("BINOME_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        app = typer.Typer()
        app.command("token")(token)
        app.command("noop")(lambda: None)  # so "token" stays a sub-command
        runner = CliRunner()
        result = runner.invoke(
            app,
            ["token", "--sub", "hr1", "--org", "acme", "--role", HR_ADMIN, "--country", "FR", "--ttl", "60"],
        )
        assert result.exit_code == 0, result.output
        printed = result.stdout.strip()
        p = TokenVerifier.from_settings().verify(printed)
        assert p.subject == "hr1" and p.has_role(HR_ADMIN)
        claims = jwt.decode(printed, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 60

        bad = runner.invoke(app, ["token", "--sub", "x", "--org", "acme", "--role", "root"])
        assert bad.exit_code != 0
    finally:
        get_settings.cache_clear()
