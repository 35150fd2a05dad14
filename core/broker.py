"""kombu's filesystem transport, with messages that appear whole.

kombu writes a message file in place while a worker may already move and read it: a half-written
file reads as invalid JSON and stops the worker ("Unrecoverable error: JSONDecodeError"). Here each
message is written under a name the queue ignores, then renamed into place (atomic on one
filesystem), so a reader only ever sees complete messages.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's filesystem Channel renames AbstractChannel's ``message`` too; its stub ignores it alike.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # "<queue>.msg.part" is not "<queue>.msg": readers skip it
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
