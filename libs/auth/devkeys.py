"""Development keys and tokens, for the embedded stack and for tests.

``ensure_dev_keypair`` creates one RSA-2048 keypair under ``<data_dir>/keys``
the first time it is needed; ``TokenVerifier.from_settings`` verifies with its
public half when no JWKS URL or public key file is configured, and ``mint``
(or the ``binome token`` command) signs with its private half. Production
tokens come from a real identity provider; this private key never leaves the
developer's machine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import jwt
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from libs.auth.principal import ALL_ROLES, normalise_country
from libs.localfiles import write_new_file
from libs.settings import get_settings

PRIVATE_KEY_NAME = "dev-jwt-private.pem"
PUBLIC_KEY_NAME = "dev-jwt-public.pem"


def ensure_dev_keypair(data_dir: Path | str | None = None) -> tuple[Path, Path]:
    """Return ``(private_pem_path, public_pem_path)``, creating them once.

    The private key file is mode 0600 and its directory 0700.
    """
    keys = Path(data_dir if data_dir is not None else get_settings().data_dir) / "keys"
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
    """Sign a dev token with the dev private key (RS256).

    Issuer and audience default to the configured ones, so the token verifies
    against ``TokenVerifier.from_settings()`` in the same environment.
    """
    settings = get_settings()
    private_path, _ = ensure_dev_keypair(data_dir if data_dir is not None else settings.data_dir)
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer or settings.jwt_issuer,
        "aud": audience or settings.jwt_audience,
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
    return jwt.encode(claims, private_path.read_bytes(), algorithm="RS256")


def token(
    sub: Annotated[str, typer.Option("--sub", help="Subject: the user or client id.")],
    org: Annotated[str, typer.Option("--org", help="Organisation (tenant) id.")],
    role: Annotated[
        list[str], typer.Option("--role", help=f"Role, repeatable: {', '.join(sorted(ALL_ROLES))}.")
    ],
    country: Annotated[
        list[str] | None,
        typer.Option("--country", help="Country a regional committee may see, repeatable."),
    ] = None,
    ttl: Annotated[int, typer.Option("--ttl", min=1, help="Lifetime in seconds.")] = 3600,
    client_id: Annotated[str | None, typer.Option("--client-id")] = None,
) -> None:
    """Print a development bearer token signed with the local dev key."""
    unknown = set(role) - ALL_ROLES
    if unknown:
        raise typer.BadParameter(f"unknown role(s): {', '.join(sorted(unknown))}", param_hint="--role")
    typer.echo(mint(sub, org, role, country or (), expires_in=ttl, client_id=client_id))
