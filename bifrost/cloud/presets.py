"""Cloud presets: an :class:`~bifrost.cloud.MqttSink` set up the way each cloud wants it.

- :func:`aws_iot_core`: mutual TLS with the thing's certificate; the client id is the
  thing name; port 8883, or 443 with the ALPN protocol ``x-amzn-mqtt-ca``.
- :func:`azure_iot_hub`: a device connection string (SAS token computed from its key
  and renewed before it expires) or an X.509 device certificate; username
  ``{hub}/{device}/?api-version=...``, topic ``devices/{device}/messages/events/``.
- :func:`google_iot`: Google Cloud IoT Core was shut down on 16 August 2023; raises.

TLS always verifies the broker's certificate and host name (the system's trust store
unless ``ca`` is given); secrets are :class:`~bifrost.Secret` and never printed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus, urlencode

from bifrost.cloud.sinks import MqttSink, Tls
from bifrost.exceptions import ConfigurationError
from bifrost.secrets import Secret

__all__ = ["AZURE_API_VERSION", "aws_iot_core", "azure_iot_hub", "google_iot", "sas_token"]

AZURE_API_VERSION = "2021-04-12"
PathLike = str | os.PathLike[str]


def aws_iot_core(
    endpoint: str,
    thing_name: str,
    cert: PathLike,
    key: PathLike,
    ca: PathLike | None = None,
    *,
    port: int = 8883,
    topic: str = "bifrost/{device}/{tag}",
    key_password: Secret | None = None,
    **options: Any,
) -> MqttSink:
    """A sink to AWS IoT Core.

    Parameters
    ----------
    endpoint
        The account's device data endpoint, ``xxxxxxxx-ats.iot.<region>.amazonaws.com``.
    thing_name
        The thing's name: also the MQTT client id (AWS policies usually require it).
    cert, key
        The thing's certificate and private key (PEM files).
    ca
        Amazon's root CA (``AmazonRootCA1.pem``); None uses the system's trust store.
    port
        8883 (MQTT over TLS) or 443 (MQTT over TLS with ALPN ``x-amzn-mqtt-ca``, for
        networks that only let HTTPS out).
    topic, key_password, **options
        Passed on to :class:`~bifrost.cloud.MqttSink` (``spool=``, ``payload=`` ...).
    """
    if not thing_name:
        raise ConfigurationError("aws_iot_core needs the thing name (the MQTT client id)")
    alpn = ("x-amzn-mqtt-ca",) if port == 443 else ()
    tls = Tls(ca=ca, cert=cert, key=key, key_password=key_password, alpn=alpn)
    return MqttSink(
        f"mqtts://{endpoint}:{port}", topic=topic, tls=tls, client_id=thing_name, **options
    )


def sas_token(resource: str, key: Secret, expiry: int, policy: str | None = None) -> Secret:
    """An Azure shared access signature for ``resource``, valid until ``expiry`` (epoch s).

    The signature is HMAC-SHA256 with the base64-decoded key over the URL-encoded
    resource URI, a newline and the expiry.
    """
    try:
        secret_key = base64.b64decode(key.reveal(), validate=True)
    except ValueError:
        raise ConfigurationError("the shared access key is not valid base64") from None
    encoded = quote_plus(resource)
    message = f"{encoded}\n{expiry}".encode()
    signature = base64.b64encode(hmac.new(secret_key, message, hashlib.sha256).digest())
    fields = {"sr": encoded, "sig": signature.decode(), "se": str(expiry)}
    if policy:
        fields["skn"] = policy
    # sr is encoded once already, like the signed string; urlencode encodes the rest.
    query = f"sr={encoded}&" + urlencode({k: v for k, v in fields.items() if k != "sr"})
    return Secret("SharedAccessSignature " + query, "Azure SAS token")


def _parse_connection_string(connection_string: Secret) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in connection_string.reveal().split(";"):
        name, sep, value = item.partition("=")
        if sep:
            parts[name.strip()] = value.strip()
    missing = [k for k in ("HostName", "DeviceId") if k not in parts]
    if missing:
        raise ConfigurationError(
            f"the Azure connection string has no {' or '.join(missing)} "
            "(expected HostName=...;DeviceId=...;SharedAccessKey=...)"
        )
    return parts


def azure_iot_hub(
    connection_string: Secret | None = None,
    *,
    hostname: str | None = None,
    device_id: str | None = None,
    cert: PathLike | None = None,
    key: PathLike | None = None,
    ca: PathLike | None = None,
    port: int = 8883,
    token_ttl: float = 3600.0,
    api_version: str = AZURE_API_VERSION,
    **options: Any,
) -> MqttSink:
    """A sink to an Azure IoT Hub device.

    Either ``connection_string=bf.secret("env:AZURE_DEVICE_CONNECTION_STRING")`` (the
    device's ``HostName=...;DeviceId=...;SharedAccessKey=...``), or X.509:
    ``hostname=``, ``device_id=``, ``cert=``, ``key=``.

    Parameters
    ----------
    token_ttl
        Lifetime of each SAS token, in seconds; the sink reconnects with a new one when
        80 % of it has passed (nothing is lost: rows wait in the spool).
    ca
        CA file for the hub's certificate; None uses the system's trust store.
    **options
        Passed on to :class:`~bifrost.cloud.MqttSink` (``spool=``, ``payload=`` ...).
    """
    password: Callable[[], tuple[Secret, float]] | None = None
    if connection_string is not None:
        if not isinstance(connection_string, Secret):
            raise ConfigurationError(
                "pass the connection string as a Secret, e.g. "
                "bf.secret('env:AZURE_DEVICE_CONNECTION_STRING')"
            )
        parts = _parse_connection_string(connection_string)
        hostname, device_id = parts["HostName"], parts["DeviceId"]
        if "SharedAccessKey" not in parts:
            raise ConfigurationError("the Azure connection string has no SharedAccessKey")
        shared_key = Secret(parts["SharedAccessKey"], "Azure shared access key")
        resource = f"{hostname}/devices/{device_id}"

        def password() -> tuple[Secret, float]:
            expiry = int(time.time() + token_ttl)
            return sas_token(resource, shared_key, expiry), float(expiry)

    elif cert is None or key is None or not hostname or not device_id:
        raise ConfigurationError(
            "azure_iot_hub needs connection_string=bf.secret(...), or hostname=, "
            "device_id=, cert= and key= for an X.509 device"
        )
    assert hostname is not None
    assert device_id is not None
    options.setdefault("topic", f"devices/{device_id}/messages/events/")
    options.setdefault("protocol", "3.1.1")
    return MqttSink(
        f"mqtts://{hostname}:{port}",
        tls=Tls(ca=ca, cert=cert, key=key),
        client_id=device_id,
        username=f"{hostname}/{device_id}/?api-version={api_version}",
        password=password,
        device=options.pop("device", device_id),
        **options,
    )


def google_iot(*args: Any, **kwargs: Any) -> MqttSink:
    """Google Cloud IoT Core no longer exists: this raises, pointing to the alternatives."""
    raise ConfigurationError(
        "Google Cloud IoT Core was shut down on 16 August 2023 and has no MQTT endpoint "
        "any more; publish to your own broker (or a Google partner's) with the generic "
        "sink: bf.cloud.MqttSink('mqtts://broker.example.com:8883', tls=bf.cloud.Tls(...), "
        "username=..., password=bf.secret(...))"
    )
