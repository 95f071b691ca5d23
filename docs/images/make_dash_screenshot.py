"""Regenerate docs/images/dash.svg and dash.png: the dashboard on the simulated plant.

Runs ``bifrost dash``'s app headless (Textual's test harness) for a few seconds against
the simulated plant over Modbus TCP, steps the reactor's setpoint so the trend shows the
temperature loop answering, starts a recording, and exports the screen::

    .venv/bin/python docs/images/make_dash_screenshot.py [--out docs/images]

The SVG is Textual's own export; cairosvg turns it into the PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import bifrost as bf
from bifrost.cli.dash.app import DashApp

TAGS = ["reactor.temperature", "reactor.setpoint", "reactor.heater", "tank.inflow", "line.state"]
SIZE = (130, 36)


async def capture(plant: bf.sim.Plant, out: Path, record_dir: Path) -> Path:
    """Run the app headless, drive it like a user, and save its screen as SVG."""
    plc = plant.connect("modbus", writable=True)
    app = DashApp(plc, TAGS, writable=True, record_dir=record_dir, interval=0.1)
    svg = out / "dash.svg"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(2.0)
        await asyncio.to_thread(plc.write, {"reactor.setpoint": 75.0})
        await pilot.press("r")  # the status bar shows the recording
        await pilot.pause(8.0)
        app.save_screenshot(filename=svg.name, path=str(out))
        await pilot.press("q")
    return svg


def main() -> None:
    """Write dash.svg and dash.png into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    import cairosvg  # type: ignore[import-untyped]  # a dev dependency: SVG to PNG, no browser

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    here = Path.cwd()
    with bf.sim.Plant(seed=1) as plant, tempfile.TemporaryDirectory() as scratch:
        plant.serve(modbus=0)
        os.chdir(scratch)  # the status bar shows the recording's file name, not a temp path
        try:
            svg = asyncio.run(capture(plant, out, Path()))
        finally:
            os.chdir(here)
    png = svg.with_suffix(".png")
    cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=1600)
    print(f"wrote {svg} and {png}")


if __name__ == "__main__":
    main()
