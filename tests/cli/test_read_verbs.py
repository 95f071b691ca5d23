"""read, info, explain, browse and --help through the real script, over every protocol."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from cli_support import PROTOCOLS, CliPlant, bifrost

TAGS = ["tank.level", "reactor.setpoint", "line.counter", "tank.high_alarm"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_read_json_matches_a_connection_read(cli_plant: CliPlant, protocol: str):
    done = bifrost("read", *cli_plant.args(protocol), *TAGS, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    with cli_plant.connect(protocol) as plc:
        expected = plc.read(TAGS)
    assert [r["tag"] for r in rows] == TAGS
    for row in rows:
        want = expected.loc[row["tag"]]
        assert row["value"] == want["value"]  # the plant is frozen: the same number
        assert row["quality"] == str(want["quality"]) == "good"
        assert row["unit"] == want["unit"]
        assert row["address"] == want["address"]
        stamp = pd.Timestamp(row["timestamp"])
        assert stamp.tzinfo is not None
        assert stamp.utcoffset() == pd.Timedelta(0)  # ISO-8601 in UTC


def test_read_csv_and_plain_table(cli_plant: CliPlant):
    done = bifrost("read", *cli_plant.args("modbus"), "tank.level", "line.counter", "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    with cli_plant.connect("modbus") as plc:
        expected = plc.read(["tank.level", "line.counter"])
    assert [r["tag"] for r in rows] == ["tank.level", "line.counter"]
    assert float(rows[0]["value"]) == expected.loc["tank.level", "value"]
    assert int(rows[1]["value"]) == expected.loc["line.counter", "value"]
    # Not a terminal, and NO_COLOR: plain text, no escape codes, no box lines.
    for env in ({}, {"NO_COLOR": "1"}):
        table = bifrost("read", *cli_plant.args("modbus"), "tank.level", **env)
        assert table.returncode == 0, table.stderr
        assert "\x1b[" not in table.stdout
        assert "━" not in table.stdout
        header, row = table.stdout.splitlines()[:2]
        assert header.split()[:3] == ["tag", "value", "quality"]
        assert row.split()[0] == "tank.level"
    both = bifrost("read", *cli_plant.args("modbus"), "tank.level", "--csv", "--json")
    assert both.returncode == 2
    assert "one of --json and --csv" in both.stderr


def test_read_without_tags_reads_the_whole_table(cli_plant: CliPlant):
    done = bifrost("read", *cli_plant.args("s7"), "--json")
    assert done.returncode == 0, done.stderr
    names = [r["tag"] for r in json.loads(done.stdout)]
    with cli_plant.connect("s7") as plc:
        assert names == plc.tags.names
    nothing = bifrost("read", cli_plant.urls["modbus"])
    assert nothing.returncode == 2
    assert "--tags FILE" in nothing.stderr


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_info_and_explain(cli_plant: CliPlant, protocol: str):
    info = bifrost("info", *cli_plant.args(protocol), "--json")
    assert info.returncode == 0, info.stderr
    facts = json.loads(info.stdout)
    with cli_plant.connect(protocol) as plc:
        expected_info = plc.info()
        plan = plc.explain(TAGS)
    assert facts["protocol"] == expected_info["protocol"] == protocol
    assert facts["endpoint"] == expected_info["endpoint"]
    explained = bifrost("explain", *cli_plant.args(protocol), *TAGS, "--json")
    assert explained.returncode == 0, explained.stderr
    requests = json.loads(explained.stdout)
    assert len(requests) == len(plan)
    assert [r["request"] for r in requests] == plan["request"].tolist()


def test_browse_tree_json_and_depth(cli_plant: CliPlant):
    tree = bifrost("browse", *cli_plant.args("modbus"))
    assert tree.returncode == 0, tree.stderr
    assert "tank" in tree.stdout
    assert "level  address=hr:0:float32" in tree.stdout
    listed = bifrost("browse", *cli_plant.args("s7"), "--json")
    assert listed.returncode == 0, listed.stderr
    with cli_plant.connect("s7") as plc:
        assert [r["name"] for r in json.loads(listed.stdout)] == plc.tags.names
    deep = bifrost("browse", *cli_plant.args("opcua"), "/Objects/2:Plant", "--depth", "2", "--json")
    assert deep.returncode == 0, deep.stderr
    nodes = json.loads(deep.stdout)
    assert {n["depth"] for n in nodes} == {1, 2}
    assert any(n["browse_path"].endswith("2:Tank/2:Level") for n in nodes)


def test_help_lists_every_verb_and_the_exit_codes():
    done = bifrost("--help")
    assert done.returncode == 0, done.stderr
    verbs = "read write browse info explain record watch probe dash sim demo convert publish"
    for verb in [*verbs.split(), "gateway", "tags", "profiles"]:
        assert f"\n  {verb} " in done.stdout, verb
    text = " ".join(done.stdout.split())
    for code in ("2 bad address", "3 connection", "4 timeout", "5 protocol error", "6 write"):
        assert code in text
    assert "--install-completion" in done.stdout
    version = bifrost("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("bifrost ")
