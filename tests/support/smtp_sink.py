"""A minimal SMTP server in a thread that keeps every message it receives (for email tests)."""

from __future__ import annotations

import socketserver
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from tests.support.serving import serving_thread


@dataclass
class SmtpSink:
    port: int
    messages: list[Message] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    sink: SmtpSink

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            self.reply("220 sink ESMTP")
            while line := self.rfile.readline():
                command = line.decode("latin-1").strip().upper()
                if command.startswith(("EHLO", "HELO")):
                    self.reply("250 sink")
                elif command == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    data = bytearray()
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    sink.messages.append(message_from_bytes(bytes(data)))
                    self.reply("250 queued")
                elif command == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink = SmtpSink(port=server.server_address[1])
    thread = serving_thread(server, name="smtp-sink")
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
