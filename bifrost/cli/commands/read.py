"""``bifrost read``, ``info`` and ``explain``: one read, the device's identity, the plan."""

from __future__ import annotations

from bifrost.cli import output
from bifrost.cli.target import AsCsv, AsJson, Options, TagArgs, TagFile, TargetArg, connect, resolve
from bifrost.exceptions import ConfigurationError

__all__ = ["explain", "info", "read", "tag_list"]


def tag_list(tags: list[str] | None, table_names: list[str], command: str) -> list[str]:
    """The tags given, or every tag of the table; an error when there are neither."""
    if tags:
        return tags
    if table_names:
        return table_names
    raise ConfigurationError(
        f"bifrost {command}: name tags (e.g. hr:0:float32) or give a tag table "
        "with --tags FILE (or a profile that has one)"
    )


def read(
    target: TargetArg,
    tags: TagArgs = None,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Read tags once and print value, quality, timestamp, unit and address per tag."""
    fmt = output.choose_format(as_json, as_csv)
    with connect(resolve(target, tag_file, option)) as plc:
        frame = plc.read(tag_list(tags, plc.tags.names, "read"))
    output.emit_frame(frame, fmt)


def info(
    target: TargetArg,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Identify the device: vendor, model, firmware, S7 CPU info, OPC UA BuildInfo."""
    fmt = output.choose_format(as_json, as_csv)
    with connect(resolve(target, tag_file, option)) as plc:
        facts = plc.info()
    if fmt == "json":
        import json

        print(json.dumps(output.jsonable(facts)))
        return
    output.emit_records([{"key": k, "value": v} for k, v in facts.items()], fmt)


def explain(
    target: TargetArg,
    tags: TagArgs = None,
    tag_file: TagFile = None,
    option: Options = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Show the requests a read of the tags would send (grouped, merged, split); reads nothing."""
    fmt = output.choose_format(as_json, as_csv)
    with connect(resolve(target, tag_file, option)) as plc:
        frame = plc.explain(tag_list(tags, plc.tags.names, "explain"))
    output.emit_frame(frame, fmt)
