"""Bearer JWT verification with PyJWT.

Rules that make this safe, and why:

- The accepted algorithms come from configuration (``Settings.jwt_algorithms``)
  and are passed to ``jwt.decode`` on every call. The token header's ``alg`` is
  never used to choose how to verify; PyJWT rejects a header ``alg`` outside
  our list. That defeats ``alg: none`` and the RS256 -> HS256 "public key used
  as HMAC secret" confusion.
- Only asymmetric algorithms are allowed: services hold public keys only, so
  no service can mint tokens, and there is no shared secret to leak.
- ``exp``, ``iss``, ``aud`` and ``sub`` must be present, and ``iss``/``aud``
  must equal the configured values.
- A token's lifetime (``exp`` minus ``iat``, or minus now when it has no
  ``iat``) may not exceed ``max_lifetime_seconds`` (``BINOME_JWT_MAX_LIFETIME_S``,
  12 h): an identity provider misconfigured to issue year-long tokens, or a
  dev key minting one, does not open a standing door.
- Keys come from a PEM public key file (rotation needs a restart) or from a
  JWKS URL through ``jwt.PyJWKClient``, which caches the key set and refetches
  it when a token names an unknown ``kid``, so an identity provider can rotate
  keys without restarting any service.
- A verified token's Principal is remembered (``VerifiedTokens``, a bounded
  LRU keyed by the whole token string) until the token expires: a client
  sends the same token for minutes or hours, and an RSA verification cost
  more than the rest of a typical read. A hit is only a token verified before
  *with the key set in force now*: a JWKS refetch (a rotation, a withdrawn
  key, the set's lifespan) forgets every token verified under the old set, so
  a withdrawn key is refused exactly when it was before the cache. A token
  that failed is never remembered (each failure still counts against its
  source's budget).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from libs.auth.principal import Principal
from libs.settings import Settings, get_settings

log = structlog.get_logger(__name__)

# Asymmetric JWS algorithms (RFC 7518 + EdDSA). HS* and "none" are refused.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not ours. Maps to 401.

    The message is safe to show to the caller; the precise reason is logged.
    """


class KeySourceUnavailable(Exception):
    """The JWKS endpoint could not be reached or returned no usable key.

    This is our problem, not the caller's: it maps to 503, not 401, so that a
    client does not throw away a good token because our IdP is down.
    """


def _string_list(claims: dict[str, Any], name: str) -> list[str]:
    # A claim like ``"roles": "hr_admin"`` would otherwise be iterated
    # character by character; insist on a JSON array of strings.
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidToken(f"claim {name!r} must be a list of strings")
    return value


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Map verified claims to a Principal (claims must already be verified)."""
    subject, organisation = claims.get("sub"), claims.get("org")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("claim 'sub' must be a non-empty string")
    if not isinstance(organisation, str) or not organisation:
        raise InvalidToken("claim 'org' must be a non-empty string")
    client_id = claims.get("client_id") or claims.get("azp")
    if client_id is not None and not isinstance(client_id, str):
        raise InvalidToken("claim 'client_id' must be a string")
    return Principal(
        subject=subject,
        organisation=organisation,
        roles=frozenset(_string_list(claims, "roles")),
        countries=frozenset(_string_list(claims, "countries")),
        client_id=client_id,
    )


class VerifiedTokens:
    """Principals of verified tokens until each token's expiry, at most
    ``size`` of them (the least recently used goes first). Thread-safe: a
    JWKS verifier runs in the thread pool."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        # token -> (principal, valid until (epoch seconds), the key set it was verified with)
        self._entries: OrderedDict[str, tuple[Principal, float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, key_set: object) -> Principal | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            principal, until, verified_with = entry
            if verified_with is not key_set or time.time() >= until:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return principal

    def put(self, token: str, principal: Principal, until: float, key_set: object) -> None:
        with self._lock:
            self._entries[token] = (principal, until, key_set)
            self._entries.move_to_end(token)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TokenVerifier:
    """Verifies bearer tokens and returns the caller's ``Principal``.

    Exactly one key source: ``public_key`` (PEM text/bytes or a loaded public
    key object) or ``jwks_url``. Build it once per process and share it: the
    JWKS client's cache lives in the instance.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("RS256",),
        public_key: Any = None,
        jwks_url: str | None = None,
        leeway_seconds: float = 10,
        jwks_cache_seconds: float = 300,
        jwks_refresh_cooldown_seconds: float = 30,
        jwks_timeout_seconds: float = 5,
        max_lifetime_seconds: float = 12 * 3600,
        verified_cache_size: int = 10_000,
    ) -> None:
        if (public_key is None) == (jwks_url is None):
            raise ValueError("give exactly one of public_key or jwks_url")
        algorithms = list(algorithms)
        bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if not algorithms or bad:
            raise ValueError(f"only asymmetric JWT algorithms are allowed, got {bad or 'none'}")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        # Small clock-skew allowance between the IdP and this host.
        self.leeway_seconds = leeway_seconds
        self.max_lifetime_seconds = max_lifetime_seconds
        self._key: Any = None
        self._jwks: jwt.PyJWKClient | None = None
        self.verified = VerifiedTokens(verified_cache_size)
        if jwks_url is not None:
            # The cooldown bounds how often an attacker sending random kids
            # can make us hit the IdP; a real rotation publishes the new key
            # before using it, so the periodic refresh picks it up anyway.
            self._jwks = jwt.PyJWKClient(
                jwks_url,
                cache_jwk_set=True,
                lifespan=jwks_cache_seconds,
                cooldown_duration=jwks_refresh_cooldown_seconds,
                timeout=jwks_timeout_seconds,
            )
        else:
            if isinstance(public_key, (str, bytes)):
                # Parse once at start-up: fails fast on a bad file and avoids
                # re-parsing PEM on every request. A private key is refused
                # here (load_pem_public_key raises), so it cannot be deployed
                # to a service by mistake.
                data = public_key.encode() if isinstance(public_key, str) else public_key
                public_key = load_pem_public_key(data)
            self._key = public_key

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TokenVerifier:
        """Key source by precedence: JWKS URL, PEM file, else the dev key.

        The dev fallback uses the keypair under ``data_dir/keys`` (the one
        ``binome token`` signs with), so the embedded stack works with no
        configuration; a production deployment sets one of the two settings.
        """
        s = settings or get_settings()
        common = dict(
            issuer=s.jwt_issuer,
            audience=s.jwt_audience,
            algorithms=s.jwt_algorithms,
            max_lifetime_seconds=s.jwt_max_lifetime_s,
        )
        if s.jwt_jwks_url:
            return cls(jwks_url=s.jwt_jwks_url, **common)
        if s.jwt_public_key_file:
            return cls(public_key=Path(s.jwt_public_key_file).read_bytes(), **common)
        from libs.auth.devkeys import ensure_dev_keypair  # avoid an import cycle

        _, public_path = ensure_dev_keypair(s.data_dir)
        log.warning("auth.dev_key_in_use", public_key=str(public_path))
        return cls(public_key=public_path.read_bytes(), **common)

    @property
    def may_block(self) -> bool:
        """True when ``verify`` may do network I/O (a JWKS fetch).

        Async callers should then run it in a thread so that a slow IdP does
        not stall the event loop.
        """
        return self._jwks is not None

    def _signing_key(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        try:
            # The kid in the header only selects which published key to try;
            # the algorithm list below is still ours.
            return self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise KeySourceUnavailable(str(exc)) from exc
        except jwt.PyJWKSetError as exc:
            raise KeySourceUnavailable(str(exc)) from exc
        except jwt.PyJWTError as exc:  # unknown kid, malformed header
            log.info("auth.token_rejected", reason=str(exc))
            raise InvalidToken("token is invalid") from exc

    def _key_set(self) -> object:
        """What a token is verified against now: the PEM key, or the JWKS set
        cached now (None once it expired: nothing cached is a hit then)."""
        if self._jwks is None:
            return self._key
        cache = self._jwks.jwk_set_cache
        return cache.get() if cache is not None else None

    def cached(self, token: str) -> Principal | None:
        """The Principal of ``token`` if it was verified before against the
        key set in force now and has not expired; never blocks."""
        key_set = self._key_set()
        return None if key_set is None else self.verified.get(token, key_set)

    def verify(self, token: str) -> Principal:
        """Verify ``token`` and return its Principal, or raise ``InvalidToken``."""
        principal = self.cached(token)
        if principal is not None:
            return principal
        key = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_iss": True,
                    "verify_aud": True,
                    # A token for several audiences is fine if we are one of
                    # them; but "aud" must be there (REQUIRED_CLAIMS).
                    "require": list(REQUIRED_CLAIMS),
                    # Refuse RSA keys shorter than 2048 bits and the like.
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.PyJWTError as exc:
            # Generic message to the caller; the reason goes to the log.
            log.info("auth.token_rejected", reason=str(exc))
            raise InvalidToken("token is invalid") from exc
        self._check_lifetime(claims)
        principal = principal_from_claims(claims)
        key_set = self._key_set()  # after the look-up: the set the key came from
        if key_set is not None:
            # Accepted until ``exp`` plus the leeway, as jwt.decode would accept it.
            self.verified.put(token, principal, claims["exp"] + self.leeway_seconds, key_set)
        return principal

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """Refuse a token valid for longer than the configured maximum."""
        issued = claims.get("iat")
        now = time.time()
        # An ``iat`` in the future cannot shorten the lifetime (PyJWT refuses it anyway).
        start = min(issued, now) if isinstance(issued, (int, float)) else now
        if claims["exp"] - start > self.max_lifetime_seconds + self.leeway_seconds:
            log.info("auth.token_rejected", reason="lifetime over the maximum")
            raise InvalidToken(f"token lifetime exceeds {int(self.max_lifetime_seconds)} seconds")

