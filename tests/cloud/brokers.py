"""Real brokers for the cloud tests: mosquitto and nats-server on free loopback ports.

Each broker is started with a config file the test writes, and stopped by its pid.
mosquitto started as root drops privileges to the ``mosquitto`` user, so its folders
are handed to that user (a root-owned persistence folder is never written).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.settimeout(0.2)
            sock.connect(("127.0.0.1", port))
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _hand_to_mosquitto(folder: Path) -> None:
    if os.geteuid() != 0:
        return
    # pytest's temporary folders are 0700: let the unprivileged broker reach its own.
    for parent in folder.resolve().parents:
        if parent == Path("/tmp") or parent == parent.parent:
            break
        parent.chmod(parent.stat().st_mode | 0o055)
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        folder.chmod(0o777)
        return
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


class Mosquitto:
    """A mosquitto broker on ``127.0.0.1:port``; restartable with its persistence kept."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int | None = None,
        extra: Sequence[str] = (),
        listeners: Sequence[str] = (),
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra = list(extra)
        self.listeners = list(listeners)
        self.process: subprocess.Popen[bytes] | None = None
        self.config = folder / "mosquitto.conf"
        data = folder / "data"
        data.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            *self.extra,
            *self.listeners,
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 1",
            "autosave_on_changes false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        _hand_to_mosquitto(folder)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        assert self.process is None
        self.log = open(self.folder / "broker.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=self.log, stderr=self.log
        )
        try:
            wait_port(self.port)
        except RuntimeError as exc:
            # Stop what was started (no leaked process or log file) and say why it failed.
            self.kill()
            said = (self.folder / "broker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; mosquitto said:\n{said}") from None
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, only what was saved survives."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def _stop(self, sig: int) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        self.log.close()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def mosquitto(folder: Path, **kwargs: object) -> Iterator[Mosquitto]:
    broker = Mosquitto(folder, **kwargs)  # type: ignore[arg-type]
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class NatsCluster:
    """Three nats-server nodes clustered on loopback, each with MQTT (and JetStream)."""

    def __init__(self, folder: Path, size: int = 3) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.size = size
        self.client_ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.mqtt_ports = [free_port() for _ in range(size)]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * size
        self.logs: list[Any] = [None] * size
        for i in range(size):
            routes = ", ".join(
                f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i
            )
            (folder / f"n{i}.conf").write_text(
                f"server_name: n{i}\n"
                f"listen: 127.0.0.1:{self.client_ports[i]}\n"
                f"jetstream {{ store_dir: {folder / f'js{i}'} }}\n"
                f"mqtt {{ listen: 127.0.0.1:{self.mqtt_ports[i]}, stream_replicas: {size}, "
                f"consumer_replicas: {size} }}\n"
                f"cluster {{ name: bifrost-test, listen: 127.0.0.1:{self.route_ports[i]}, "
                f"routes: [{routes}] }}\n"
            )

    def url(self, i: int) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_ports[i]}"

    def start(self, i: int | None = None) -> None:
        for n in range(self.size) if i is None else [i]:
            self.logs[n] = open(self.folder / f"n{n}.log", "ab")  # noqa: SIM115
            self.processes[n] = subprocess.Popen(
                [NATS, "-c", str(self.folder / f"n{n}.conf")],
                stdout=self.logs[n],
                stderr=self.logs[n],
            )
        for n in range(self.size) if i is None else [i]:
            wait_port(self.mqtt_ports[n], 30)

    def kill(self, i: int) -> None:
        process = self.processes[i]
        if process is None:
            return
        self.processes[i] = None
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        self.logs[i].close()

    def stop(self) -> None:
        for i, process in enumerate(self.processes):
            if process is None:
                continue
            self.processes[i] = None
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)
            self.logs[i].close()
