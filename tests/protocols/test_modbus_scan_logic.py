"""The scanner's walk over random address maps, against a device simulated in memory.

A logic test (no socket): the simulated device answers as the reference server does,
with any layout of readable islands at least ``resolution`` wide, any batch limit and
each way of refusing a too-large read. The scan must find every island exactly, the
batch (or as much of it as the longest island can show), and stay within the halving
bound of ``test_modbus_scan``.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from modbus_reference_server import request_bound

from bifrost.exceptions import TimeoutError
from bifrost.protocols.modbus.pdu import Reply, Request
from bifrost.protocols.modbus.scan import scan_table

RESOLUTION = 8
LAST = 4095


@st.composite
def layouts(draw: st.DrawFn) -> list[tuple[int, int]]:
    islands, at = [], draw(st.integers(0, 300))
    while at <= LAST and len(islands) < 8:
        width = draw(st.integers(RESOLUTION, 400))
        islands.append((at, min(at + width - 1, LAST)))
        at += width + draw(st.integers(1, 900))
    return islands


def device(islands: list[tuple[int, int]], batch: int, oversize: str):
    async def ask(request: Request) -> Reply:
        last = request.address + request.count - 1
        if request.count > batch:
            if oversize == "silent":
                raise TimeoutError("no answer")
            return Reply(3 if oversize == "value" else 2)
        if not any(a <= request.address and last <= b for a, b in islands):
            return Reply(2)
        return Reply(None, b"\0\0" * request.count)

    return ask


@settings(deadline=None)
@given(
    islands=layouts(),
    batch=st.integers(1, 125),
    oversize=st.sampled_from(["value", "address", "silent"]),
)
def test_every_island_and_the_batch_are_found_within_the_bound(islands, batch, oversize):
    scan = asyncio.run(scan_table(device(islands, batch, oversize), 1, "hr", 0, LAST, RESOLUTION))
    assert scan.readable == islands
    longest = max((b - a + 1 for a, b in islands), default=0)
    assert scan.max_batch == min(batch, longest)
    # Known when a larger read was refused over readable addresses, or at the protocol's.
    assert scan.batch_limit_proven == (batch < longest or scan.max_batch == 125)
    if islands:
        bound = request_bound(islands, scan.max_batch, 125, RESOLUTION, LAST)
        assert scan.requests <= bound
