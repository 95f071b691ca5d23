"""OPC UA through asyncua's client (the ``opcua`` extra).

Reads are one Read service call for all the plan's nodes (split only at the server's
MaxNodesPerRead); browse paths are translated once per plan and connection with one
TranslateBrowsePathsToNodeIds call, and cached. Values are decoded into typed columns
per variant type; arrays stay NumPy arrays (in an object column).

Security is explicit: ``security="None"`` must be asked for; otherwise a policy and mode
(``"Basic256Sha256,SignAndEncrypt"``) with a client certificate and key. The server's
certificate is refused unless it matches ``server_certificate=`` (a file), or the user
passes ``trust_server=True`` (or the certificate's SHA-256 fingerprint). Passwords are
:class:`bifrost.Secret` objects from the moment they are given; they never appear in a
repr, a log record or an error message.

Subscriptions use asyncua's low-level session API: one CreateMonitoredItems call for all
items and one :class:`ReadResult` per publish response (more than one only when the
server queued several values of an item), so the recorder's rows keep every value.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from bifrost._extras import require
from bifrost.addresses.opcua import (
    BrowsePath,
    NodeIdAddress,
    OpcUaAddress,
    is_opcua_address,
    parse_opcua_address,
)
from bifrost.drivers import _options
from bifrost.drivers.base import Driver, ReadResult
from bifrost.exceptions import (
    AddressError,
    BifrostError,
    ConfigurationError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
    ValueOutOfRange,
    WriteNotAllowed,
)
from bifrost.model import Quality, Tag
from bifrost.secrets import Secret

__all__ = ["OpcUaDriver", "OpcUaOptions", "OpcUaReadResult", "quality_of"]

_log = logging.getLogger("bifrost.opcua")

_POLICIES = ("Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss")
_MODES = ("Sign", "SignAndEncrypt")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_BROWSE_NODES = 50_000  # a browse never walks more than this many nodes
_MAX_CONTINUATIONS = 1_000
_DEFAULT_QUEUE = 10  # per monitored item: absorbs jitter between sampling and publishing

# StatusCode bits (OPC UA Part 4, 7.39): severity in the top two bits; for InfoType
# DataValue (bits 10-11 = 01) bit 7 says the server's queue overflowed.
_INFO_TYPE_MASK = 0x0C00
_INFO_TYPE_DATAVALUE = 0x0400
_OVERFLOW = 0x0080
_COMM_LOST = {
    0x80050000,  # BadCommunicationError
    0x808A0000,  # BadNotConnected
    0x800D0000,  # BadServerNotConnected
    0x80310000,  # BadNoCommunication
    0x80AE0000,  # BadConnectionClosed
    0x800C0000,  # BadShutdown
    0x800E0000,  # BadServerHalted
    0x80860000,  # BadSecureChannelClosed
    0x80260000,  # BadSessionClosed
    0x80250000,  # BadSessionIdInvalid
}
_TIMEOUTS = {0x800A0000, 0x80850000}  # BadTimeout, BadRequestTimeout
_CONFIG = {
    0x80340000,  # BadNodeIdUnknown
    0x80330000,  # BadNodeIdInvalid
    0x80350000,  # BadAttributeIdInvalid
    0x803A0000,  # BadNotReadable
    0x801F0000,  # BadUserAccessDenied
    0x806F0000,  # BadNoMatch
    0x80600000,  # BadBrowseNameInvalid
}
_NO_DATA = {0x80320000}  # BadWaitingForInitialData
_USER_REFUSED = {
    0x801F0000,  # BadUserAccessDenied
    0x80200000,  # BadIdentityTokenInvalid
    0x80210000,  # BadIdentityTokenRejected
}
_CERT_REFUSED = {0x80130000, 0x80140000, 0x80150000, 0x80160000, 0x80170000, 0x80180000}
_CERT_REFUSED |= {0x80190000, 0x801A0000, 0x801B0000, 0x801C0000, 0x801D0000, 0x80130000}
_SECURITY_REFUSED = {0x80130000, 0x80550000, 0x80580000}  # Certificate, PolicyRejected, ...
_NOT_WRITABLE = {0x803B0000, 0x801F0000}  # BadNotWritable, BadUserAccessDenied
_BAD_VALUE = {0x80740000, 0x803C0000}  # BadTypeMismatch, BadOutOfRange

_BUILD_INFO = {
    "product_name": 2261,
    "product_uri": 2262,
    "manufacturer": 2263,
    "software_version": 2264,
    "build_number": 2265,
    "build_date": 2266,
}
_NAMESPACE_ARRAY = 2255
_SERVER_STATE = 2259
_MAX_NODES_PER_READ = 11705

# Builtin DataType NodeIds (ns=0) that are variant types, with their NumPy dtypes.
_NUMPY = {
    1: np.bool_,
    2: np.int8,
    3: np.uint8,
    4: np.int16,
    5: np.uint16,
    6: np.int32,
    7: np.uint32,
    8: np.int64,
    9: np.uint64,
    10: np.float32,
    11: np.float64,
}
_INT_BOUNDS = {
    2: (-(2**7), 2**7 - 1),
    3: (0, 2**8 - 1),
    4: (-(2**15), 2**15 - 1),
    5: (0, 2**16 - 1),
    6: (-(2**31), 2**31 - 1),
    7: (0, 2**32 - 1),
    8: (-(2**63), 2**63 - 1),
    9: (0, 2**64 - 1),
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_TYPE_NAMES = {
    1: "Boolean",
    2: "SByte",
    3: "Byte",
    4: "Int16",
    5: "UInt16",
    6: "Int32",
    7: "UInt32",
    8: "Int64",
    9: "UInt64",
    10: "Float",
    11: "Double",
    12: "String",
    13: "DateTime",
    14: "Guid",
    15: "ByteString",
    16: "XmlElement",
    17: "NodeId",
    19: "StatusCode",
    20: "QualifiedName",
    21: "LocalizedText",
    22: "Structure",
    24: "BaseDataType",
    26: "Number",
    27: "Integer",
    28: "UInteger",
    29: "Enumeration",
    887: "EUInformation",
}
_NODE_CLASSES = {
    1: "Object",
    2: "Variable",
    4: "Method",
    8: "ObjectType",
    16: "VariableType",
    32: "ReferenceType",
    64: "DataType",
    128: "View",
}


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


_REDACTOR = _Redactor()


def quality_of(code: int) -> Quality:
    """Map an OPC UA StatusCode to a :class:`~bifrost.model.Quality` code."""
    if code == 0:
        return Quality.GOOD
    severity = code >> 30
    if severity == 0:
        overflow = (code & _INFO_TYPE_MASK) == _INFO_TYPE_DATAVALUE and code & _OVERFLOW
        return Quality.GOOD_OVERFLOW if overflow else Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    base = code & 0xFFFF0000
    if base in _COMM_LOST:
        return Quality.BAD_COMM_LOST
    if base in _TIMEOUTS:
        return Quality.BAD_TIMEOUT
    if base in _CONFIG:
        return Quality.BAD_CONFIG
    if base in _NO_DATA:
        return Quality.BAD_NO_DATA
    return Quality.BAD


def _status_name(code: int) -> str:
    from asyncua import ua as _ua

    ua: Any = _ua  # asyncua's own annotations want its wrapper int types

    try:
        status = ua.StatusCode(code & 0xFFFF0000)
        return f"{status.name}"
    except Exception:  # unknown codes have no name
        return f"0x{code:08X}"


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)


def _as_secret(value: Any, what: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value, what)
    raise ConfigurationError(f"{what} must be a string or bf.secret(...)")


@dataclass(frozen=True)
class OpcUaOptions:
    """Connection settings, from the URL and keyword arguments.

    ``password`` and ``private_key_password`` are :class:`Secret`; the repr shows only
    where they came from.
    """

    url: str
    host: str
    port: int
    timeout: float = 3.0
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: str | None = None
    private_key: str | None = None
    private_key_password: Secret | None = None
    user: str | None = None
    password: Secret | None = None
    server_certificate: str | None = None
    trust_server: bool | str = False
    max_nodes_per_read: int | None = None
    session_timeout: float = 600.0

    @property
    def endpoint(self) -> str:
        """The server URL (without credentials)."""
        return self.url

    @property
    def secure(self) -> bool:
        """Whether a security policy other than None is used."""
        return self.security_policy != "None"

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> OpcUaOptions:
        """Parse ``opc.tcp://[user[:password]@]host:port/path?option=value``.

        Keyword arguments override query parameters. ``security`` is required:
        ``"None"``, or ``"Basic256Sha256,Sign"`` / ``"Basic256Sha256,SignAndEncrypt"``.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "opc.tcp":
            raise ConfigurationError(f"{_redact_url(url)!r} is not an opc.tcp:// URL")
        settings: dict[str, Any] = {**_options.query(parts.query), **kwargs}
        try:
            host = parts.hostname or "127.0.0.1"
            port = parts.port if parts.port is not None else 4840
        except ValueError as exc:
            raise ConfigurationError(f"{_redact_url(url)!r}: {exc}") from None
        if parts.username is not None:
            settings.setdefault("user", unquote(parts.username))
            if parts.password is not None:
                settings.setdefault(
                    "password", Secret(unquote(parts.password), "the URL's password")
                )
        netloc = host if parts.port is None else f"{host}:{port}"
        clean = urlunsplit(("opc.tcp", netloc, parts.path, "", ""))
        values: dict[str, Any] = {"url": clean, "host": host, "port": port}
        converters: dict[str, Callable[[Any], Any]] = {
            "timeout": float,
            "certificate": lambda v: str(Path(v)),
            "private_key": lambda v: str(Path(v)),
            "private_key_password": lambda v: _as_secret(v, "private_key_password"),
            "user": str,
            "password": lambda v: _as_secret(v, "password"),
            "server_certificate": lambda v: str(Path(v)),
            "trust_server": lambda v: (
                v if isinstance(v, str) and ":" in v and len(v) > 20 else _truthy(v)
            ),
            "max_nodes_per_read": int,
            "session_timeout": float,
        }
        security = settings.pop("security", None)
        values.update(_options.convert(settings, converters, "OPC UA", extra_known=("security",)))
        values["security_policy"], values["security_mode"] = _parse_security(security)
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigurationError for settings that cannot work (no I/O but file checks)."""
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port {self.port} is outside 1-65535")
        if self.max_nodes_per_read is not None and self.max_nodes_per_read < 1:
            raise ConfigurationError("max_nodes_per_read must be at least 1")
        if self.password is not None and not self.user:
            raise ConfigurationError("a password needs a user name (user=...)")
        if self.secure:
            if not self.certificate or not self.private_key:
                raise ConfigurationError(
                    f"security {self.security_policy},{self.security_mode} needs a client "
                    "certificate and private key: certificate='client.der', "
                    "private_key='client.pem'"
                )
            for what, path in (
                ("certificate", self.certificate),
                ("private_key", self.private_key),
            ):
                if not Path(path).is_file():
                    raise ConfigurationError(f"{what} file {path!r} does not exist")
        if self.server_certificate is not None:
            if not Path(self.server_certificate).is_file():
                raise ConfigurationError(
                    f"server_certificate file {self.server_certificate!r} does not exist"
                )
            if self.trust_server:
                raise ConfigurationError(
                    "give either server_certificate= (a trusted certificate file) or "
                    "trust_server=, not both"
                )


def _parse_security(value: Any) -> tuple[str, str]:
    if value is None:
        raise ConfigurationError(
            "OPC UA connections need an explicit security setting: "
            "security='Basic256Sha256,SignAndEncrypt' (with certificate=, private_key=, and "
            "server_certificate= or trust_server=True), or security='None' to connect without "
            "signing or encryption"
        )
    text = str(value).replace(" ", "")
    if text.lower() in ("none", "none,none"):
        return "None", "None"
    policy, _, mode = text.partition(",")
    policies = {p.lower(): p for p in _POLICIES}
    modes = {m.lower(): m for m in _MODES}
    if policy.lower() not in policies:
        raise ConfigurationError(
            f"unknown OPC UA security policy {policy!r}; use one of None, {', '.join(_POLICIES)}"
        )
    if mode and mode.lower() not in modes:
        raise ConfigurationError(
            f"unknown OPC UA security mode {mode!r}; use Sign or SignAndEncrypt"
        )
    return policies[policy.lower()], modes[mode.lower()] if mode else "SignAndEncrypt"


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{parts.username}:***@{netloc}", parts.path, "", ""))


@dataclass(slots=True)
class OpcUaReadResult(ReadResult):
    """A :class:`ReadResult` that also keeps the servers' timestamps.

    ``timestamp_ns`` holds the source timestamps (or the server's, where the source gave
    none); ``server_timestamp_ns`` the server timestamps (0 where none was sent).
    """

    server_timestamp_ns: npt.NDArray[np.int64] | None = None


@dataclass(slots=True)
class _ReadPlan:
    tags: tuple[Tag, ...]
    addresses: tuple[OpcUaAddress, ...]
    node_ids: list[Any]  # ua.NodeId, or None for a browse path not resolved yet
    scale: npt.NDArray[np.float64] | None
    offset: npt.NDArray[np.float64] | None
    generation: int = -1  # the connection the browse paths were resolved on
    positions: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    batches: list[Any] = field(default_factory=list)  # ua.ReadParameters
    unresolved: list[tuple[int, int]] = field(default_factory=list)  # (position, status)


@dataclass(frozen=True, slots=True)
class _Write:
    tag: Tag
    address: OpcUaAddress
    value: Any


@dataclass(frozen=True, slots=True)
class _NodeMeta:
    data_type: int | None  # builtin type id (ns=0) or None for other types
    type_name: str
    value_rank: int
    access: int
    user_access: int


def _datetime_ns(value: Any) -> int:
    # asyncua decodes DateTime to aware UTC datetimes with microsecond resolution.
    delta = value - _EPOCH
    return int((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)


class OpcUaDriver(Driver):
    """OPC UA client driver (asyncua)."""

    protocol: ClassVar[str] = "opcua"

    def __init__(self, options: OpcUaOptions) -> None:
        self.options = options
        for secret in (options.password, options.private_key_password):
            if secret is not None and secret.reveal():
                _REDACTOR.add(secret.reveal())
        self._client: Any = None
        self._ua: ModuleType | None = None
        self._generation = 0
        self._paths: dict[BrowsePath, Any] = {}  # browse path -> NodeId or bad status code
        self._meta: dict[Any, _NodeMeta] = {}
        self._max_per_read: int | None = options.max_nodes_per_read
        self._server_fingerprint: str | None = None
        self._subscriptions: list[_Subscription] = []

    def __del__(self) -> None:
        for secret in (self.options.password, self.options.private_key_password):
            if secret is not None and secret.reveal():
                _REDACTOR.remove(secret.reveal())

    def __repr__(self) -> str:
        return f"<OpcUaDriver {self.options.url} security={self.options.security_policy}>"

    # -- basics ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The server URL."""
        return self.options.url

    @property
    def connected(self) -> bool:
        """Whether the session is up."""
        client = self._client
        if client is None:
            return False
        from asyncua.client.ua_client import UaClientState

        return bool(client.uaclient.state is UaClientState.CONNECTED)

    def _module(self) -> Any:
        if self._ua is None:
            asyncua = require("asyncua", "OPC UA connections")
            quiet_asyncua()
            self._ua = asyncua
        return self._ua.ua

    def is_address(self, text: str) -> bool:
        """Whether ``text`` is a NodeId (``ns=2;s=...``) or a browse path (``/Objects/...``)."""
        return is_opcua_address(text)

    def _address(self, tag: Tag) -> OpcUaAddress:
        try:
            return parse_opcua_address(tag.address)
        except AddressError as exc:
            if tag.name != tag.address:
                raise AddressError(
                    exc.address, exc.position, f"{exc.reason} (tag {tag.name!r})", "OPC UA"
                ) from None
            raise

    def _node_id(self, address: NodeIdAddress) -> Any:
        ua = self._module()
        identifier = address.identifier
        kind = {
            "i": ua.NodeIdType.Numeric,
            "s": ua.NodeIdType.String,
            "g": ua.NodeIdType.Guid,
            "b": ua.NodeIdType.ByteString,
        }[address.id_type]
        if address.id_type == "i" and address.namespace == 0 and int(identifier) < 256:  # type: ignore[arg-type,unused-ignore]
            kind = ua.NodeIdType.TwoByte
        return ua.NodeId(identifier, address.namespace, kind)

    def describe(self, tag: Tag) -> dict[str, Any]:
        """The address kind and NodeId or browse path (the data type lives on the server)."""
        address = self._address(tag)
        if isinstance(address, BrowsePath):
            return {"dtype": "object", "kind": "browse path", "path": str(address)}
        return {"dtype": "object", "kind": "node id", "node_id": str(address)}

    # -- connection -----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in (self.options.password, self.options.private_key_password):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text

    async def connect(self) -> None:
        """Open a session: check the endpoint and the server's certificate, then activate."""
        if self.connected:
            return
        await self._drop()
        self._module()
        assert self._ua is not None
        timeout = self.options.timeout
        client = self._ua.Client(self.options.url, timeout=timeout)
        client.name = client.description = "bifrost"
        client.application_uri = "urn:bifrost:client"
        client.session_timeout = int(self.options.session_timeout * 1000)
        what = f"OPC UA server at {self.endpoint}"
        try:
            async with asyncio.timeout(timeout * 3 + 1):  # endpoints, channel, session
                endpoints = await client.connect_and_get_server_endpoints()
                endpoint = self._choose_endpoint(endpoints)
                if self.options.secure:
                    await self._set_security(client, endpoint)
                if self.options.user:
                    client.set_user(self.options.user)
                if self.options.password is not None:
                    _REDACTOR.install()
                    client.set_password(self.options.password.reveal())
                await client.connect()
                _REDACTOR.install()  # loggers asyncua created while connecting
        except BifrostError:
            await _disconnect_quietly(client)
            raise
        except builtins.TimeoutError:
            await _disconnect_quietly(client)
            raise TimeoutError(f"could not connect to the {what} within {timeout:g} s") from None
        except Exception as exc:  # asyncua and OS errors end here, translated
            await _disconnect_quietly(client)
            raise self._connect_error(exc) from None
        self._client = client
        self._generation += 1
        self._paths.clear()
        self._meta.clear()
        if self.options.max_nodes_per_read is None:
            self._max_per_read = await self._read_limit()

    async def _read_limit(self) -> int | None:
        ua = self._module()
        try:
            params = ua.ReadParameters()
            params.NodesToRead = [_read_value_id(ua, ua.NodeId(_MAX_NODES_PER_READ, 0))]
            (value,) = await self._client.uaclient.read(params)
            limit = value.Value.Value if value.Value is not None else None
        except Exception:  # an optional node; servers without it have no stated limit
            return None
        return int(limit) if isinstance(limit, int) and limit > 0 else None

    def _choose_endpoint(self, endpoints: Sequence[Any]) -> Any:
        ua = self._module()
        from asyncua.crypto import security_policies

        if self.options.secure:
            policy = getattr(security_policies, f"SecurityPolicy{self.options.security_policy}")
            uri = policy.URI
            mode = getattr(ua.MessageSecurityMode, self.options.security_mode)
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
        wanted = (
            "None"
            if not self.options.secure
            else f"{self.options.security_policy},{self.options.security_mode}"
        )
        if chosen is None:
            raise ConnectionError(
                f"the OPC UA server at {self.endpoint} offers no endpoint with security "
                f"{wanted!r}; it offers: {', '.join(sorted(set(offered))) or 'nothing'}. "
                "Pass one of those as security=..."
            )
        tokens = {t.TokenType for t in chosen.UserIdentityTokens or []}
        if self.options.user:
            if ua.UserTokenType.UserName not in tokens:
                raise ConnectionError(
                    f"the OPC UA server at {self.endpoint} does not accept user names on "
                    f"its {wanted!r} endpoint; connect without user= and password="
                )
            token = next(
                t for t in chosen.UserIdentityTokens if t.TokenType == ua.UserTokenType.UserName
            )
            clear_text = not self.options.secure and (
                not token.SecurityPolicyUri
                or token.SecurityPolicyUri == security_policies.SecurityPolicyNone.URI
            )
            if clear_text and self.options.password is not None:
                raise ConnectionError(
                    f"the OPC UA server at {self.endpoint} would receive the password in "
                    "clear text with security 'None'; use security='Basic256Sha256,"
                    "SignAndEncrypt'"
                )
        elif ua.UserTokenType.Anonymous not in tokens:
            raise ConnectionError(
                f"the OPC UA server at {self.endpoint} does not allow anonymous sessions; "
                "pass user= and password= (e.g. password=bf.secret('env:PLC_PASSWORD'))"
            )
        return chosen

    async def _set_security(self, client: Any, endpoint: Any) -> None:
        from asyncua.crypto import security_policies
        from asyncua.crypto import uacrypto as _uacrypto
        from cryptography import x509

        uacrypto: Any = _uacrypto  # partly untyped

        ua = self._module()
        presented = uacrypto.x509_from_der(endpoint.ServerCertificate)
        if presented is None:
            raise ConnectionError(
                f"the OPC UA server at {self.endpoint} presented no certificate on its "
                "secured endpoint; refusing to connect"
            )
        der = uacrypto.der_from_x509(presented)
        fingerprint = _fingerprint(der)
        self._server_fingerprint = fingerprint
        trusted = self.options.server_certificate
        if trusted is not None:
            try:
                expected = uacrypto.der_from_x509(await uacrypto.load_certificate(trusted))
            except Exception as exc:
                raise ConfigurationError(
                    f"server_certificate {trusted!r} is not a certificate (DER or PEM): {exc}"
                ) from None
            if expected != der:
                raise ConnectionError(
                    f"the OPC UA server at {self.endpoint} presented a certificate "
                    f"(SHA-256 {fingerprint}) that is not the trusted one in {trusted!r}; "
                    "refusing to connect. If the server's certificate was renewed, check the "
                    "fingerprint with its administrator and replace that file"
                )
        elif isinstance(self.options.trust_server, str):
            if _normal_fingerprint(self.options.trust_server) != _normal_fingerprint(fingerprint):
                raise ConnectionError(
                    f"the OPC UA server at {self.endpoint} presented a certificate with "
                    f"SHA-256 {fingerprint}, not the trusted fingerprint; refusing to connect"
                )
        elif self.options.trust_server is not True:
            subject = presented.subject.rfc4514_string()
            raise ConnectionError(
                f"the OPC UA server at {self.endpoint} presented a certificate that is not "
                f"trusted (subject {subject!r}, SHA-256 {fingerprint}); refusing to connect. "
                "Check the fingerprint with the server's administrator, then pass "
                "server_certificate='<its .der or .pem file>' (or trust_server='<fingerprint>'),"
                " or trust_server=True to accept whatever certificate the server presents"
            )
        else:
            _log.info("trusting the OPC UA server certificate %s (trust_server=True)", fingerprint)
        certificate = await uacrypto.load_certificate(self.options.certificate or "")
        with contextlib.suppress(x509.ExtensionNotFound):
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
            if uris:  # the session's ApplicationUri must match the certificate's
                client.application_uri = uris[0]
        policy = getattr(security_policies, f"SecurityPolicy{self.options.security_policy}")
        key_password = self.options.private_key_password
        await client.set_security(
            policy,
            self.options.certificate,
            self.options.private_key,
            key_password.reveal() if key_password is not None else None,
            der,
            getattr(ua.MessageSecurityMode, self.options.security_mode),
        )

    def _connect_error(self, exc: BaseException) -> BifrostError:
        ua = self._module()
        what = f"the OPC UA server at {self.endpoint}"
        code = getattr(exc, "code", None)
        if isinstance(exc, ua.UaStatusCodeError) and isinstance(code, int):
            base = code & 0xFFFF0000
            name = _status_name(code)
            if base in _USER_REFUSED:
                user = self.options.user or "anonymous"
                return ConnectionError(
                    f"{what} refused user {user!r} ({name}): wrong user name or password?"
                )
            if base in _CERT_REFUSED or base in _SECURITY_REFUSED:
                return ConnectionError(
                    f"{what} refused the secure channel ({name}): is this client's "
                    "certificate trusted by the server?"
                )
            return ConnectionError(f"could not connect to {what}: {name}")
        text = self._scrub(str(exc) or type(exc).__name__)
        if isinstance(exc, OSError):
            return ConnectionError(
                f"could not connect to {what}: {text}; is the server running and the port right?"
            )
        return ConnectionError(f"could not connect to {what}: {type(exc).__name__}: {text}")

    async def close(self) -> None:
        """Close the session (idempotent); subscriptions end with it."""
        for subscription in self._subscriptions:
            subscription.closed = True
        self._subscriptions.clear()
        await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _disconnect_quietly(client)

    async def _ensure_connected(self) -> Any:
        if not self.connected:
            await self.connect()
        return self._client

    async def _call(self, what: str, coroutine: Any) -> Any:
        """Await an asyncua request; translate its failures."""
        ua = self._module()
        try:
            return await coroutine
        except builtins.TimeoutError:
            await self._drop()
            raise TimeoutError(
                f"no answer from the OPC UA server at {self.endpoint} within "
                f"{self.options.timeout:g} s ({what})"
            ) from None
        except ua.UaStatusCodeError as exc:
            code = int(getattr(exc, "code", 0) or 0)
            if quality_of(code) in (Quality.BAD_COMM_LOST, Quality.BAD_TIMEOUT):
                await self._drop()
                raise ConnectionError(
                    f"lost the connection to the OPC UA server at {self.endpoint} "
                    f"({_status_name(code)})"
                ) from None
            raise ProtocolError(
                f"the OPC UA server at {self.endpoint} answered {_status_name(code)} ({what})",
                code=code,
            ) from None
        except (OSError, builtins.ConnectionError, ua.UaError) as exc:
            await self._drop()
            text = self._scrub(str(exc) or type(exc).__name__)
            raise ConnectionError(
                f"lost the connection to the OPC UA server at {self.endpoint}: {text}"
            ) from None

    # -- reading --------------------------------------------------------------------------
    def compile_read(self, tags: Sequence[Tag]) -> _ReadPlan:
        """Parse every address and prepare the NodeIds (browse paths resolve on first use)."""
        addresses = tuple(self._address(tag) for tag in tags)
        node_ids = [self._node_id(a) if isinstance(a, NodeIdAddress) else None for a in addresses]
        scaled = any(t.is_scaled for t in tags)
        return _ReadPlan(
            tuple(tags),
            addresses,
            node_ids,
            np.array([t.scale for t in tags]) if scaled else None,
            np.array([t.offset for t in tags]) if scaled else None,
        )

    async def _resolve(self, plan: _ReadPlan) -> None:
        """Resolve the plan's browse paths (one call for the uncached ones) and batch it."""
        ua = self._module()
        paths = [a for a in plan.addresses if isinstance(a, BrowsePath)]
        missing = list(dict.fromkeys(p for p in paths if p not in self._paths))
        if missing:
            await self._translate(missing)
        positions = []
        plan.unresolved = []
        for i, address in enumerate(plan.addresses):
            if isinstance(address, BrowsePath):
                found = self._paths[address]
                if isinstance(found, int):
                    plan.node_ids[i] = None
                    plan.unresolved.append((i, found))
                    continue
                plan.node_ids[i] = found
            positions.append(i)
        plan.positions = np.asarray(positions, dtype=np.intp)
        ids = [_read_value_id(ua, plan.node_ids[i]) for i in positions]
        size = self._max_per_read or len(ids) or 1
        plan.batches = []
        for start in range(0, len(ids), size):
            params = ua.ReadParameters()
            params.NodesToRead = ids[start : start + size]
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            plan.batches.append(params)
        plan.generation = self._generation

    async def _translate(self, paths: Sequence[BrowsePath]) -> None:
        ua = self._module()
        requests = []
        for path in paths:
            elements = []
            for namespace, name in path.elements[1:] if _starts_at_root(path) else path.elements:
                element = ua.RelativePathElement()
                element.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
                element.IsInverse = False
                element.IncludeSubtypes = True
                element.TargetName = ua.QualifiedName(name, namespace)
                elements.append(element)
            request = ua.BrowsePath()
            request.StartingNode = ua.NodeId(ua.ObjectIds.RootFolder)
            request.RelativePath = ua.RelativePath()
            request.RelativePath.Elements = elements
            requests.append(request)
        client = await self._ensure_connected()
        results = await self._call(
            "translating browse paths", client.uaclient.translate_browsepaths_to_nodeids(requests)
        )
        for path, result in zip(paths, results, strict=True):
            code = result.StatusCode.value if result.StatusCode is not None else 0
            if code >> 30 >= 2 or not result.Targets:
                self._paths[path] = code or 0x806F0000  # BadNoMatch
            else:
                self._paths[path] = _local_node_id(ua, result.Targets[0].TargetId)

    def explain(self, plan: _ReadPlan) -> list[dict[str, Any]]:
        """The service calls a read makes: browse paths translated once, then Read calls."""
        rows: list[dict[str, Any]] = []
        paths = sum(1 for node in plan.node_ids if node is None)
        if paths and plan.generation != self._generation:
            rows.append({"request": "TranslateBrowsePathsToNodeIds", "nodes": paths})
        limit = self._max_per_read or len(plan.tags) or 1
        for start in range(0, len(plan.tags), limit):
            rows.append({"request": "Read", "nodes": min(limit, len(plan.tags) - start)})
        return rows

    async def execute_read(self, plan: _ReadPlan) -> OpcUaReadResult:
        """One Read service call (per MaxNodesPerRead) for all the plan's nodes."""
        client = await self._ensure_connected()
        if plan.generation != self._generation:
            await self._resolve(plan)
        values: list[Any] = []
        for params in plan.batches:
            values.extend(await self._call("reading", client.uaclient.read(params)))
        return self._decode(plan, plan.positions, values, reading=True)

    def _decode(
        self,
        plan: _ReadPlan,
        positions: npt.NDArray[np.intp] | Sequence[int],
        data_values: Sequence[Any],
        *,
        reading: bool,
        indices: npt.NDArray[np.intp] | None = None,
    ) -> OpcUaReadResult:
        """Turn DataValues (for ``positions`` of the plan) into a columnar result.

        For reads the result covers every tag of the plan; for notifications (``reading``
        False) only the given positions, in that order, with ``indices`` set.
        """
        n = len(plan.tags) if reading else len(data_values)
        quality = np.full(n, Quality.BAD_CONFIG, dtype=np.uint8)
        source = np.zeros(n, dtype=np.int64)
        server = np.zeros(n, dtype=np.int64)
        groups: dict[int, tuple[list[int], list[Any]]] = {}
        arrays: tuple[list[int], list[Any]] = ([], [])
        bad: dict[int, list[int]] = defaultdict(list)
        now = time.time_ns()
        for k, dv in enumerate(data_values):
            row = int(positions[k]) if reading else k
            status = dv.StatusCode
            code = status.value if status is not None else 0
            if code:
                q = quality_of(code)
                quality[row] = q
                if q >= Quality.BAD:
                    bad[code].append(row)
            else:
                quality[row] = Quality.GOOD
            stamp = dv.SourceTimestamp
            served = dv.ServerTimestamp
            if served is not None:
                server[row] = _datetime_ns(served)
            source[row] = _datetime_ns(stamp) if stamp is not None else (server[row] or now)
            variant = dv.Value
            if variant is None or variant.Value is None:
                continue
            value = variant.Value
            if isinstance(value, list):
                arrays[0].append(row)
                arrays[1].append(value)
                continue
            vtype = int(variant.VariantType)
            group = groups.get(vtype)
            if group is None:
                group = groups[vtype] = ([], [])
            group[0].append(row)
            group[1].append(value)
        columns = []
        scale, offset = plan.scale, plan.offset
        tag_of_row = (
            None if reading else (indices if indices is not None else np.asarray(positions))
        )
        for vtype, (rows, items) in groups.items():
            where = np.asarray(rows, dtype=np.intp)
            dtype = _NUMPY.get(vtype)
            if dtype is not None:
                column: npt.NDArray[Any] = np.asarray(items, dtype=dtype)
                if scale is not None and offset is not None and vtype != 1:
                    tags_at = where if tag_of_row is None else tag_of_row[where]
                    factors, shifts = scale[tags_at], offset[tags_at]
                    if (factors != 1.0).any() or (shifts != 0.0).any():
                        column = column * factors + shifts
            else:
                column = np.empty(len(items), dtype=object)
                for j, item in enumerate(items):
                    column[j] = item
            columns.append((where, column))
        if arrays[0]:
            column = np.empty(len(arrays[0]), dtype=object)
            for j, item in enumerate(arrays[1]):
                column[j] = np.asarray(item)
            columns.append((np.asarray(arrays[0], dtype=np.intp), column))
        errors = []
        if reading:
            for position, code in plan.unresolved:
                quality[position] = quality_of(code)
                source[position] = now
                bad[code].append(position)
            for code, rows in bad.items():
                names = [plan.tags[r].name for r in rows]
                shown = ", ".join(repr(x) for x in names[:5]) + (" …" if len(names) > 5 else "")
                errors.append(
                    ProtocolError(
                        f"the OPC UA server at {self.endpoint} answered {_status_name(code)} "
                        f"for tag{'s' if len(names) > 1 else ''} {shown}",
                        code=code,
                        tags=names,
                    )
                )
            tags = plan.tags
        else:
            assert tag_of_row is not None
            tags = tuple(plan.tags[i] for i in tag_of_row)
        return OpcUaReadResult(
            tags,
            columns,
            quality,
            source,
            errors,
            None if reading else np.asarray(tag_of_row, dtype=np.intp),
            server,
        )

    # -- writing --------------------------------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[_Write]:
        """Parse addresses and check values' kinds (types are checked against the server)."""
        writes = []
        for tag, given in items:
            address = self._address(tag)
            value = given.tolist() if isinstance(given, np.ndarray) else given
            if isinstance(value, list | tuple):
                checked: Any = [self._unscale(tag, v) for v in value]
            else:
                checked = self._unscale(tag, value)
            writes.append(_Write(tag, address, checked))
        return writes

    def _unscale(self, tag: Tag, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | str):
            return value
        if not isinstance(value, int | float):
            raise ValueOutOfRange(
                f"tag {tag.name!r}: cannot write a {type(value).__name__} "
                "(numbers, bools, strings or lists of them)"
            )
        if tag.is_scaled:
            return (value - tag.offset) / tag.scale
        return value

    async def _metadata(self, node_ids: Sequence[Any]) -> None:
        ua = self._module()
        missing = list(dict.fromkeys(n for n in node_ids if n not in self._meta))
        if not missing:
            return
        attributes = (
            ua.AttributeIds.DataType,
            ua.AttributeIds.ValueRank,
            ua.AttributeIds.AccessLevel,
            ua.AttributeIds.UserAccessLevel,
        )
        params = ua.ReadParameters()
        params.NodesToRead = [
            _read_value_id(ua, node_id, attribute)
            for node_id in missing
            for attribute in attributes
        ]
        client = await self._ensure_connected()
        values = await self._call("reading data types", client.uaclient.read(params))
        for i, node_id in enumerate(missing):
            dt, rank, access, user_access = (
                _plain(values[4 * i + j]) for j in range(len(attributes))
            )
            type_id = None
            type_name = str(dt)
            if dt is not None and dt.NamespaceIndex == 0 and isinstance(dt.Identifier, int):
                type_id = dt.Identifier
                type_name = _TYPE_NAMES.get(type_id, f"i={type_id}")
            self._meta[node_id] = _NodeMeta(
                type_id,
                type_name,
                int(rank) if rank is not None else -1,
                int(access or 0),
                int(access or 0) if user_access is None else int(user_access),
            )

    async def execute_write(self, plan: list[_Write]) -> None:
        """Check values against the nodes' DataType and AccessLevel, then one Write call."""
        ua = self._module()
        client = await self._ensure_connected()
        paths = [w.address for w in plan if isinstance(w.address, BrowsePath)]
        missing = [p for p in dict.fromkeys(paths) if p not in self._paths]
        if missing:
            await self._translate(missing)
        node_ids = []
        for write in plan:
            if isinstance(write.address, BrowsePath):
                found = self._paths[write.address]
                if isinstance(found, int):
                    raise ProtocolError(
                        f"tag {write.tag.name!r}: browse path {write.address} does not exist on "
                        f"the OPC UA server at {self.endpoint} ({_status_name(found)})",
                        code=found,
                        tags=[write.tag.name],
                    )
                node_ids.append(found)
            else:
                node_ids.append(self._node_id(write.address))
        await self._metadata(node_ids)
        params = ua.WriteParameters()
        for write, node_id in zip(plan, node_ids, strict=True):
            meta = self._meta[node_id]
            name = f"tag {write.tag.name!r} ({write.tag.address})"
            if not meta.access & 0x02:
                raise WriteNotAllowed(f"{name} is read-only on the OPC UA server (AccessLevel)")
            if not meta.user_access & 0x02:
                raise WriteNotAllowed(
                    f"{name} is not writable for user {self.options.user or 'anonymous'!r} "
                    "(UserAccessLevel)"
                )
            variant = _to_variant(ua, name, meta, write.value)
            item = ua.WriteValue()
            item.NodeId = node_id
            item.AttributeId = ua.AttributeIds.Value
            item.Value = ua.DataValue(variant)
            params.NodesToWrite.append(item)
        results = await self._call("writing", client.uaclient.write(params))
        for write, status in zip(plan, results, strict=True):
            code = status.value
            if code >> 30 < 2:
                continue
            base = code & 0xFFFF0000
            text = (
                f"the OPC UA server at {self.endpoint} refused writing tag {write.tag.name!r}: "
                f"{_status_name(code)}"
            )
            if base in _NOT_WRITABLE:
                raise WriteNotAllowed(text)
            if base in _BAD_VALUE:
                raise ValueOutOfRange(text)
            raise ProtocolError(text, code=code, tags=[write.tag.name])

    # -- browsing -------------------------------------------------------------------------
    async def browse(self, path: str | None, depth: int) -> Any:
        """Walk ``depth`` levels below ``path`` (default ``/Objects``), one level per call pair.

        Returns a DataFrame with node_id, browse_path, display_name, node_class, data_type,
        access_level, writable and description; properties (HasProperty) are left out.
        """
        import pandas as pd

        ua = self._module()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ConfigurationError(f"depth must be an integer >= 1, got {depth!r}")
        start_text = path or "/Objects"
        address = parse_opcua_address(start_text)
        if isinstance(address, BrowsePath):
            if address not in self._paths:
                await self._translate([address])
            start = self._paths[address]
            if isinstance(start, int):
                raise ProtocolError(
                    f"browse path {start_text} does not exist on the OPC UA server at "
                    f"{self.endpoint} ({_status_name(start)})",
                    code=start,
                )
        else:
            start = self._node_id(address)
        client = await self._ensure_connected()
        rows: list[dict[str, Any]] = []
        frontier: list[tuple[Any, str]] = [(start, str(address).rstrip("/"))]
        for level in range(1, depth + 1):
            if not frontier or len(rows) >= _MAX_BROWSE_NODES:
                break
            children = await self._browse_level(client, [node for node, _ in frontier])
            found: list[tuple[Any, str, Any]] = []
            for (_, parent_path), references in zip(frontier, children, strict=True):
                for ref in references:
                    name = ref.BrowseName
                    escaped = "".join(f"&{c}" if c in "&/:" else c for c in name.Name)
                    element = f"{name.NamespaceIndex}:{escaped}" if name.NamespaceIndex else escaped
                    found.append((ref, f"{parent_path}/{element}", _local_node_id(ua, ref.NodeId)))
            details = await self._details(client, [f[2] for f in found], [f[0] for f in found])
            frontier = []
            for (ref, child_path, node_id), detail in zip(found, details, strict=True):
                node_class = _NODE_CLASSES.get(int(ref.NodeClass), str(ref.NodeClass))
                rows.append(
                    {
                        "node_id": node_id.to_string(),
                        "browse_path": child_path,
                        "display_name": ref.DisplayName.Text or "",
                        "node_class": node_class,
                        **detail,
                        "depth": level,
                    }
                )
                frontier.append((node_id, child_path))
        columns = [
            "node_id",
            "browse_path",
            "display_name",
            "node_class",
            "data_type",
            "access_level",
            "writable",
            "description",
            "depth",
        ]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame

    async def _browse_level(self, client: Any, nodes: Sequence[Any]) -> list[list[Any]]:
        ua = self._module()
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 0
        for node in nodes:
            description = ua.BrowseDescription()
            description.NodeId = node
            description.BrowseDirection = ua.BrowseDirection.Forward
            description.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
            description.IncludeSubtypes = True
            description.NodeClassMask = 0
            description.ResultMask = ua.BrowseResultMask.All
            params.NodesToBrowse.append(description)
        results = await self._call("browsing", client.uaclient.browse(params))
        out: list[list[Any]] = []
        for result in results:
            references = list(result.References or [])
            continuation = result.ContinuationPoint
            for _ in range(_MAX_CONTINUATIONS):
                if not continuation:
                    break
                more = ua.BrowseNextParameters()
                more.ContinuationPoints = [continuation]
                (next_result,) = await self._call("browsing", client.uaclient.browse_next(more))
                references.extend(next_result.References or [])
                continuation = next_result.ContinuationPoint
            has_property = ua.NodeId(ua.ObjectIds.HasProperty)
            out.append([r for r in references if r.ReferenceTypeId != has_property])
        return out

    async def _details(
        self, client: Any, node_ids: Sequence[Any], references: Sequence[Any]
    ) -> list[dict[str, Any]]:
        ua = self._module()
        if not node_ids:
            return []
        ids = list(node_ids)
        attributes = (
            ua.AttributeIds.Description,
            ua.AttributeIds.DataType,
            ua.AttributeIds.ValueRank,
            ua.AttributeIds.AccessLevel,
        )
        params = ua.ReadParameters()
        for node_id in ids:
            for attribute in attributes:
                params.NodesToRead.append(_read_value_id(ua, node_id, attribute))
        values = await self._call("reading node details", client.uaclient.read(params))
        details = []
        for i, ref in enumerate(references):
            description, dt, rank, access = (_plain(values[4 * i + j]) for j in range(4))
            variable = int(ref.NodeClass) == 2
            type_name = ""
            if variable and dt is not None:
                type_name = (
                    _TYPE_NAMES.get(dt.Identifier, dt.to_string())
                    if dt.NamespaceIndex == 0
                    else dt.to_string()
                )
                if rank is not None and int(rank) >= 0:
                    type_name += "[]"
            level = int(access or 0) if variable else 0
            details.append(
                {
                    "data_type": type_name,
                    "access_level": ("R" if level & 1 else "") + ("W" if level & 2 else ""),
                    "writable": bool(level & 2),
                    "description": (description.Text or "") if description is not None else "",
                }
            )
        return details

    # -- identification -------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """Server BuildInfo, namespace array, state and the session's security."""
        ua = self._module()
        client = await self._ensure_connected()
        ids = [*_BUILD_INFO.values(), _NAMESPACE_ARRAY, _SERVER_STATE]
        params = ua.ReadParameters()
        params.NodesToRead = [_read_value_id(ua, ua.NodeId(i, 0)) for i in ids]
        values = await self._call("reading the server's BuildInfo", client.uaclient.read(params))
        plain = [_plain(v) for v in values]
        result: dict[str, Any] = {"protocol": "opcua", "endpoint": self.endpoint}
        for key, value in zip(_BUILD_INFO, plain, strict=False):
            result[key] = value.isoformat() if isinstance(value, datetime) else value
        result["vendor"] = result.get("manufacturer")
        result["namespaces"] = list(plain[len(_BUILD_INFO)] or [])
        state = plain[len(_BUILD_INFO) + 1]
        result["state"] = getattr(state, "name", state)
        result["security_policy"] = self.options.security_policy
        result["security_mode"] = self.options.security_mode
        result["user"] = self.options.user
        result["server_certificate_sha256"] = self._server_fingerprint
        result["max_nodes_per_read"] = self._max_per_read
        return result

    # -- subscriptions --------------------------------------------------------------------
    async def subscribe(
        self,
        plan: _ReadPlan,
        interval_s: float,
        on_data: Callable[[ReadResult], None],
        *,
        queue_size: int | None = None,
        deadband: float = 0.0,
    ) -> _Subscription:
        """A data-change subscription: one ReadResult per publish response."""
        ua = self._module()
        if not interval_s > 0:
            raise ConfigurationError(f"interval must be positive, got {interval_s}")
        queue = _DEFAULT_QUEUE if queue_size is None else int(queue_size)
        if queue < 1:
            raise ConfigurationError(f"queue_size must be at least 1, got {queue_size}")
        if deadband < 0 or not math.isfinite(deadband):
            raise ConfigurationError(f"deadband must be >= 0, got {deadband}")
        client = await self._ensure_connected()
        if plan.generation != self._generation:
            await self._resolve(plan)
        positions = [int(p) for p in plan.positions]
        numeric = set(positions)
        if deadband > 0:
            await self._metadata([plan.node_ids[p] for p in positions])
            numeric = {
                p
                for p in positions
                if self._meta[plan.node_ids[p]].data_type in _INT_BOUNDS
                or self._meta[plan.node_ids[p]].data_type in (10, 11)
            }
        interval_ms = interval_s * 1000.0
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = interval_ms
        # Keep-alives every ~10 s at most, and a lifetime of 3 keep-alives (spec minimum).
        keep_alive = max(1, min(10_000, int(10_000 / max(interval_ms, 1.0))))
        params.RequestedMaxKeepAliveCount = keep_alive
        params.RequestedLifetimeCount = keep_alive * 3
        params.MaxNotificationsPerPublish = 0
        params.PublishingEnabled = True
        params.Priority = 0
        subscription = _Subscription(self, plan, on_data, client)
        response = await self._call(
            "creating a subscription",
            client.uaclient.create_subscription(params, subscription.on_publish),
        )
        subscription.subscription_id = response.SubscriptionId
        requests = []
        for position in positions:
            request = ua.MonitoredItemCreateRequest()
            request.ItemToMonitor = _read_value_id(ua, plan.node_ids[position])
            request.MonitoringMode = ua.MonitoringMode.Reporting
            parameters = ua.MonitoringParameters()
            parameters.ClientHandle = position
            parameters.SamplingInterval = interval_ms
            parameters.QueueSize = queue
            parameters.DiscardOldest = True
            if deadband > 0 and position in numeric:
                data_filter = ua.DataChangeFilter()
                data_filter.Trigger = ua.DataChangeTrigger.StatusValue
                data_filter.DeadbandType = ua.DeadbandType.Absolute
                data_filter.DeadbandValue = float(deadband)
                parameters.Filter = data_filter
            request.RequestedParameters = parameters
            requests.append(request)
        create = ua.CreateMonitoredItemsParameters()
        create.SubscriptionId = subscription.subscription_id
        create.ItemsToCreate = requests
        create.TimestampsToReturn = ua.TimestampsToReturn.Both
        try:
            results = await self._call(
                "creating monitored items", client.uaclient.create_monitored_items(create)
            )
        except BifrostError:
            await subscription.close()
            raise
        failed = [
            (position, result.StatusCode.value)
            for position, result in zip(positions, results, strict=True)
            if result.StatusCode.value >> 30 >= 2
        ]
        failed += plan.unresolved
        if failed and len(failed) == len(plan.tags):
            await subscription.close()
            code = failed[0][1]
            raise ProtocolError(
                f"the OPC UA server at {self.endpoint} refused to monitor every tag "
                f"({_status_name(code)})",
                code=code,
                tags=[t.name for t in plan.tags],
            )
        self._subscriptions.append(subscription)
        if failed:
            subscription.report_failed(failed)
        return subscription


class _Subscription:
    """A native subscription: turns publish responses into ReadResults."""

    def __init__(
        self,
        driver: OpcUaDriver,
        plan: _ReadPlan,
        on_data: Callable[[ReadResult], None],
        client: Any,
    ) -> None:
        self._driver = driver
        self._plan = plan
        self._on_data = on_data
        self._client = client
        self.subscription_id: int | None = None
        self.closed = False
        self.publishes = 0

    def report_failed(self, failed: Sequence[tuple[int, int]]) -> None:
        """Deliver once, with bad quality, the tags the server would not monitor."""
        positions = np.asarray([p for p, _ in failed], dtype=np.intp)
        n = len(positions)
        quality = np.asarray([quality_of(code) for _, code in failed], dtype=np.uint8)
        self._on_data(
            OpcUaReadResult(
                tuple(self._plan.tags[p] for p in positions),
                [],
                quality,
                np.full(n, time.time_ns(), dtype=np.int64),
                [],
                positions,
                np.zeros(n, dtype=np.int64),
            )
        )

    def on_publish(self, result: Any) -> None:
        """Asyncua's publish loop calls this with each PublishResult (on the loop)."""
        if self.closed:
            return
        from asyncua import ua

        self.publishes += 1
        for notification in result.NotificationMessage.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                self._data_change(notification.MonitoredItems)
            elif isinstance(notification, ua.StatusChangeNotification):
                code = notification.Status.value if notification.Status is not None else 0
                if code >> 30 >= 2:
                    self._lost(code)

    def _data_change(self, items: Sequence[Any]) -> None:
        rounds: list[tuple[list[int], list[Any]]] = []
        seen: dict[int, int] = {}
        for item in items:
            handle = item.ClientHandle
            k = seen.get(handle, 0)
            seen[handle] = k + 1
            if k == len(rounds):
                rounds.append(([], []))
            rounds[k][0].append(handle)
            rounds[k][1].append(item.Value)
        for handles, values in rounds:
            where = np.asarray(handles, dtype=np.intp)
            self._on_data(
                self._driver._decode(self._plan, where, values, reading=False, indices=where)
            )

    def _lost(self, code: int) -> None:
        n = len(self._plan.tags)
        quality = quality_of(code)
        self._on_data(
            OpcUaReadResult(
                self._plan.tags,
                [],
                np.full(n, quality if quality >= Quality.BAD else Quality.BAD, dtype=np.uint8),
                np.full(n, time.time_ns(), dtype=np.int64),
                [],
                None,
                np.zeros(n, dtype=np.int64),
            )
        )

    async def close(self) -> None:
        """Delete the subscription on the server (quietly if the session is gone)."""
        self.closed = True
        if self.subscription_id is None:
            return
        subscription_id, self.subscription_id = self.subscription_id, None
        with contextlib.suppress(ValueError):
            self._driver._subscriptions.remove(self)
        if self._client is not self._driver._client or not self._driver.connected:
            return  # that session is gone, and its subscriptions with it
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._driver.options.timeout):
                await self._client.uaclient.delete_subscriptions([subscription_id])


def _read_value_id(ua: Any, node_id: Any, attribute: Any = None) -> Any:
    rv = ua.ReadValueId()
    rv.NodeId = node_id
    rv.AttributeId = ua.AttributeIds.Value if attribute is None else attribute
    return rv


def _local_node_id(ua: Any, node_id: Any) -> Any:
    # Browse and TranslateBrowsePaths answer ExpandedNodeIds; requests take NodeIds.
    return ua.NodeId(node_id.Identifier, node_id.NamespaceIndex, node_id.NodeIdType)


def _plain(dv: Any) -> Any:
    if dv is None or dv.Value is None:
        return None
    if dv.StatusCode is not None and dv.StatusCode.value >> 30 >= 2:
        return None
    return dv.Value.Value


def _starts_at_root(path: BrowsePath) -> bool:
    # "/Root/Objects/..." and "/Objects/..." both mean below the Root folder.
    return bool(path.elements) and path.elements[0] == (0, "Root")


def _fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _normal_fingerprint(text: str) -> str:
    return text.replace(":", "").replace(" ", "").upper()


async def _disconnect_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await client.disconnect()


def _to_variant(ua: Any, name: str, meta: _NodeMeta, value: Any) -> Any:
    """Convert a Python value to the node's variant type, checking type and range."""
    type_id = meta.data_type
    if type_id is None or not 1 <= type_id <= 15:
        raise ValueOutOfRange(
            f"{name}: bifrost cannot write the OPC UA data type {meta.type_name} "
            "(only builtin scalar types and arrays of them)"
        )
    is_array = isinstance(value, list)
    if is_array and meta.value_rank == -1:
        raise ValueOutOfRange(f"{name} holds a scalar {meta.type_name}; got a list")
    if not is_array and meta.value_rank >= 1:
        raise ValueOutOfRange(f"{name} holds an array of {meta.type_name}; got a scalar")
    items = value if is_array else [value]
    converted = [_convert(name, meta, type_id, v) for v in items]
    vtype = ua.VariantType(type_id)
    return ua.Variant(converted if is_array else converted[0], vtype)


def _convert(name: str, meta: _NodeMeta, type_id: int, value: Any) -> Any:
    if type_id == 1:
        if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
            return bool(value)
        raise ValueOutOfRange(f"{name} is Boolean; got {value!r}")
    if type_id == 12:
        if isinstance(value, str):
            return value
        raise ValueOutOfRange(f"{name} is String; got {type(value).__name__}")
    if isinstance(value, str) or not isinstance(value, int | float):
        raise ValueOutOfRange(f"{name} is {meta.type_name}; got {type(value).__name__}")
    if type_id in _INT_BOUNDS:
        low, high = _INT_BOUNDS[type_id]
        if isinstance(value, float) and not value.is_integer():
            raise ValueOutOfRange(f"{name} is {meta.type_name}; {value!r} is not a whole number")
        number = int(value)
        if not low <= number <= high:
            raise ValueOutOfRange(f"{name} is {meta.type_name}; {value!r} is outside {low}..{high}")
        return number
    if type_id in (10, 11):
        real = float(value)
        if type_id == 10 and math.isfinite(real) and abs(real) > _FLOAT32_MAX:
            raise ValueOutOfRange(f"{name} is Float; {value!r} does not fit in 32 bits")
        return real
    raise ValueOutOfRange(f"bifrost cannot write {meta.type_name} values ({name})")
