"""Development keys and tokens, for the embedded stack and for tests.

``ensure_dev_keypair`` creates one RSA-2048 keypair under ``<data_dir>/keys``
the first time it is needed; ``TokenVerifier.from_settings`` verifies with its
public half when no JWKS URL or public key file is configured, and ``mint``
(or the ``binome token`` command, one token or a batch) signs with its
private half; the command warns when it has to make the key. Production
tokens come from a real identity provider; this private key never leaves the
developer's machine.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import jwt
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from libs.auth.principal import ALL_ROLES, normalise_country
from libs.localfiles import write_new_file
from libs.settings import get_settings

PRIVATE_KEY_NAME = "dev-jwt-private.pem"
PUBLIC_KEY_NAME = "dev-jwt-public.pem"


def ensure_dev_keypair(data_dir: Path | str | None = None) -> tuple[Path, Path]:
    """Return ``(private_pem_path, public_pem_path)``, creating them once.

    The private key file is mode 0600 and its directory 0700.
    """
    keys = _keys_dir(data_dir)
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path, public_path = keys / PRIVATE_KEY_NAME, keys / PUBLIC_KEY_NAME
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_new_file(private_path, pem, 0o600)
    if not public_path.exists():
        # Always derive the public key from the private key on disk (which may
        # have been written by another process), so the pair always matches.
        private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        write_new_file(public_path, public_pem, 0o644)
    return private_path, public_path


def has_dev_key(data_dir: Path | str | None = None) -> bool:
    """Whether the data dir holds the platform's dev signing key already."""
    return (_keys_dir(data_dir) / PRIVATE_KEY_NAME).exists()


def _keys_dir(data_dir: Path | str | None) -> Path:
    return Path(data_dir if data_dir is not None else get_settings().data_dir) / "keys"


class DevSigner:
    """Signs dev tokens (RS256) with the dev private key, read and parsed once
    (a batch of tokens costs one key load, not one per token).

    Issuer and audience default to the configured ones, so the tokens verify
    against ``TokenVerifier.from_settings()`` in the same environment.
    """

    def __init__(self, data_dir: Path | str | None = None) -> None:
        self.settings = get_settings()
        private_path, _ = ensure_dev_keypair(data_dir if data_dir is not None else self.settings.data_dir)
        self._key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)

    def mint(
        self,
        subject: str,
        organisation: str,
        roles: Iterable[str],
        countries: Iterable[str] = (),
        expires_in: int = 3600,
        *,
        client_id: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": issuer or self.settings.jwt_issuer,
            "aud": audience or self.settings.jwt_audience,
            "sub": subject,
            "org": organisation,
            "roles": sorted(set(roles)),
            "countries": sorted({normalise_country(c) for c in countries}),
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
        }
        if client_id:
            claims["client_id"] = client_id
        return jwt.encode(claims, self._key, algorithm="RS256")


def mint(
    subject: str,
    organisation: str,
    roles: Iterable[str],
    countries: Iterable[str] = (),
    expires_in: int = 3600,
    data_dir: Path | str | None = None,
    *,
    client_id: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """Sign one dev token with the dev private key (``DevSigner``)."""
    return DevSigner(data_dir).mint(
        subject, organisation, roles, countries, expires_in, client_id=client_id, issuer=issuer, audience=audience
    )


class TokenSpec(BaseModel):
    """One token of ``binome token --batch FILE``."""

    model_config = ConfigDict(extra="forbid")

    sub: str = Field(min_length=1)
    org: str = Field(min_length=1)
    roles: list[str] = Field(min_length=1)
    countries: list[str] = []
    ttl: int = Field(default=3600, ge=1)
    client_id: str | None = None

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        problem = unknown_roles(roles)
        if problem:
            raise ValueError(problem)
        return roles


def unknown_roles(roles: Iterable[str]) -> str | None:
    """What is wrong with ``roles``, or None."""
    unknown = set(roles) - ALL_ROLES
    return f"unknown role(s): {', '.join(sorted(unknown))}" if unknown else None


def _read_batch(batch: Path) -> list[TokenSpec]:
    """The specs of a batch file (``-``: standard input); a clear error naming
    the entry and field that is wrong."""
    text = sys.stdin.read() if str(batch) == "-" else batch.read_text()
    try:
        return TypeAdapter(list[TokenSpec]).validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"[{'.'.join(str(p) for p in e['loc'])}] {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise typer.BadParameter(f"{batch}: {problems}", param_hint="--batch") from None


def token(
    sub: Annotated[str | None, typer.Option("--sub", help="Subject: the user or client id.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Organisation (tenant) id.")] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help=f"Role, repeatable: {', '.join(sorted(ALL_ROLES))}.")
    ] = None,
    country: Annotated[
        list[str] | None,
        typer.Option("--country", help="Country a regional committee may see, repeatable."),
    ] = None,
    ttl: Annotated[int, typer.Option("--ttl", min=1, help="Lifetime in seconds.")] = 3600,
    client_id: Annotated[str | None, typer.Option("--client-id")] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch",
            help="Mint many at once: a JSON file (- for stdin) holding a list of "
            '{"sub", "org", "roles", "countries"?, "ttl"?, "client_id"?}; prints that list as JSON, '
            'each with its "token".',
        ),
    ] = None,
) -> None:
    """Print a development bearer token signed with the local dev key (or a
    JSON list of them with ``--batch``)."""
    if batch is not None:
        if sub or org or role:
            raise typer.BadParameter("give either --batch or --sub/--org/--role", param_hint="--batch")
        specs = _read_batch(batch)
    else:
        missing = [name for name, value in (("--sub", sub), ("--org", org), ("--role", role)) if not value]
        if missing:
            raise typer.BadParameter(f"missing {', '.join(missing)} (or give --batch FILE)", param_hint=missing[0])
        problem = unknown_roles(role)
        if problem:
            raise typer.BadParameter(problem, param_hint="--role")
        specs = [TokenSpec(sub=sub, org=org, roles=role, countries=country or [], ttl=ttl, client_id=client_id)]
    data_dir = get_settings().data_dir
    if not has_dev_key(data_dir):
        typer.echo(
            f"warning: {_keys_dir(data_dir)} holds no platform key: made a new one. Its tokens are accepted "
            "only by a platform using this data dir (BINOME_DATA_DIR); run `binome token` where `binome up` runs.",
            err=True,
        )
    signer = DevSigner(data_dir)
    tokens = [signer.mint(s.sub, s.org, s.roles, s.countries, s.ttl, client_id=s.client_id) for s in specs]
    if batch is None:
        typer.echo(tokens[0])
        return
    typer.echo(json.dumps([{**s.model_dump(), "token": t} for s, t in zip(specs, tokens, strict=True)], indent=2))
