"""The disk spool on its own: kill -9 mid-append, torn tails, acknowledged ranges."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bifrost.cloud import Spool, SpoolError

_WRITER = textwrap.dedent(
    """
    import sys
    from bifrost.cloud.spool import Spool
    spool = Spool(sys.argv[1], segment_bytes=64 * 1024)
    i = spool.end
    print("ready", flush=True)
    while True:
        batch = [(i + k, b"row %d " % (i + k) + b"x" * (k * 37 % 200)) for k in range(50)]
        spool.append(batch)
        i += len(batch)
        spool.ack(spool.head, spool.head + 20)  # some acknowledged, out of the blue
        spool.compact()
    """
)


def test_kill_9_while_appending_loses_only_the_unsynced_batch(tmp_path: Path) -> None:
    rng = random.Random(3)
    folder = tmp_path / "spool"
    last_end = 0
    for _ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(folder)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
        with Spool(folder) as spool:
            assert spool.end >= last_end  # nothing fsync'd went missing
            entries = list(spool)
            seqs = [e.seq for e in entries]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == len(seqs)
            for entry in entries:  # every record readable, intact, in its place
                assert entry.payload.startswith(b"row %d " % entry.seq)
                assert entry.time_ns == entry.seq
            assert spool.pending == len(entries)
            last_end = spool.end


def test_acknowledged_ranges_survive_a_reopen_and_caps_count(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        first = spool.append([(i, b"%d" % i) for i in range(100)])
        assert first == 0
        assert spool.ack(10, 20) == 10
        assert spool.ack(15, 30) == 10  # overlapping: only the new ones count
        assert spool.ack(0) == 1
        assert spool.head == 1
        assert spool.pending == 79
    with Spool(tmp_path) as spool:
        assert spool.pending == 79
        assert spool.head == 1
        assert [e.seq for e in spool.read(0, 12)] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 30, 31, 32]
        assert spool.append([(0, b"next")]) == 100  # numbers never repeat
        assert spool.times() == (1, 0)


def test_a_torn_tail_is_cut_off(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append([(i, b"abc") for i in range(10)])
    segment = next((tmp_path / "segments").glob("*.seg"))
    data = segment.read_bytes()
    segment.write_bytes(data + data[:30])  # half a record after the last whole one
    with Spool(tmp_path) as spool:
        assert spool.end == 10
        assert spool.append([(10, b"new")]) == 10
        assert [e.payload for e in spool.read(9, 5)] == [b"abc", b"new"]


def test_one_spool_per_folder(tmp_path: Path) -> None:
    with Spool(tmp_path), pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path)


def test_a_cap_during_an_appends_fsync_neither_spins_nor_drops_that_batch(tmp_path: Path) -> None:
    import threading

    spool = Spool(tmp_path / "spool", segment_bytes=4096, max_bytes=8192)
    spool.append([(i, b"x" * 500) for i in range(20)])  # several segments, capped
    in_fsync = threading.Event()
    release = threading.Event()
    sync = spool._sync

    def slow_sync(fd: int) -> None:
        in_fsync.set()
        release.wait(10)
        sync(fd)

    spool._sync = slow_sync  # type: ignore[method-assign]
    writer = threading.Thread(target=spool.append, args=([(i, b"y" * 500) for i in range(40)],))
    writer.start()
    assert in_fsync.wait(10)
    enforcer = threading.Thread(target=spool.enforce, daemon=True)
    enforcer.start()
    enforcer.join(5)
    release.set()
    # It used to spin forever holding the lock (closing would then hang too).
    assert not enforcer.is_alive()
    writer.join(10)
    try:
        assert not writer.is_alive()
        kept = [entry.payload[:1] for entry in spool]
        assert kept
        assert kept[-1] == b"y"  # the newest batch is kept, the oldest dropped
        assert spool.dropped + spool.pending == 60
    finally:
        spool.close()
