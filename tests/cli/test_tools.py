"""Profiles, shell completion, tags, probe, dash and publish through the real script."""

from __future__ import annotations

import json
import shutil
import struct
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_support import CliPlant, bifrost
from modbus_server import ModbusTestServer

import bifrost as bf

SECRET = "s3cr3t-never-printed"


def _profiles(tmp_path: Path, cli_plant: CliPlant) -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            profiles:
              line1:
                url: {cli_plant.urls["modbus"]}
                tags: {cli_plant.tag_files["modbus"]}
                options: {{timeout: 2.0}}
              mixer:
                url: {cli_plant.urls["opcua"]}
                tags: {cli_plant.tag_files["opcua"]}
                options: {{security: None}}
                secrets: {{token: env:MIXER_TOKEN}}
            """
        )
    )
    return path


def test_profiles_read_list_check_and_complete(cli_plant: CliPlant, tmp_path: Path):
    path = _profiles(tmp_path, cli_plant)
    env = {"BIFROST_PROFILES": str(path), "MIXER_TOKEN": SECRET}
    done = bifrost("read", "@line1", "tank.level", "line.counter", "--json", **env)
    assert done.returncode == 0, done.stderr
    with cli_plant.connect("modbus") as plc:
        expected = plc.read(["tank.level", "line.counter"])
    assert [r["value"] for r in json.loads(done.stdout)] == expected["value"].tolist()
    flag = bifrost("--profiles", str(path), "read", "@line1", "tank.level")
    assert flag.returncode == 0, flag.stderr
    listed = bifrost("profiles", "list", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"@line1", "@mixer"}
    assert rows["@mixer"]["secrets"] == "token=env:MIXER_TOKEN"
    checked = bifrost("profiles", "check", **env)
    assert checked.returncode == 0, checked.stderr
    assert "2 profiles, all valid" in checked.stdout
    missing = bifrost("profiles", "check", BIFROST_PROFILES=str(path))
    assert missing.returncode == 2
    assert "MIXER_TOKEN" in missing.stderr
    unknown = bifrost("read", "@nowhere", "tank.level", **env)
    assert unknown.returncode == 2
    assert "@line1, @mixer" in unknown.stderr
    for run in (done, flag, listed, checked, missing, unknown):
        assert SECRET not in run.stdout + run.stderr
    # Shell completion through the script itself: profile names, then the profile's tags.
    complete = {"_BIFROST_COMPLETE": "complete_bash", **env}
    names = bifrost(**complete, COMP_WORDS="bifrost read @", COMP_CWORD="2")
    assert names.stdout.split() == ["@line1", "@mixer"]
    tags = bifrost(**complete, COMP_WORDS="bifrost read @line1 reactor.", COMP_CWORD="3")
    assert tags.stdout.split() == [n for n in plc.tags.names if n.startswith("reactor.")]
    file_words = f"bifrost watch URL -t {cli_plant.tag_files['s7']} tank.hi"
    from_file = bifrost(**complete, COMP_WORDS=file_words, COMP_CWORD="5")
    assert from_file.stdout.split() == ["tank.high_alarm"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("profiles:\n  a:\n    url: modbus://x\n    colour: red\n", ":4: profiles.a.colour"),
        ("profiles:\n  a:\n    tags: t.yaml\n", ":2: profiles.a.url: Field required"),
        (
            "profiles:\n  a:\n    url: modbus://x\n    options: {password: hunter2}\n",
            ":4: profiles.a.options: option 'password' is a credential",
        ),
        (
            "profiles:\n  a:\n    url: modbus://x\n    secrets: {password: hunter2}\n",
            ":4: profiles.a.secrets: secret 'password' must be a reference",
        ),
        ("profiles:\n  a: [\n", ":3: not valid YAML"),
    ],
)
def test_a_bad_profile_file_names_file_line_and_key(tmp_path: Path, text: str, where: str):
    path = tmp_path / "profiles.yaml"
    path.write_text(text)
    done = bifrost("profiles", "list", BIFROST_PROFILES=str(path))
    assert done.returncode == 2
    assert f"{path}{where}" in done.stderr
    assert "hunter2" not in done.stderr


def test_a_file_secret_reaches_the_connection_and_is_never_shown(tmp_path: Path):
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    assert bf.secret(f"file:{secret_file}").reveal() == SECRET
    assert SECRET not in repr(bf.secret(f"file:{secret_file}"))
    with pytest.raises(bf.ConfigurationError, match="cannot read the secret file"):
        bf.secret(f"file:{tmp_path / 'nothing'}")


def test_tags_check_and_convert_between_csv_and_yaml(cli_plant: CliPlant, tmp_path: Path):
    source = cli_plant.tag_files["modbus"]
    csv_path, yaml_path = tmp_path / "tags.csv", tmp_path / "tags.yaml"
    assert bifrost("tags", "convert", str(source), str(csv_path)).returncode == 0
    back = bifrost("tags", "convert", str(csv_path), str(yaml_path))
    assert back.returncode == 0, back.stderr
    assert bf.TagTable.load(yaml_path) == bf.TagTable.load(source)
    checked = bifrost("tags", "check", str(csv_path), "--protocol", "modbus")
    assert checked.returncode == 0, checked.stderr
    assert f"{len(bf.TagTable.load(source))} tags, valid" in checked.stdout
    # An S7 address in a Modbus table: the check names the tag.
    records = yaml.safe_load(yaml_path.read_text())
    records["tags"][1]["address"] = "DB1.DBD4:REAL"
    yaml_path.write_text(yaml.safe_dump(records))
    wrong = bifrost("tags", "check", str(yaml_path), "-p", "modbus")
    assert wrong.returncode == 2
    assert records["tags"][1]["name"] in wrong.stderr
    again = bifrost("tags", "convert", str(source), str(csv_path))
    assert again.returncode == 2
    assert "--force" in again.stderr


TELEGRAF = """\
[[inputs.modbus]]
  name = "Device"
  slave_id = 1
  controller = "tcp://localhost:502"
  configuration_type = "register"
  holding_registers = [
    { name = "power", byte_order = "CDAB", data_type = "FLOAT32-IEEE", address = [3,4]},
  ]
"""


def test_tags_convert_from_another_tool(tmp_path: Path):
    if not hasattr(bf.TagTable, "from_telegraf"):
        pytest.skip("this bifrost has no TagTable.from_telegraf")
    source, target = tmp_path / "telegraf.conf", tmp_path / "tags.yaml"
    source.write_text(TELEGRAF)
    done = bifrost("tags", "convert", str(source), str(target), "--from", "telegraf")
    assert done.returncode == 0, done.stderr
    table = bf.TagTable.load(target)
    assert [(t.name, t.address) for t in table] == [
        (t.name, t.address) for t in bf.TagTable.from_telegraf(source)
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[ModbusTestServer]:
    with ModbusTestServer() as running:
        yield running


def test_probe_finds_a_float_in_swapped_words(server: ModbusTestServer):
    high, low = struct.unpack(">HH", struct.pack(">f", 42.75))
    server.set("hr", 100, [7, low, high, 0x1234])  # 42.75 as float32, words swapped (CDAB)
    done = bifrost("probe", server.url, "hr:101", "--count", "2", "--expect", "42.75", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows[0]["address"] == "hr:101:float32:CDAB"
    assert rows[0]["match"] == "exact"
    assert rows[0]["value"] == 42.75
    assert all(r["match"] != "exact" for r in rows[1:])
    uint16 = {r["address"]: r["value"] for r in rows if r["type"] == "uint16"}
    assert uint16["hr:100:uint16"] == 7
    assert uint16["hr:103:uint16"] == 0x1234  # one register either side of the window
    table = bifrost("probe", server.url, "hr:101", "-n", "2", "-e", "42.75")
    assert table.returncode == 0, table.stderr
    assert "give 42.75 (±0.5 %): hr:101:float32:CDAB" in table.stdout
    bits = bifrost("probe", server.url, "co:3")
    assert bits.returncode == 2
    assert "single bit" in bits.stderr


def test_dash_connects_like_read_and_hands_over(
    cli_plant: CliPlant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    dash = pytest.importorskip("bifrost.cli.dash")
    from typer.testing import CliRunner

    from bifrost.cli import app

    seen: dict[str, object] = {}

    def fake_run(connection: bf.Connection, tags: list[str] | None, **kwargs: object) -> int:
        seen.update(kwargs)
        seen.update(url=connection.url, names=connection.tags.names, tags=tags)
        seen["connection_writable"] = connection.writable
        return 0

    monkeypatch.setattr(dash, "run", fake_run)
    path = _profiles(tmp_path, cli_plant)
    runner = CliRunner()
    args = ["--profiles", str(path), "dash", "@line1", "tank.level", "--record-dir", str(tmp_path)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    with cli_plant.connect("modbus") as plc:
        assert seen["url"] == plc.url
        assert seen["names"] == plc.tags.names  # the profile's tag table, attached
    assert seen["tags"] == ["tank.level"]
    assert seen["record_dir"] == tmp_path
    assert seen["writable"] is seen["connection_writable"] is False
    writable = runner.invoke(app, ["--profiles", str(path), "dash", "@line1", "--writable"])
    assert writable.exit_code == 0, writable.output
    assert seen["writable"] is seen["connection_writable"] is True
    assert seen["tags"] is None


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs Debian's mosquitto")
def test_publish_a_recording_to_a_broker(tmp_path: Path):
    from cloud.brokers import Mosquitto  # tests/cloud/brokers.py

    with bf.sim.Plant(seed=2, realtime=False) as plant, plant.connect("modbus") as plc:
        rec = plc.record(["tank.level"], interval="10ms", duration="0.1s")
    path = tmp_path / "run.parquet"
    rec.save(path)
    with Mosquitto(tmp_path / "broker") as broker:
        done = bifrost(
            "publish", str(path), broker.url, "--spool", str(tmp_path / "spool"), "--wait", "20"
        )
    assert done.returncode == 0, done.stderr
    assert f"{len(rec)} rows" in done.stdout
    assert "all acknowledged" in done.stdout
