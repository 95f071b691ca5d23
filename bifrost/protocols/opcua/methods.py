"""Method calls: the method found below its object, its arguments checked before the Call.

The method's InputArguments property says how many arguments it takes and of which
type; bifrost converts each argument to that type (the rules of writes,
``codec.to_variant``) and refuses a wrong count or type before anything is sent. asyncua's
own server checks neither, so without this a bad call reaches the device's code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bifrost.exceptions import (
    ArgumentTypeError,
    ProtocolError,
    ValueOutOfRange,
    WriteNotAllowed,
)
from bifrost.protocols.opcua.codec import NodeMeta, plain_value, to_variant
from bifrost.protocols.opcua.nodes import TYPE_NAMES, local_node_id, plain, read_value_id
from bifrost.protocols.opcua.status import BAD_VALUE, status_name

__all__ = ["MethodSignature", "call_result", "encode_arguments", "find_child", "signature_of"]

_Call = Callable[[str, Any], Awaitable[Any]]
_ARGUMENT_CODES = {0x80760000, 0x80E50000, 0x80AB0000}  # Missing, TooMany, InvalidArgument
_REFUSED = {0x801F0000, 0x81110000}  # BadUserAccessDenied, BadNotExecutable


@dataclass(frozen=True, slots=True)
class MethodSignature:
    """A method's node, its object's node, and its input arguments (name, type, rank)."""

    label: str  # "/Objects/2:Plant/2:Line 2:Reset", for messages
    object_id: Any
    method_id: Any
    names: tuple[str, ...]
    types: tuple[NodeMeta, ...]

    def describe(self) -> str:
        """``Reset()``, ``SetLevel(Level: Double)``: for messages."""
        pairs = zip(self.names, self.types, strict=True)
        arguments = ", ".join(f"{name}: {meta.type_name}" for name, meta in pairs)
        return f"({arguments})"


async def find_child(
    ua: Any, call: _Call, client: Any, start: Any, elements: Sequence[tuple[int, str]]
) -> Any:
    """The node below ``start`` along ``elements``, or the bad StatusCode (an int)."""
    path = ua.BrowsePath()
    path.StartingNode = start
    path.RelativePath = ua.RelativePath()
    for namespace, name in elements:
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        element.IsInverse = False
        element.IncludeSubtypes = True
        element.TargetName = ua.QualifiedName(name, namespace)
        path.RelativePath.Elements.append(element)
    (result,) = await call(
        "translating a browse path", client.uaclient.translate_browsepaths_to_nodeids([path])
    )
    code = result.StatusCode.value if result.StatusCode is not None else 0
    if code >> 30 >= 2 or not result.Targets:
        return code or 0x806F0000  # BadNoMatch
    return local_node_id(ua, result.Targets[0].TargetId)


async def signature_of(
    ua: Any, call: _Call, client: Any, label: str, object_id: Any, method_id: Any
) -> MethodSignature:
    """Read the method's NodeClass and InputArguments (one Read call)."""
    arguments = await find_child(ua, call, client, method_id, [(0, "InputArguments")])
    params = ua.ReadParameters()
    params.NodesToRead = [read_value_id(ua, method_id, ua.AttributeIds.NodeClass)]
    if not isinstance(arguments, int):
        params.NodesToRead.append(read_value_id(ua, arguments))
    values = await call("reading a method's arguments", client.uaclient.read(params))
    node_class = plain(values[0])
    if node_class is None or int(node_class) != int(ua.NodeClass.Method):
        raise ProtocolError(
            f"{label} is not a method on the OPC UA server (NodeClass {node_class})"
        )
    described = list(plain(values[1]) or []) if len(values) > 1 else []
    names = []
    types = []
    for k, argument in enumerate(described):
        data_type = argument.DataType
        type_id = None
        type_name = str(data_type)
        if data_type.NamespaceIndex == 0 and isinstance(data_type.Identifier, int):
            type_id = data_type.Identifier
            type_name = TYPE_NAMES.get(type_id, f"i={type_id}")
        names.append(argument.Name or f"argument {k + 1}")
        types.append(NodeMeta(type_id, type_name, int(argument.ValueRank), 0, 0))
    return MethodSignature(label, object_id, method_id, tuple(names), tuple(types))


def encode_arguments(ua: Any, signature: MethodSignature, args: Sequence[Any]) -> list[Any]:
    """The arguments as the method's variant types; a wrong count or type raises (no I/O)."""
    expected = len(signature.types)
    if len(args) != expected:
        raise ArgumentTypeError(
            f"method {signature.label} takes {expected} argument{'s' if expected != 1 else ''} "
            f"{signature.describe()}; got {len(args)}"
        )
    variants = []
    for name, meta, given in zip(signature.names, signature.types, args, strict=True):
        what = f"argument {name!r} of method {signature.label}"
        value = given.tolist() if isinstance(given, np.ndarray) else given
        if isinstance(value, list | tuple):
            checked: Any = [plain_value(what, v) for v in value]
        else:
            checked = plain_value(what, value)
        variants.append(to_variant(ua, what, meta, checked))
    return variants


def call_result(signature: MethodSignature, result: Any, endpoint: str) -> Any:
    """The outputs of a CallMethodResult: None, the one output, or a tuple of them."""
    code = result.StatusCode.value if result.StatusCode is not None else 0
    for name, status in zip(signature.names, result.InputArgumentResults or [], strict=False):
        if status.value >> 30 >= 2:
            raise ValueOutOfRange(
                f"the OPC UA server at {endpoint} refused argument {name!r} of method "
                f"{signature.label}: {status_name(status.value)}"
            )
    if code >> 30 >= 2:
        text = f"the OPC UA server at {endpoint} refused the call of {signature.label}: "
        text += status_name(code)
        base = code & 0xFFFF0000
        if base in _ARGUMENT_CODES or base in BAD_VALUE:
            raise ValueOutOfRange(f"{text} (arguments {signature.describe()})")
        if base in _REFUSED:
            raise WriteNotAllowed(text)
        raise ProtocolError(text, code=code)
    outputs = [_plain_output(v.Value) for v in result.OutputArguments or []]
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _plain_output(value: Any) -> Any:
    return np.asarray(value) if isinstance(value, list) else value
