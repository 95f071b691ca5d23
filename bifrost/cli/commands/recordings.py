"""``bifrost convert`` and ``bifrost publish``: recordings after the fact.

``convert`` rewrites a recording in another format (Parquet, Zarr, NetCDF, CSV; a CSV
holds times, values and qualities only, see :mod:`bifrost.recording.csvfile`).
``publish`` sends a recording's samples to an MQTT broker through a bifrost-cloud sink,
marked historical, through the sink's disk spool.
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
    source: Annotated[Path, typer.Argument(help="A recording: .parquet, .zarr, .nc or .csv.")],
    target: Annotated[Path, typer.Argument(help="The new file: .parquet, .zarr, .nc or .csv.")],
    force: Annotated[bool, typer.Option("--force", help="Replace TARGET if it exists.")] = False,
    dtype: Annotated[
        list[str] | None,
        typer.Option(
            "--dtype",
            help="TAG=TYPE for a CSV column whose cells do not tell its type (repeatable).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Convert a recording between Parquet, Zarr, NetCDF and CSV."""
    import bifrost as bf

    reads_csv = source.suffix.lower() in _CSV
    if dtype and not reads_csv:
        raise ConfigurationError(
            f"--dtype is for CSV sources; {source} carries its tags' data types itself"
        )
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists; pass --force to replace it")
    if reads_csv:
        from bifrost.recording.csvfile import read_csv

        recording = read_csv(source, dtypes=_dtypes(dtype or []))
    else:
        recording = bf.open_recording(source)
    if reads_csv or target.suffix.lower() in _CSV:
        from bifrost.recording.csvfile import LOST_IN_CSV

        output.errors.print(f"warning: {LOST_IN_CSV}", markup=False, highlight=False)
    written = (
        write_csv(recording, target) if target.suffix.lower() in _CSV else recording.save(target)
    )
    output.out.print(
        f"{len(recording)} samples of {len(recording.names)} tags: {source} -> {written}",
        markup=False,
    )


def _dtypes(options: list[str]) -> dict[str, str]:
    """``--dtype TAG=TYPE`` options as a mapping (a tag name may itself hold ``=``)."""
    dtypes = {}
    for option in options:
        name, sep, kind = option.rpartition("=")
        if not sep or not name or not kind:
            raise ConfigurationError(
                f"--dtype {option!r}: write TAG=TYPE, e.g. --dtype recipe=string"
            )
        dtypes[name] = kind
    return dtypes


def write_csv(recording: bf.Recording, path: Path) -> str:
    """Wide CSV: UTC ISO-8601 ``time``, then per tag its value and ``<tag>.quality``."""
    from bifrost.recording.csvfile import write_csv as write

    return write(recording, path)


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
