"""A simulated plant to try bifrost without hardware: ``bifrost.sim.Plant``.

>>> import bifrost as bf
>>> with bf.sim.Plant(seed=1) as plant:  # doctest: +SKIP
...     plant.serve(modbus=0)
...     plc = plant.connect("modbus")

A saved recording served the same way, with faults: ``bifrost.sim.replay(path, speed=2.0,
faults=[bifrost.sim.Dropout(start=5, end=8)])`` (:mod:`bifrost.sim.replay`).
"""

from bifrost.sim.faults import Dropout, Frozen, Noise, Slow
from bifrost.sim.plant import Plant
from bifrost.sim.process import LINE_FAULT, LINE_RUNNING, LINE_STOPPED, ProcessConfig
from bifrost.sim.replay import Replay, replay

__all__ = [
    "LINE_FAULT",
    "LINE_RUNNING",
    "LINE_STOPPED",
    "Dropout",
    "Frozen",
    "Noise",
    "Plant",
    "ProcessConfig",
    "Replay",
    "Slow",
    "replay",
]
