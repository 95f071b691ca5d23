"""``bifrost convert`` and ``bifrost publish``: recordings after the fact.

``convert`` rewrites a recording in another format (Parquet, Zarr, NetCDF; CSV as an
export). ``publish`` sends a recording's samples to an MQTT broker through a
bifrost-cloud sink, marked historical, through the sink's disk spool.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bifrost.cli import output
from bifrost.exceptions import ConfigurationError

if TYPE_CHECKING:
    import bifrost as bf

__all__ = ["convert", "publish", "write_csv"]

_CSV = (".csv",)


def convert(
    source: Annotated[Path, typer.Argument(help="A recording: .parquet, .zarr or .nc.")],
    target: Annotated[Path, typer.Argument(help="The new file: .parquet, .zarr, .nc or .csv.")],
    force: Annotated[bool, typer.Option("--force", help="Replace TARGET if it exists.")] = False,
) -> None:
    """Convert a recording between Parquet, Zarr and NetCDF, or export it as CSV."""
    import bifrost as bf

    if source.suffix.lower() in _CSV:
        raise ConfigurationError(
            f"{source}: CSV is an export (no tag table, types or session metadata), not a "
            "recording bifrost reads back; convert from the .parquet, .zarr or .nc file"
        )
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists; pass --force to replace it")
    recording = bf.open_recording(source)
    if target.suffix.lower() in _CSV:
        write_csv(recording, target)
        written = str(target)
    else:
        written = recording.save(target)
    output.out.print(
        f"{len(recording)} samples of {len(recording.names)} tags: {source} -> {written}",
        markup=False,
    )


def write_csv(recording: bf.Recording, path: Path) -> None:
    """Wide CSV: UTC ISO-8601 ``time``, then per tag its value and ``<tag>.quality``."""
    frame = recording.to_pandas()
    quality = recording.quality_frame()
    columns = {}
    for name in recording.names:
        columns[name] = frame[name]
        columns[f"{name}.quality"] = quality[name].astype(str)
    import pandas as pd

    wide = pd.DataFrame(columns, index=frame.index)
    wide.index = wide.index.map(lambda t: t.isoformat())
    wide.index.name = "time"
    wide.to_csv(path)


def publish(
    source: Annotated[Path, typer.Argument(help="A recording: .parquet, .zarr or .nc.")],
    broker: Annotated[str, typer.Argument(help="mqtt://HOST:PORT (mqtts:// for TLS).")],
    topic: Annotated[
        str, typer.Option("--topic", help="Topic template: {device}, {tag}.")
    ] = "plant/{device}/{tag}",
    payload: Annotated[str, typer.Option("--payload", help="json or sparkplug.")] = "json",
    qos: Annotated[int, typer.Option("--qos", help="MQTT QoS 0, 1 or 2.")] = 1,
    spool: Annotated[
        Path, typer.Option("--spool", help="Spool folder (store and forward).")
    ] = Path("spool"),
    device: Annotated[
        str | None, typer.Option("--device", help="Device name in topics.", show_default=False)
    ] = None,
    group: Annotated[str, typer.Option("--group", help="Sparkplug group id.")] = "plant",
    node: Annotated[str, typer.Option("--node", help="Sparkplug edge node id.")] = "edge1",
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the broker's acknowledgements.")
    ] = 30.0,
) -> None:
    """Publish a recording to an MQTT broker (bifrost-cloud), marked historical."""
    import bifrost as bf

    recording = bf.open_recording(source)
    try:
        from bifrost.cloud.sinks import MqttSink
    except ImportError as exc:
        from bifrost.exceptions import MissingDependency

        if isinstance(exc, MissingDependency):
            raise
        raise MissingDependency(
            f"bifrost publish needs bifrost-cloud ({exc}): pip install bifrost-cloud"
        ) from None
    options = {"group": group, "node": node} if payload == "sparkplug" else {}
    sink = MqttSink(broker, topic=topic, payload=payload, qos=qos, spool=spool, **options)  # type: ignore[arg-type]
    try:
        rows = recording.publish(sink, device=device)
        delivered = sink.flush(timeout=wait)
    finally:
        sink.close()
    stats = sink.stats
    state = "all acknowledged" if delivered else f"not all acknowledged within {wait:g} s"
    output.out.print(
        f"{rows} rows of {source} -> {broker} ({state}; published {stats.published}, "
        f"dropped {stats.dropped})",
        markup=False,
    )
    if not delivered:
        raise bf.ConnectionError(
            f"the broker at {broker} did not acknowledge every row within {wait:g} s; "
            f"they stay in {spool} and go out on the next publish"
        )
