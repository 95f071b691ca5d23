"""OPC UA through asyncua's client (the ``opcua`` extra).

Reads are one Read service call for all the plan's nodes (split only at the server's
MaxNodesPerRead); browse paths are translated once per plan and connection with one
TranslateBrowsePathsToNodeIds call, and cached. Values are decoded into typed columns
per variant type; arrays stay NumPy arrays (in an object column). A ReadResponse is
decoded from its bytes (``wire``), not into one asyncua object per value, and its count
of DataValues must equal its request's.

Security is explicit: ``security="None"`` must be asked for; otherwise a policy and mode
(``"Basic256Sha256,SignAndEncrypt"``) with a client certificate and key. The server's
certificate is refused unless it matches ``server_certificate=`` (a file), or the user
passes ``trust_server=True`` (or the certificate's SHA-256 fingerprint). Passwords are
:class:`bifrost.Secret` objects from the moment they are given; they never appear in a
repr, a log record or an error message.

Subscriptions use asyncua's low-level session API: one CreateMonitoredItems call for all
items and one :class:`ReadResult` per publish response (more than one only when the
server queued several values of an item), so the recorder's rows keep every value.

Registered under the ``bifrost.protocols`` entry points for ``opc.tcp://``.
"""

from typing import Any

from bifrost.protocols.opcua.codec import OpcUaReadResult
from bifrost.protocols.opcua.driver import OpcUaDriver
from bifrost.protocols.opcua.options import OpcUaOptions
from bifrost.protocols.opcua.status import quality_of

__all__ = ["OpcUaDriver", "OpcUaOptions", "OpcUaReadResult", "create_driver", "quality_of"]


def create_driver(url: str, **options: Any) -> OpcUaDriver:
    """The entry point's factory: an OPC UA driver for ``url`` (not connected)."""
    return OpcUaDriver(OpcUaOptions.from_url(url, **options))
