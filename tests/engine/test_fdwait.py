"""Waiting on descriptors numbered above 1024: select() refuses them, a busy process has them."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

from engine.fdwait import readable

HIGH_FD = 1500


@pytest.fixture
def high_pipe() -> Iterator[tuple[int, int]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH_FD:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    r, w = os.pipe()
    high = os.dup2(r, HIGH_FD)
    os.close(r)
    yield high, w
    os.close(high)
    os.close(w)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_descriptor_above_1024_is_waited_on_not_refused(high_pipe: tuple[int, int]) -> None:
    high, w = high_pipe
    assert readable([high], 0.0) == set()
    os.write(w, b"x")
    assert readable([high], 5.0) == {high}


def test_the_queue_index_wakes_on_an_extra_descriptor_above_1024(tmp_path, high_pipe) -> None:  # type: ignore[no-untyped-def]
    from engine.queue.index import QueueIndex

    high, w = high_pipe
    os.write(w, b"x")
    index = QueueIndex(tmp_path)
    try:
        assert index.wait(5.0, extra_fds=(high,)) is True
    finally:
        index.close()
