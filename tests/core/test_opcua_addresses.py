"""The OPC UA address grammar: NodeIds and browse paths, with error positions."""

from __future__ import annotations

import uuid

import pytest

from bifrost.exceptions import AddressError, ArgumentTypeError
from bifrost.protocols.opcua.address import (
    BrowsePath,
    NodeIdAddress,
    is_opcua_address,
    parse_opcua_address,
)

ROUND_TRIP = [
    "ns=2;s=Plant.Tank.Level",
    "ns=2;i=1001",
    "i=2258",
    "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a",
    "ns=1;b=M/RbKBsRVkePCePcx24oRA==",
    "s=with;semicolon=and spaces",
    "/Objects/2:Plant/2:Tank/2:Level",
    "/Objects/Server",
    "/Objects/2:A&/B/3:x&:y&&z",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text: str) -> None:
    assert str(parse_opcua_address(text)) == text
    assert is_opcua_address(text)


def test_parsed_fields() -> None:
    assert parse_opcua_address("ns=2;s=Plant.Tank.Level") == NodeIdAddress(
        2, "s", "Plant.Tank.Level"
    )
    assert parse_opcua_address("i=2258") == NodeIdAddress(0, "i", 2258)
    guid = parse_opcua_address("ns=3;g=09087E75-8E5E-499B-954F-F2A9603DB28A")
    assert guid == NodeIdAddress(3, "g", uuid.UUID("09087e75-8e5e-499b-954f-f2a9603db28a"))
    assert parse_opcua_address("ns=1;b=AAE=") == NodeIdAddress(1, "b", b"\x00\x01")
    assert parse_opcua_address("/Objects/2:Plant/2:A&/B") == BrowsePath(
        ((0, "Objects"), (2, "Plant"), (2, "A/B"))
    )


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("ns=x;i=1", 3),
        ("ns=2", 4),
        ("ns=70000;i=1", 3),
        ("ns=2;q=1", 5),
        ("ns=2;i=abc", 7),
        ("ns=2;i=4294967296", 7),
        ("ns=2;s=", 7),
        ("ns=2;g=not-a-guid", 7),
        ("ns=2;b=***", 7),
        ("/Objects//Level", 9),
        ("/Objects/", 8),
        ("/x:Tank", 1),
        ("/Objects/2:", 9),
        ("/Objects/A&", 10),
        ("tank.level", 0),
        ("", 0),
    ],
)
def test_errors_name_the_position(text: str, position: int) -> None:
    with pytest.raises(AddressError) as info:
        parse_opcua_address(text)
    assert info.value.position == position
    assert info.value.address == text
    assert info.value.protocol == "OPC UA"


def test_tag_names_are_not_addresses() -> None:
    assert not is_opcua_address("tank.level")
    assert not is_opcua_address("hr:0:float32")
    assert is_opcua_address("NS=2;s=x")


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("ns=2;s=A\ud800", 8, "lone surrogate"),
        ("/Objects/2:\udfff", 11, "lone surrogate"),
        ("/Objects/32768:Tank", 9, "0-32767"),
        ("ns=" + "9" * 5000 + ";i=1", 3, "0-65535"),
        ("i=" + "9" * 5000, 2, "0 to 4294967295"),
        ("ns=\u0663;i=1", 3, "must be a number"),
    ],
)
def test_input_that_cannot_be_sent(text: str, position: int, fragment: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_opcua_address(text)
    assert info.value.position == position
    assert fragment in info.value.reason


def test_high_namespaces_are_fine_in_node_ids() -> None:
    assert parse_opcua_address("ns=40000;s=Tank") == NodeIdAddress(40000, "s", "Tank")


def test_non_strings_are_argument_type_errors() -> None:
    with pytest.raises(ArgumentTypeError, match="must be a string"):
        parse_opcua_address(None)  # type: ignore[arg-type]
