"""The ``%bifrost`` line magic and the ``%%bifrost tags`` cell magic.

Thin by design: each command is a method declared, with its arguments, by
``@COMMANDS.command(...)`` (see :mod:`~bifrost.jupyter.magics.registry`), which gives it
a parser and a real ``--help``; the method calls the public API (:func:`bifrost.connect`,
``Connection.read``, ``.record``...). Options are traitlets, so ``%config
BifrostMagics.default_interval = "500ms"`` works. Errors from bifrost are shown as one
short message with a hint instead of a traceback (``%config BifrostMagics.short_errors =
False`` brings tracebacks back); the cell still fails, so "Run all" stops there.
"""

from __future__ import annotations

import ast
import html
import shlex
import sys
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import HTML, display
from traitlets import Bool, Float, Integer, Unicode, observe

from bifrost._html import format_seconds, table_html
from bifrost.connection import Connection, RecordingInterrupted, connect
from bifrost.exceptions import BifrostError, ConfigurationError, MissingDependency
from bifrost.jupyter._text import plural
from bifrost.jupyter.magics.hints import (
    BifrostMagicError,
    NoSuchConnection,
    hint,
    protocol_of_url,
)
from bifrost.jupyter.magics.registry import CommandRegistry, arg
from bifrost.recording import Recording
from bifrost.tags import TagLike, TagTable

__all__ = ["COMMANDS", "BifrostMagics", "apply_nest_asyncio"]

COMMANDS = CommandRegistry("bifrost")
"""Every ``%bifrost`` command, declared on the methods of :class:`BifrostMagics`."""


@dataclass
class _Background:
    """A background recording started by ``%bifrost record``."""

    connection: str
    recording: Recording
    trend: Any = None


@dataclass
class _State:
    connections: dict[str, Connection] = field(default_factory=dict)
    recordings: dict[str, _Background] = field(default_factory=dict)
    plant: Any = None


def _show(obj: Any) -> None:
    display(obj)  # type: ignore[no-untyped-call]


def _html(text: str) -> Any:
    return HTML(text)  # type: ignore[no-untyped-call]


def _value(text: str) -> Any:
    """``75`` -> 75, ``true`` -> True, ``'abc'`` -> "abc", anything else stays text."""
    lowered = text.lower()
    if lowered in ("true", "on"):
        return True
    if lowered in ("false", "off"):
        return False
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@magics_class
class BifrostMagics(Magics):
    """``%bifrost`` commands; options settable with ``%config BifrostMagics.<option>``."""

    default_interval = Unicode(
        "1s", help="Sampling interval of %bifrost record without --interval."
    ).tag(config=True)
    timeout = Float(3.0, help="Seconds per request for %bifrost connect.").tag(config=True)
    live_refresh = Float(1.0, help="Seconds between redraws of live trends.").tag(config=True)
    trend_points = Integer(2000, help="Points per tag drawn by live trends.").tag(config=True)
    timezone = Unicode(
        "",
        help="Timezone of live trends' time axes, e.g. 'Europe/Berlin' (empty: the kernel's).",
    ).tag(config=True)
    short_errors = Bool(
        True, help="Show bifrost errors as one line with a hint instead of a traceback."
    ).tag(config=True)
    sim_seed = Integer(1, help="Seed of the plant started by %bifrost sim start.").tag(config=True)
    nest_asyncio = Bool(
        False,
        help="Apply nest-asyncio so that asyncio.run() works in this kernel (opt-in).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.state = _State()
        # Whether loading these magics set up the error display and completion (which
        # `import bifrost` may have done before): then unloading removes them.
        self.registered_hooks = False
        # The connection the running command uses (protocol, writable), for its error's hint.
        self._protocol: str | None = None
        self._writable: bool | None = None

    # -- entry point ------------------------------------------------------------------------
    @line_cell_magic
    def bifrost(self, line: str, cell: str | None = None) -> Any:
        """Connect, read, browse, write, record PLC tags; ``%bifrost help`` lists commands."""
        words = line.strip().split(None, 1)
        name = words[0] if words else "help"
        rest = words[1] if len(words) > 1 else ""
        if name in ("-h", "--help"):
            name, rest = "help", ""
        command = COMMANDS.get(name)
        if cell is not None and (command is None or not command.cell):
            raise UsageError("the cell magic is `%%bifrost tags VAR` (a CSV or YAML body)")
        if command is None:
            raise COMMANDS.unknown(name)
        if cell is None and command.cell:
            raise UsageError(
                f"`{name}` is a cell magic: start the cell with `%%bifrost {name} VAR`"
            )
        # Checked before parsing so that `--help` works without the required arguments.
        if {"-h", "--help"} & set(shlex.split(rest, posix=True) if rest else []):
            print(command.help())
            return None
        args = command.parse(rest)
        self._protocol = self._writable = None
        try:
            if cell is not None:
                return command.handler(self, args, cell)
            return command.handler(self, args)
        except BifrostError as exc:
            if not self.short_errors:
                raise
            raise BifrostMagicError(exc, hint(exc, name, self._protocol, self._writable)) from exc

    # -- helpers ----------------------------------------------------------------------------
    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace."""
        assert self.shell is not None, "the magics are registered with a shell"
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _connection(self, name: str) -> Connection:
        connection = self.state.connections.get(name)
        if connection is None:
            known = ", ".join(self.state.connections) or "none yet"
            raise NoSuchConnection(f"no connection named {name!r} (known: {known})")
        self._protocol = connection.protocol
        self._writable = connection.writable
        return connection

    def _store(self, var: str | None, value: Any) -> None:
        if var is None:
            return
        if not var.isidentifier():
            raise UsageError(f"--out needs a Python variable name, got {var!r}")
        self.user_ns[var] = value

    # -- commands ---------------------------------------------------------------------------
    @COMMANDS.command(
        arg("name", help="name of the connection (also a variable in the notebook)"),
        arg(
            "url",
            help="modbus://host:port, s7://host:port, opc.tcp://..., or `sim` (the simulator)",
        ),
        arg("--tags", help="tag table: a variable holding a TagTable, or a CSV/YAML path"),
        arg("--writable", action="store_true", help="allow `%%bifrost write`"),
        arg("--timeout", type=float, help="seconds per request (default: the option)"),
        arg("--unit", type=int, help="Modbus unit id"),
        arg(
            "--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="driver option"
        ),
    )
    def _connect(self, args: Namespace) -> Connection:
        """Connect to a device and keep the connection under NAME."""
        if not args.name.isidentifier():
            raise UsageError(f"the connection name must be a Python identifier, got {args.name!r}")
        options: dict[str, Any] = {}
        for item in args.option:
            key, sep, text = item.partition("=")
            if not sep:
                raise UsageError(f"--option takes KEY=VALUE, got {item!r}")
            options[key.strip()] = _value(text.strip())
        if args.unit is not None:
            options["unit"] = args.unit
        tags: Any = None
        url = args.url
        if url == "sim" or url.startswith("sim:"):
            plant = self.state.plant
            if plant is None or plant.closed:
                raise ConfigurationError("the simulator is not running: `%bifrost sim start` first")
            protocol = url.partition(":")[2] or "modbus"
            if protocol not in plant.urls:
                plant.serve(**{protocol: 0})
            url = plant.urls[protocol]
            tags = plant.tags(protocol)
        if args.tags:
            source = self.user_ns.get(args.tags)
            tags = source if isinstance(source, TagTable) else args.tags
        old = self.state.connections.pop(args.name, None)
        if old is not None:
            old.close()
        timeout = args.timeout if args.timeout is not None else self.timeout
        self._protocol = protocol_of_url(url)
        connection = connect(url, tags=tags, writable=args.writable, timeout=timeout, **options)
        self.state.connections[args.name] = connection
        self.user_ns[args.name] = connection
        return connection

    @COMMANDS.command(
        arg("name", help="connection name"),
        arg("tags", nargs="*", help="tags to read (default: the whole tag table)"),
        arg("--out", metavar="VAR", help="also store the DataFrame in VAR"),
    )
    def _read(self, args: Namespace) -> Any:
        """Read tags (names, or addresses such as hr:0:float32) in one batch."""
        connection = self._connection(args.name)
        tags = args.tags or connection.tags.names
        if not tags:
            raise ConfigurationError(
                f"{args.name} has no tag table: name the tags or addresses to read"
            )
        frame = connection.read(tags)
        self._store(args.out, frame)
        return frame

    @COMMANDS.command(
        arg("name", help="connection name"),
        arg("path", nargs="?", help="OPC UA node to browse from"),
        arg("--depth", type=int, default=1, help="levels below PATH (OPC UA)"),
        arg("--filter", "-f", help="show rows containing this text"),
        arg("--out", metavar="VAR", help="also store the DataFrame in VAR"),
    )
    def _browse(self, args: Namespace) -> Any:
        """List the device's tags (OPC UA: nodes below PATH)."""
        connection = self._connection(args.name)
        frame = connection.browse(args.path, args.depth) if args.path else connection.browse()
        if args.filter:
            needle = args.filter.lower()
            # Missing cells (a tag without limits) match nothing, rather than "nan".
            cells = frame.reset_index().astype(object).fillna("").astype(str)
            text = cells.agg(" ".join, axis=1).str.lower()
            frame = frame[text.str.contains(needle, regex=False).to_numpy()]
        self._store(args.out, frame)
        return frame

    @COMMANDS.command(
        arg("name", help="connection name"),
        arg("assignments", nargs="+", metavar="TAG=VALUE", help="e.g. reactor.setpoint=75"),
    )
    def _write(self, args: Namespace) -> None:
        """Write values: TAG=VALUE ... (the connection must be --writable)."""
        connection = self._connection(args.name)
        values: dict[TagLike, Any] = {}
        for item in args.assignments:
            tag, sep, text = item.partition("=")
            if not sep or not tag.strip():
                raise UsageError(f"write takes TAG=VALUE, got {item!r}")
            values[tag.strip()] = _value(text.strip())
        connection.write(values)
        written = ", ".join(f"{k} = {v!r}" for k, v in values.items())
        print(f"wrote {written} to {args.name}")

    @COMMANDS.command(
        arg("name", help="connection name"),
        arg("tags", nargs="*", help="tags to record (default: the whole tag table)"),
        arg("--interval", "-i", help="sampling interval, e.g. 100ms (default: option)"),
        arg("--duration", "-d", help="how long, e.g. 10s; needed unless --background"),
        arg("--background", "-b", action="store_true", help="return at once"),
        arg("--live", action="store_true", help="show a live trend (implies --background)"),
        arg("--save", metavar="PATH", help="save to PATH (.parquet/.zarr/.nc) at the end"),
        arg("--out", metavar="VAR", help="store the Recording in VAR (background: rec)"),
    )
    def _record(self, args: Namespace) -> Any:
        """Record tags on a fixed interval into a Recording."""
        connection = self._connection(args.name)
        tags = args.tags or connection.tags.names
        if not tags:
            raise ConfigurationError(f"{args.name} has no tag table: name the tags to record")
        background = args.background or args.live
        if not background and not args.duration:
            raise ConfigurationError(
                "a blocking `%bifrost record` needs --duration (e.g. --duration 10s); "
                "or --background, and `%bifrost stop` when done"
            )
        interval = args.interval or self.default_interval
        var = args.out or ("rec" if background else None)
        if var is not None and not var.isidentifier():
            raise UsageError(f"--out needs a Python variable name, got {var!r}")
        try:
            recording = connection.record(
                tags,
                interval=interval,
                duration=args.duration,
                background=background,
                path=args.save,
            )
        except RecordingInterrupted as interrupted:
            # Kept where --out says; without it, IPython's handler assigns it to the
            # statement's variable (`rec = %bifrost record ...`) or `_`.
            if var is not None:
                self._store(var, interrupted.recording)
                interrupted.kept_in = var
            raise
        self._store(var, recording)
        if not background:
            return recording
        previous = self.state.recordings.get(var or "")
        if previous is not None and previous.recording.running:
            previous.recording.stop()
        entry = _Background(args.name, recording)
        self.state.recordings[var or ""] = entry
        if args.live:
            from bifrost.jupyter.widgets import LiveTrend

            entry.trend = LiveTrend(
                recording,
                refresh=self.live_refresh,
                points=self.trend_points,
                tz=self.timezone or None,
            )
            _show(entry.trend)
        until = f" for {args.duration}" if args.duration else "; `%bifrost stop " + str(var) + "`"
        print(
            f"recording {plural(len(recording.names), 'tag')} from {args.name} every "
            f"{format_seconds(recording.interval_s)} into `{var}`{until}"
        )
        return None

    @COMMANDS.command(
        arg("vars", nargs="*", metavar="VAR", help="recordings to stop (default: all)"),
    )
    def _stop(self, args: Namespace) -> Any:
        """Stop background recordings; the Recording stays in its variable."""
        names = args.vars or list(self.state.recordings)
        unknown = [n for n in names if n not in self.state.recordings]
        if unknown:
            known = ", ".join(self.state.recordings) or "none"
            raise ConfigurationError(
                f"no background recording named {', '.join(map(repr, unknown))} (running: {known})"
            )
        stopped = []
        for name in names:
            entry = self.state.recordings.pop(name)
            entry.recording.stop()
            entry.recording.wait(30.0)
            if entry.trend is not None:
                entry.trend.stop()
                entry.trend.refresh()
            stopped.append(entry.recording)
        if len(stopped) == 1:
            return stopped[0]
        for recording in stopped:
            _show(recording)
        return None

    @COMMANDS.command()
    def _status(self, args: Namespace) -> Any:
        """Connections, their recordings, and the simulator."""
        rows = []
        for name, connection in self._known_connections().items():
            running = [
                f"{html.escape(var)} ({len(e.recording):,} samples"
                + (", running)" if e.recording.running else ", stopped)")
                for var, e in self.state.recordings.items()
                if e.connection == name
            ]
            rows.append(
                [
                    f"<code>{html.escape(name)}</code>",
                    html.escape(connection.url),
                    "connected" if connection.connected else "closed",
                    "yes" if connection.writable else "",
                    str(len(connection.tags)),
                    "<br>".join(running) or "—",
                ]
            )
        plants = self._running_plants()
        sim = (
            "; ".join(
                f"{name} serves {', '.join(plant.urls.values()) or 'nothing yet'}"
                for name, plant in plants.items()
            )
            or "not running"
        )
        caption = f"bifrost: {plural(len(rows), 'connection')} · simulator: {html.escape(sim)}"
        frame_html = table_html(
            ["name", "url", "state", "writable", "tags", "recordings"],
            rows,
            caption=caption,
            raw=True,
        )
        _show(_html(frame_html))
        return None

    def _known_connections(self) -> dict[str, Connection]:
        """The magics' connections, then open ones the notebook made itself (by variable)."""
        known = dict(self.state.connections)
        seen = {id(c) for c in known.values()}
        for name, value in self.user_ns.items():
            if (
                isinstance(value, Connection)
                and not name.startswith("_")
                and id(value) not in seen
                and value.connected
            ):
                known[name] = value
                seen.add(id(value))
        return known

    def _running_plants(self) -> dict[str, Any]:
        """Simulated plants running in this kernel: the magics' own, and the notebook's."""
        found: dict[str, Any] = {}
        mine = self.state.plant
        seen: set[int] = set()
        if mine is not None and not mine.closed:
            found["%bifrost sim"] = mine
            seen.add(id(mine))
        module = sys.modules.get("bifrost.sim.plant")
        if module is not None:  # a notebook plant means bifrost.sim was imported
            for name, value in self.user_ns.items():
                if (
                    isinstance(value, module.Plant)
                    and not name.startswith("_")
                    and id(value) not in seen
                    and not value.closed
                ):
                    found[name] = value
                    seen.add(id(value))
        return found

    @COMMANDS.command(
        arg("action", choices=["start", "stop", "status"], help="what to do"),
        arg("--seed", type=int, help="seed of the plant (default: the option)"),
        arg("--port", type=int, default=0, help="Modbus port (0: a free one)"),
        arg("--connect", metavar="NAME", help="also connect to it as NAME"),
    )
    def _sim(self, args: Namespace) -> Any:
        """Start or stop the simulated plant (bifrost.sim.Plant) on loopback."""
        plant = self.state.plant
        if args.action == "stop":
            if plant is not None:
                plant.close()
            self.state.plant = None
            print("simulated plant stopped")
            return None
        if args.action == "status" or (plant is not None and not plant.closed):
            if args.action == "start" and args.connect:
                self._connect(COMMANDS["connect"].parser.parse_args([args.connect, "sim"]))
            if plant is not None:
                print(repr(plant))
                return None
            others = self._running_plants()
            print(
                "; ".join(f"{name}: {p!r}" for name, p in others.items())
                or "the simulated plant is not running"
            )
            return None
        from bifrost.sim import Plant

        seed = args.seed if args.seed is not None else self.sim_seed
        plant = Plant(seed=seed)
        try:
            urls = plant.serve(modbus=args.port)
        except BaseException:
            plant.close()
            raise
        self.state.plant = plant
        self.user_ns.setdefault("plant", plant)
        print(f"simulated plant (seed {seed}) serves {', '.join(urls.values())}")
        if args.connect:
            self._connect(COMMANDS["connect"].parser.parse_args([args.connect, "sim"]))
            print(f"connected as `{args.connect}`")
        return None

    @COMMANDS.command()
    def _nest(self, args: Namespace) -> None:
        """Let asyncio.run() work inside this kernel (applies nest-asyncio).

        bifrost itself never needs it.
        """
        self.nest_asyncio = True

    @observe("nest_asyncio")
    def _apply_nest_asyncio(self, change: Any) -> None:
        if change["new"]:
            apply_nest_asyncio()
            print("nest-asyncio applied: asyncio.run() now works in this kernel")

    @COMMANDS.command(arg("command", nargs="?", help="a command"))
    def _help(self, args: Namespace) -> None:
        """Show the commands, or one command's arguments."""
        if args.command:
            command = COMMANDS.get(args.command)
            if command is None:
                raise COMMANDS.unknown(args.command)
            print(command.help())
            return
        lines = ["%bifrost COMMAND [ARGS]   (`%bifrost COMMAND --help` for the arguments)", ""]
        lines += COMMANDS.overview()
        lines += [
            "",
            "Addresses: hr:0:float32  hr:100:float32:CDAB  ir:5  co:3  di:7  40101:float32",
            "Options:   %config BifrostMagics   (interval, timeout, live trend, nest_asyncio)",
        ]
        print("\n".join(lines))

    @COMMANDS.command(
        arg("var", help="variable to store the TagTable in"),
        arg("--format", choices=["csv", "yaml"], help="default: guessed from the body"),
        arg("--attach", metavar="NAME", help="also make it NAME's tag table"),
        cell=True,
    )
    def _tags(self, args: Namespace, body: str) -> TagTable:
        """Cell magic: define a tag table from the cell's CSV or YAML body."""
        text = body.strip("\n")
        if not text.strip():
            raise ConfigurationError("the cell is empty: write a CSV (name,address,...) or YAML")
        fmt = args.format
        if fmt is None:
            first = next(line for line in text.splitlines() if line.strip())
            fmt = "csv" if "," in first and "name" in first and ":" not in first else "yaml"
        table = TagTable.from_csv(text + "\n") if fmt == "csv" else TagTable.from_yaml(text + "\n")
        if not args.var.isidentifier():
            raise UsageError(f"the tag table needs a Python variable name, got {args.var!r}")
        self.user_ns[args.var] = table
        if args.attach:
            self._connection(args.attach).tags = table
        return table

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop trends and recordings, close connections and the simulator."""
        for entry in self.state.recordings.values():
            if entry.trend is not None:
                entry.trend.stop()
            entry.recording.stop()
        self.state.recordings.clear()
        for connection in self.state.connections.values():
            connection.close()
        self.state.connections.clear()
        if self.state.plant is not None:
            self.state.plant.close()
            self.state.plant = None


def apply_nest_asyncio() -> None:
    """Apply nest-asyncio (or the nest-asyncio2 fork that ipykernel ships).

    Raises
    ------
    MissingDependency
        When neither is installed, naming ``pip install nest-asyncio``.
    """
    import importlib

    for module in ("nest_asyncio", "nest_asyncio2"):
        try:
            nest = importlib.import_module(module)
        except ImportError:
            continue
        nest.apply()
        return
    raise MissingDependency(
        "`%bifrost nest` needs nest-asyncio, which is not installed; "
        "install it with: pip install nest-asyncio"
    )
