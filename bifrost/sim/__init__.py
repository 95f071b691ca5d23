"""A simulated plant to try bifrost without hardware: ``bifrost.sim.Plant``.

>>> import bifrost as bf
>>> with bf.sim.Plant(seed=1) as plant:  # doctest: +SKIP
...     plant.serve(modbus=0)
...     plc = plant.connect("modbus")
"""

from bifrost.sim.plant import Plant
from bifrost.sim.process import LINE_FAULT, LINE_RUNNING, LINE_STOPPED, ProcessConfig

__all__ = ["LINE_FAULT", "LINE_RUNNING", "LINE_STOPPED", "Plant", "ProcessConfig"]
