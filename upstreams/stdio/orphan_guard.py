"""``python -I orphan_guard.py RUNNER_PID CMD ARGS…``: become CMD, dying with the runner.

The runner starts every stdio command through this: it asks Linux to SIGKILL it when its parent
(the runner) dies (``PR_SET_PDEATHSIG``, which survives ``exec``), then replaces itself with the
command. A runner that stops normally stops its processes itself; this covers the runner being
killed outright (``kill -9``, the OOM killer), which would otherwise leave them orphaned. A
command that cannot be started is reported on stderr, where the runner's state shows it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    runner_pid, command = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != runner_pid:  # the runner died before the guard was set
            return 1
    try:
        os.execvp(command[0], command)  # noqa: S606 - no shell, by design: argv as the admin typed it
    except OSError as exc:
        print(f"cannot start {command[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
