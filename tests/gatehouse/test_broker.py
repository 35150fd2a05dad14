"""The embedded broker hands a worker whole messages only, even while they are being written.

kombu's stock ``filesystem`` transport fails this test (a half-written file reads as invalid JSON,
which stops a worker); ``core.broker`` passes it.
"""

from __future__ import annotations

import threading

from kombu import Connection
from kombu.transport.virtual.base import Empty

MESSAGES = 2000
BODY = "x" * 20_000  # big enough that writing a message takes a while


def _connection(tmp_path) -> Connection:
    queue = tmp_path / "queue"
    queue.mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(tmp_path),
        "store_processed": False,
    }
    return Connection(
        "filesystem://localhost//", transport="core.broker:Transport", transport_options=options
    )


def test_a_reader_racing_the_writer_gets_every_message_whole(tmp_path):
    with _connection(tmp_path) as writer, _connection(tmp_path) as reader:
        put, take = writer.channel(), reader.channel()

        def produce() -> None:
            for i in range(MESSAGES):
                put._put("jobs", {"i": i, "body": BODY})

        producer = threading.Thread(target=produce)
        producer.start()
        received: list[dict] = []
        while len(received) < MESSAGES:
            try:
                received.append(take._get("jobs"))
            except Empty:
                assert producer.is_alive() or len(received) < MESSAGES
        producer.join()

    assert sorted(m["i"] for m in received) == list(range(MESSAGES))
    assert all(m["body"] == BODY for m in received)
