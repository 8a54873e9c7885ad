"""Wait until file descriptors are readable, for any descriptor number.

``select.select`` refuses descriptors numbered 1024 or more ("filedescriptor out of range"),
which a long-lived supervisor, a worker with many models open or a test process reaches;
``poll`` has no such limit.
"""

from __future__ import annotations

import select
from collections.abc import Iterable


def readable(fds: Iterable[int], timeout_s: float) -> set[int]:
    """The descriptors among ``fds`` that are readable (or closed/errored) within ``timeout_s``."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN | select.POLLPRI)
    events = poller.poll(max(0.0, timeout_s) * 1000.0)
    return {fd for fd, _ in events}
