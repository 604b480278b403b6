"""Bearer-token verification: every classic attack gets a 401, and JWKS keys rotate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import httpx
from fastapi import Depends, FastAPI

from libs.api.app import create_service_app
from libs.api.problems import PROBLEM_JSON
from libs.api.security import current_principal
from libs.auth.principal import HR_ADMIN, REGIONAL_COMMITTEE, Principal
from libs.auth.tokens import InvalidToken, KeySourceUnavailable, TokenVerifier
from libs.settings import Settings

ISSUER, AUDIENCE = "https://idp.test", "binome"

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "org": "acme",
        "roles": [REGIONAL_COMMITTEE],
        "countries": ["FR", "BE"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = KEY, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers=headers or None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], signer: Any = None) -> str:
    """Build a JWT by hand, for tokens PyJWT refuses to create."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = signer(signing_input.encode()) if signer else b""
    return f"{signing_input}.{b64url(signature)}"


def pem_verifier() -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"], public_key=PUBLIC_PEM)


def app_with(verifier: TokenVerifier) -> FastAPI:
    app = create_service_app("test", title="t", version="1", verifier=verifier)

    @app.get("/v1/me")
    async def me(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
        return {"sub": principal.subject, "org": principal.organisation}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with(pem_verifier()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


REJECTED = {
    "wrong issuer": lambda: sign(claims(iss="https://evil.test")),
    "wrong audience": lambda: sign(claims(aud="someone-else")),
    "expired": lambda: sign(claims(exp=int(time.time()) - 3600)),
    "missing exp": lambda: sign(claims(exp=None)),
    "missing iss": lambda: sign(claims(iss=None)),
    "missing aud": lambda: sign(claims(aud=None)),
    "missing sub": lambda: sign(claims(sub=None)),
    "missing org": lambda: sign(claims(org=None)),
    "roles not a list": lambda: sign(claims(roles="hr_admin")),
    "signed by another key": lambda: sign(claims(), key=OTHER_KEY),
    "alg none, unsigned": lambda: handmade({"alg": "none", "typ": "JWT"}, claims()),
    "alg none, upper-case": lambda: handmade({"alg": "NONE", "typ": "JWT"}, claims()),
    # Algorithm confusion: an attacker who knows the (public!) RSA key signs
    # with HS256 using the PEM as the HMAC secret. A verifier that let the
    # header pick the algorithm would accept this.
    "HS256 with the public key as secret": lambda: handmade(
        {"alg": "HS256", "typ": "JWT"},
        claims(roles=[HR_ADMIN]),
        lambda data: hmac.new(PUBLIC_PEM, data, hashlib.sha256).digest(),
    ),
    "tampered payload": lambda: _tampered(),
    "garbage": lambda: "not-a-jwt",
    # Lifetimes over the 12 h maximum, with or without iat, or with an iat in the future.
    "lives 13 hours": lambda: sign(claims(exp=int(time.time()) + 13 * 3600)),
    "lives a year, no iat": lambda: sign(claims(iat=None, exp=int(time.time()) + 365 * 86400)),
    "iat in the future to hide a long life": lambda: sign(
        claims(iat=int(time.time()) + 30 * 86400, exp=int(time.time()) + 30 * 86400 + 60)
    ),
}


def test_a_token_of_the_maximum_lifetime_is_accepted_and_the_maximum_is_configurable() -> None:
    twelve_hours = sign(claims(exp=int(time.time()) + 12 * 3600))
    assert pem_verifier().verify(twelve_hours).subject == "alice"
    short = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, public_key=PUBLIC_PEM, max_lifetime_seconds=300, leeway_seconds=0
    )
    with pytest.raises(InvalidToken, match="lifetime"):
        short.verify(sign(claims()))  # 600 s


def _tampered() -> str:
    header, _, signature = sign(claims()).split(".")
    payload = b64url(json.dumps(claims(roles=[HR_ADMIN])).encode())
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize("case", list(REJECTED))
async def test_bad_tokens_get_401_problem(client: httpx.AsyncClient, case: str) -> None:
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {REJECTED[case]()}"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    body = r.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"


@pytest.mark.parametrize("case", list(REJECTED))
def test_bad_tokens_raise_invalid_token(case: str) -> None:
    with pytest.raises(InvalidToken):
        pem_verifier().verify(REJECTED[case]())


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("alg none, unsigned", jwt.InvalidAlgorithmError),
        ("HS256 with the public key as secret", jwt.InvalidAlgorithmError),
        ("signed by another key", jwt.InvalidSignatureError),
        ("tampered payload", jwt.InvalidSignatureError),
        ("missing exp", jwt.MissingRequiredClaimError),
        ("wrong issuer", jwt.InvalidIssuerError),
        ("wrong audience", jwt.InvalidAudienceError),
    ],
)
def test_rejected_for_the_right_reason(case: str, reason: type[Exception]) -> None:
    # The algorithm attacks must fail on the configured algorithm list, not
    # by luck somewhere later.
    with pytest.raises(InvalidToken) as info:
        pem_verifier().verify(REJECTED[case]())
    assert isinstance(info.value.__cause__, reason)


def test_expired_says_so() -> None:
    with pytest.raises(InvalidToken, match="expired"):
        pem_verifier().verify(sign(claims(exp=int(time.time()) - 3600)))


async def test_valid_token_gives_the_principal(client: httpx.AsyncClient) -> None:
    token = sign(claims(azp="hr-portal", countries=["fr", "BE"]))
    p = pem_verifier().verify(token)
    assert p == Principal(
        subject="alice",
        organisation="acme",
        roles=frozenset({REGIONAL_COMMITTEE}),
        countries=frozenset({"FR", "BE"}),
        client_id="hr-portal",
    )
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {"sub": "alice", "org": "acme"}


def test_audience_list_containing_ours_is_accepted() -> None:
    assert pem_verifier().verify(sign(claims(aud=["other", AUDIENCE]))).subject == "alice"


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS256"], []])
def test_verifier_refuses_symmetric_or_no_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=algorithms, public_key=PUBLIC_PEM)


def test_verifier_refuses_a_private_key_as_verification_key() -> None:
    private_pem = KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=private_pem)


def test_from_settings_reads_the_public_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "idp.pem"
    key_file.write_bytes(PUBLIC_PEM)
    settings = Settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key_file=key_file)
    assert TokenVerifier.from_settings(settings).verify(sign(claims())).organisation == "acme"


# --- JWKS and key rotation ---------------------------------------------


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    entry = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**entry, "kid": kid, "use": "sig", "alg": "RS256"}


class JwksServer:
    """A tiny identity provider key endpoint on 127.0.0.1, in a thread."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def jwks_verifier(url: str, cooldown: float = 0) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256"],
        jwks_url=url,
        jwks_refresh_cooldown_seconds=cooldown,
    )


def test_jwks_key_rotation_without_a_new_verifier(jwks: JwksServer) -> None:
    jwks.keys = [jwk(KEY, "k1")]
    verifier = jwks_verifier(jwks.url)
    assert verifier.verify(sign(claims(), KEY, kid="k1")).subject == "alice"
    assert verifier.verify(sign(claims(sub="bob"), KEY, kid="k1")).subject == "bob"
    assert jwks.fetches == 1  # the key set is cached

    # The IdP rotates: new kid, old key withdrawn. The same verifier fetches
    # the new set when it first meets the unknown kid.
    jwks.keys = [jwk(OTHER_KEY, "k2")]
    assert verifier.verify(sign(claims(sub="carol"), OTHER_KEY, kid="k2")).subject == "carol"
    assert jwks.fetches == 2

    # The withdrawn key is now refused.
    with pytest.raises(InvalidToken):
        verifier.verify(sign(claims(), KEY, kid="k1"))


def test_jwks_token_signed_by_wrong_key_for_its_kid(jwks: JwksServer) -> None:
    jwks.keys = [jwk(KEY, "k1")]
    with pytest.raises(InvalidToken):
        jwks_verifier(jwks.url).verify(sign(claims(), OTHER_KEY, kid="k1"))


def test_jwks_refetch_is_rate_limited(jwks: JwksServer) -> None:
    # With a cooldown, a flood of unknown kids costs the IdP one fetch, not one per token.
    jwks.keys = [jwk(KEY, "k1")]
    verifier = jwks_verifier(jwks.url, cooldown=60)
    verifier.verify(sign(claims(), KEY, kid="k1"))
    for i in range(5):
        with pytest.raises(InvalidToken):
            verifier.verify(sign(claims(), OTHER_KEY, kid=f"random-{i}"))
    assert jwks.fetches == 1


def test_jwks_hs256_confusion_with_a_jwk_is_refused(jwks: JwksServer) -> None:
    jwks.keys = [jwk(KEY, "k1")]
    token = handmade(
        {"alg": "HS256", "typ": "JWT", "kid": "k1"},
        claims(),
        lambda data: hmac.new(PUBLIC_PEM, data, hashlib.sha256).digest(),
    )
    with pytest.raises(InvalidToken):
        jwks_verifier(jwks.url).verify(token)


async def test_unreachable_jwks_is_503_not_401(jwks: JwksServer) -> None:
    # Our IdP being down is not the caller's fault: a 401 would make clients
    # discard good tokens.
    url = jwks.url
    jwks.__exit__()
    with pytest.raises(KeySourceUnavailable):
        jwks_verifier(url).verify(sign(claims(), KEY, kid="k1"))
    transport = httpx.ASGITransport(app=app_with(jwks_verifier(url)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        token = sign(claims(), KEY, kid="k1")
        r = await c.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM_JSON


async def test_jwks_verifier_behind_the_http_dependency(jwks: JwksServer) -> None:
    # The JWKS verifier may block on I/O, so the dependency runs it in a thread.
    jwks.keys = [jwk(KEY, "k1")]
    transport = httpx.ASGITransport(app=app_with(jwks_verifier(jwks.url)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get("/v1/me", headers={"Authorization": f"Bearer {sign(claims(), KEY, kid='k1')}"})
    assert r.status_code == 200 and r.json()["sub"] == "alice"


# --- verified tokens remembered until they expire --------------------------


def counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every signature verification ``jwt.decode`` runs from now on."""
    calls: list[str] = []
    real = jwt.decode

    def decode(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", decode)
    return calls


def test_a_token_verified_once_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, decodes = pem_verifier(), counting_decodes(monkeypatch)
    token = sign(claims())
    first, second = verifier.verify(token), verifier.verify(token)
    assert first == second and second.subject == "alice"
    assert decodes == [token]
    assert verifier.cached(token) == first


def test_a_remembered_token_is_verified_again_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier, decodes = pem_verifier(), counting_decodes(monkeypatch)
    now = time.time()
    token = sign(claims(exp=int(now) + 60))
    assert verifier.verify(token).subject == "alice"
    # Past exp plus the leeway (jwt.decode's own refusal, on its own clock, is tested above).
    monkeypatch.setattr(time, "time", lambda: now + 60 + verifier.leeway_seconds + 1)
    assert verifier.cached(token) is None
    verifier.verify(token)
    assert decodes == [token, token]


def test_an_expired_token_is_refused_although_it_was_verified() -> None:
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=PUBLIC_PEM, leeway_seconds=0)
    token = sign(claims(exp=int(time.time()) + 2))
    assert verifier.verify(token).subject == "alice"
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.1)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_a_token_that_failed_is_not_remembered() -> None:
    verifier = pem_verifier()
    token = sign(claims(), key=OTHER_KEY)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(token)
    assert verifier.cached(token) is None and len(verifier.verified) == 0


def test_the_remembered_tokens_are_bounded() -> None:
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=PUBLIC_PEM, verified_cache_size=2)
    tokens = [sign(claims(sub=f"user-{i}")) for i in range(3)]
    for token in tokens:
        verifier.verify(token)
    assert len(verifier.verified) == 2
    assert verifier.cached(tokens[0]) is None  # the least recently used went first
    assert verifier.cached(tokens[2]) is not None


def test_a_rotation_forgets_tokens_verified_with_the_withdrawn_key(jwks: JwksServer) -> None:
    jwks.keys = [jwk(KEY, "k1")]
    verifier = jwks_verifier(jwks.url)
    old = sign(claims(), KEY, kid="k1")
    assert verifier.verify(old).subject == "alice"
    assert verifier.cached(old) is not None
    # The IdP withdraws k1; the verifier learns it when a token names k2.
    jwks.keys = [jwk(OTHER_KEY, "k2")]
    assert verifier.verify(sign(claims(sub="carol"), OTHER_KEY, kid="k2")).subject == "carol"
    assert verifier.cached(old) is None
    with pytest.raises(InvalidToken):
        verifier.verify(old)


def test_a_withdrawn_key_is_refused_when_the_key_set_expires(jwks: JwksServer) -> None:
    # No token naming a new kid: the key set's own lifespan ends the remembered tokens too.
    jwks.keys = [jwk(KEY, "k1")]
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.url, jwks_cache_seconds=0.2,
                             jwks_refresh_cooldown_seconds=0)
    token = sign(claims(), KEY, kid="k1")
    assert verifier.verify(token).subject == "alice"
    jwks.keys = [jwk(OTHER_KEY, "k2")]
    assert verifier.verify(token).subject == "alice"  # the set in force still holds k1, as before the cache
    time.sleep(0.3)
    assert verifier.cached(token) is None
    with pytest.raises(InvalidToken):
        verifier.verify(token)


async def test_the_http_dependency_uses_the_remembered_token(
    monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient
) -> None:
    decodes = counting_decodes(monkeypatch)
    token = sign(claims())
    for _ in range(3):
        r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["sub"] == "alice"
    assert decodes == [token]
