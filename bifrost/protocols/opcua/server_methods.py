"""The simulated plant's OPC UA methods: ``Line.Reset()`` and ``Tank.SetLevel(Level)``.

A call is handed to the plant like a client write (``commands`` is the binding's
write record): the plant applies it before its next step. asyncua's server passes
whatever arguments a client sends, so each method checks its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from asyncua import ua as _ua
from asyncua.server.server import Server

__all__ = ["TANK_HEIGHT", "add_plant_methods"]

ua: Any = _ua
TANK_HEIGHT = 5.0  # m, the process model's default tank_height


def _argument(name: str, vtype: Any, description: str) -> Any:
    argument = ua.Argument()
    argument.Name = name
    argument.DataType = ua.NodeId(int(vtype))
    argument.ValueRank = ua.ValueRank.Scalar
    argument.Description = ua.LocalizedText(description)
    return argument


async def add_plant_methods(
    server: Server,
    command: Callable[[str, Any], None],
    counter: Callable[[], int],
) -> None:
    """Add the methods below ``Plant/Line`` and ``Plant/Tank``.

    ``command(name, value)`` records what the plant applies next step (names in
    :data:`bifrost.sim.process.COMMANDS`); ``counter()`` is the served line counter.
    """

    async def reset(parent: Any, *args: Any) -> Any:
        if args:
            return ua.StatusCode(ua.StatusCodes.BadTooManyArguments)
        before = counter()
        command("line.reset", True)
        return [ua.Variant(before, ua.VariantType.UInt32)]

    async def set_level(parent: Any, *args: Any) -> Any:
        if len(args) != 1:
            code = "BadArgumentsMissing" if not args else "BadTooManyArguments"
            return ua.StatusCode(getattr(ua.StatusCodes, code))
        (level,) = args
        if level.VariantType is not ua.VariantType.Double:
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
        if not (math.isfinite(level.Value) and 0.0 <= level.Value <= TANK_HEIGHT):
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange)
        command("tank.set_level", float(level.Value))
        return []

    line = server.get_node(ua.NodeId("Plant.Line", 2))
    reset_method = await line.add_method(
        ua.NodeId("Plant.Line.Reset", 2),
        ua.QualifiedName("Reset", 2),
        reset,
        [],
        [_argument("Counter", ua.VariantType.UInt32, "Parts counted before the reset")],
    )
    tank = server.get_node(ua.NodeId("Plant.Tank", 2))
    set_level_method = await tank.add_method(
        ua.NodeId("Plant.Tank.SetLevel", 2),
        ua.QualifiedName("SetLevel", 2),
        set_level,
        [_argument("Level", ua.VariantType.Double, f"New tank level, 0-{TANK_HEIGHT:g} m")],
        [],
    )
    for method, text in (
        (reset_method, "Zero the line's part counter; answers the count before the reset"),
        (set_level_method, f"Set the tank level (0-{TANK_HEIGHT:g} m), e.g. to test the alarm"),
    ):
        await method.write_attribute(
            ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(text)))
        )
