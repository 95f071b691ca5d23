"""Modbus TCP devices for the benchmarks, in their own process: many ports, pipelining.

``python _modbus_devices.py --devices N [--delay-ms D]`` listens on N loopback ports, each
a device whose holding register ``a`` holds ``a & 0xffff``. Each connection's requests
are answered in the order they came, however many arrive together (what pymodbus 3.16's
server does not do), so pipelined clients can be measured. With ``--delay-ms``, a second
set of ports forwards to the first through a link that delays every chunk of bytes by D
ms in each direction (a WAN or a slow gateway). Prints ``device <port>`` / ``delayed
<port>`` lines, then ``ready``.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys

MBAP = struct.Struct(">HHHB")
_WORDS = struct.pack(">65536H", *range(65536))


class Device(asyncio.Protocol):
    """FC 3/4: registers; FC 1/2: coils (odd addresses on); others: exception 1."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        out = []
        while len(buffer) >= 7:
            tid, _, length, unit = MBAP.unpack_from(buffer)
            if len(buffer) < 6 + length:
                break
            pdu = bytes(buffer[7 : 6 + length])
            del buffer[: 6 + length]
            out.append(_frame(tid, unit, _answer(pdu)))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


def _answer(pdu: bytes) -> bytes:
    function = pdu[0]
    if function in (3, 4) and len(pdu) >= 5:
        address, count = struct.unpack(">HH", pdu[1:5])
        if 1 <= count <= 125 and address + count <= 65536:
            return bytes((function, 2 * count)) + _WORDS[2 * address : 2 * (address + count)]
        return bytes((function | 0x80, 2))
    if function in (1, 2) and len(pdu) >= 5:
        address, count = struct.unpack(">HH", pdu[1:5])
        packed = bytearray((count + 7) // 8)
        for i in range(count):
            if (address + i) % 2:
                packed[i // 8] |= 1 << (i % 8)
        return bytes((function, len(packed))) + bytes(packed)
    return bytes((function | 0x80, 1))


def _frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


async def _delayed_pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            loop.call_later(delay, writer.write, data)
    except OSError:
        pass
    finally:
        loop.call_later(delay, writer.close)


async def _serve(devices: int, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for _ in range(devices):
        server = await loop.create_server(Device, "127.0.0.1", 0, backlog=512)
        servers.append(server)
        print(f"device {server.sockets[0].getsockname()[1]}")
    if delay_ms > 0:
        delay = delay_ms / 1000
        for device in list(servers):
            target = device.sockets[0].getsockname()[1]

            async def link(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int = target
            ) -> None:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
                await asyncio.gather(
                    _delayed_pipe(reader, up_writer, delay), _delayed_pipe(up_reader, writer, delay)
                )

            proxy = await asyncio.start_server(link, "127.0.0.1", 0)
            servers.append(proxy)
            print(f"delayed {proxy.sockets[0].getsockname()[1]}")
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    asyncio.run(_serve(args.devices, args.delay_ms))
