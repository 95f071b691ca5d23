"""OPC UA security: endpoint choice, the server certificate's trust, log redaction."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from bifrost.exceptions import ConfigurationError, ConnectionError
from bifrost.protocols.opcua.options import OpcUaOptions

__all__ = ["quiet_asyncua"]

_log = logging.getLogger("bifrost.opcua")


def quiet_asyncua() -> None:
    """Asyncua logs every failed request itself; bifrost raises translated errors instead."""
    logger = logging.getLogger("asyncua")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


class _Redactor(logging.Filter):
    """Removes live passwords from asyncua's log records.

    At DEBUG level asyncua logs whole requests, ActivateSession included, whose user
    token carries the password in clear inside an encrypted channel.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            redacted = text
            for secret in self.secrets:
                redacted = redacted.replace(secret, "***")
            if redacted != text:
                record.msg, record.args = redacted, None
        return True

    def add(self, secret: str) -> None:
        for form in {secret, repr(secret.encode())[2:-1]}:
            self.secrets[form] = self.secrets.get(form, 0) + 1
        self.install()

    def remove(self, secret: str) -> None:
        for form in {secret, repr(secret.encode())[2:-1]}:
            left = self.secrets.get(form, 0) - 1
            if left > 0:
                self.secrets[form] = left
            else:
                self.secrets.pop(form, None)

    def install(self) -> None:
        # Filters do not propagate to child loggers: every asyncua logger gets it.
        for name in list(logging.root.manager.loggerDict):
            if name == "asyncua" or name.startswith("asyncua."):
                logger = logging.getLogger(name)
                if self not in logger.filters:
                    logger.addFilter(self)


REDACTOR = _Redactor()


def _fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _normal_fingerprint(text: str) -> str:
    return text.replace(":", "").replace(" ", "").upper()


def choose_endpoint(ua: Any, options: OpcUaOptions, endpoints: Sequence[Any]) -> Any:
    from asyncua.crypto import security_policies

    if options.secure:
        policy = getattr(security_policies, f"SecurityPolicy{options.security_policy}")
        uri = policy.URI
        mode = getattr(ua.MessageSecurityMode, options.security_mode)
    else:
        uri = security_policies.SecurityPolicyNone.URI
        mode = ua.MessageSecurityMode.None_
    offered = []
    chosen = None
    for ep in endpoints:
        name = str(ep.SecurityPolicyUri).rsplit("#", 1)[-1]
        offered.append(f"{name},{ep.SecurityMode.name.rstrip('_')}")
        if ep.SecurityPolicyUri == uri and ep.SecurityMode == mode and chosen is None:
            chosen = ep
    wanted = "None" if not options.secure else f"{options.security_policy},{options.security_mode}"
    if chosen is None:
        raise ConnectionError(
            f"the OPC UA server at {options.endpoint} offers no endpoint with security "
            f"{wanted!r}; it offers: {', '.join(sorted(set(offered))) or 'nothing'}. "
            "Pass one of those as security=..."
        )
    tokens = {t.TokenType for t in chosen.UserIdentityTokens or []}
    if options.user:
        if ua.UserTokenType.UserName not in tokens:
            raise ConnectionError(
                f"the OPC UA server at {options.endpoint} does not accept user names on "
                f"its {wanted!r} endpoint; connect without user= and password="
            )
        token = next(
            t for t in chosen.UserIdentityTokens if t.TokenType == ua.UserTokenType.UserName
        )
        clear_text = not options.secure and (
            not token.SecurityPolicyUri
            or token.SecurityPolicyUri == security_policies.SecurityPolicyNone.URI
        )
        if clear_text and options.password is not None:
            raise ConnectionError(
                f"the OPC UA server at {options.endpoint} would receive the password in "
                "clear text with security 'None'; use security='Basic256Sha256,"
                "SignAndEncrypt'"
            )
    elif ua.UserTokenType.Anonymous not in tokens:
        raise ConnectionError(
            f"the OPC UA server at {options.endpoint} does not allow anonymous sessions; "
            "pass user= and password= (e.g. password=bf.secret('env:PLC_PASSWORD'))"
        )
    return chosen


def presented_certificate(options: OpcUaOptions, endpoint: Any) -> tuple[Any, bytes, str]:
    """The server's certificate on ``endpoint``: as an x509 object, as DER, its fingerprint."""
    from asyncua.crypto import uacrypto as _uacrypto

    uacrypto: Any = _uacrypto  # partly untyped

    presented = uacrypto.x509_from_der(endpoint.ServerCertificate)
    if presented is None:
        raise ConnectionError(
            f"the OPC UA server at {options.endpoint} presented no certificate on its "
            "secured endpoint; refusing to connect"
        )
    der = uacrypto.der_from_x509(presented)
    fingerprint = _fingerprint(der)
    return presented, der, fingerprint


async def check_trust(options: OpcUaOptions, presented: Any, der: bytes, fingerprint: str) -> None:
    """Refuse a server certificate that ``server_certificate=`` or ``trust_server=`` rejects."""
    from asyncua.crypto import uacrypto as _uacrypto

    uacrypto: Any = _uacrypto  # partly untyped

    trusted = options.server_certificate
    if trusted is not None:
        try:
            expected = uacrypto.der_from_x509(await uacrypto.load_certificate(trusted))
        except Exception as exc:
            raise ConfigurationError(
                f"server_certificate {trusted!r} is not a certificate (DER or PEM): {exc}"
            ) from None
        if expected != der:
            raise ConnectionError(
                f"the OPC UA server at {options.endpoint} presented a certificate "
                f"(SHA-256 {fingerprint}) that is not the trusted one in {trusted!r}; "
                "refusing to connect. If the server's certificate was renewed, check the "
                "fingerprint with its administrator and replace that file"
            )
    elif isinstance(options.trust_server, str):
        if _normal_fingerprint(options.trust_server) != _normal_fingerprint(fingerprint):
            raise ConnectionError(
                f"the OPC UA server at {options.endpoint} presented a certificate with "
                f"SHA-256 {fingerprint}, not the trusted fingerprint; refusing to connect"
            )
    elif options.trust_server is not True:
        subject = presented.subject.rfc4514_string()
        raise ConnectionError(
            f"the OPC UA server at {options.endpoint} presented a certificate that is not "
            f"trusted (subject {subject!r}, SHA-256 {fingerprint}); refusing to connect. "
            "Check the fingerprint with the server's administrator, then pass "
            "server_certificate='<its .der or .pem file>' (or trust_server='<fingerprint>'),"
            " or trust_server=True to accept whatever certificate the server presents"
        )
    else:
        _log.info("trusting the OPC UA server certificate %s (trust_server=True)", fingerprint)


async def apply_security(ua: Any, options: OpcUaOptions, client: Any, der: bytes) -> None:
    """Give the client its certificate, key, policy and mode, and the trusted server's DER."""
    from asyncua.crypto import security_policies
    from asyncua.crypto import uacrypto as _uacrypto
    from cryptography import x509

    uacrypto: Any = _uacrypto  # partly untyped

    certificate = await uacrypto.load_certificate(options.certificate or "")
    with contextlib.suppress(x509.ExtensionNotFound):
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
        if uris:  # the session's ApplicationUri must match the certificate's
            client.application_uri = uris[0]
    policy = getattr(security_policies, f"SecurityPolicy{options.security_policy}")
    key_password = options.private_key_password
    await client.set_security(
        policy,
        options.certificate,
        options.private_key,
        key_password.reveal() if key_password is not None else None,
        der,
        getattr(ua.MessageSecurityMode, options.security_mode),
    )
