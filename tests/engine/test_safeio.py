"""The bounded reader: every kind of file that is not a sane regular file is an UnsafeFileError."""

from __future__ import annotations

import os
import socket

import pytest

from engine import safeio
from engine.safeio import UnsafeFileError, read_bytes, read_json

DEEP = 100_000


def test_a_regular_file_is_read_whole(tmp_path):
    p = tmp_path / "a.json"
    p.write_bytes(b'{"a": [1, {"b": "\xc3\xa9"}]}')
    assert read_json(p, 1000) == {"a": [1, {"b": "é"}]}


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    p = tmp_path / "fifo.json"
    os.mkfifo(p)
    with pytest.raises(UnsafeFileError, match=r"fifo.json: is a FIFO; only regular files are read"):
        read_bytes(p, 1000)  # O_NONBLOCK: without it this open would block forever (no writer)


def test_a_symlink_is_refused_even_to_a_good_file(tmp_path):
    good = tmp_path / "good.json"
    good.write_text("{}")
    (tmp_path / "link.json").symlink_to(good)
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        read_json(tmp_path / "link.json", 1000)


def test_a_symlink_to_dev_zero_is_refused_unread(tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="is a symlink"):
        read_bytes(tmp_path / "zero.json", 1000)


def test_following_a_link_still_requires_a_regular_file(tmp_path):
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="is a character device"):
        read_bytes(tmp_path / "zero.toml", 1000, follow_symlinks=True)
    good = tmp_path / "real.toml"
    good.write_text("x = 1")
    (tmp_path / "cfg.toml").symlink_to(good)
    assert read_bytes(tmp_path / "cfg.toml", 1000, follow_symlinks=True) == b"x = 1"


def test_a_directory_and_a_socket_are_refused(tmp_path):
    (tmp_path / "d.json").mkdir()
    with pytest.raises(UnsafeFileError, match="is a directory"):
        read_bytes(tmp_path / "d.json", 1000)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.json"))
        with pytest.raises(UnsafeFileError, match=r"s\.json: cannot be opened"):
            read_bytes(tmp_path / "s.json", 1000)
    finally:
        sock.close()


def test_oversize_is_refused_by_size_and_by_what_was_read(tmp_path):
    p = tmp_path / "big.json"
    p.write_bytes(b"x" * 1001)
    with pytest.raises(UnsafeFileError, match="is 1,001 bytes, over the 1,000-byte limit"):
        read_bytes(p, 1000)
    assert read_bytes(p, 1001) == b"x" * 1001


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b'{\n"a":\n"\xff"}')
    with pytest.raises(UnsafeFileError, match=r"bad.json: line 3: not UTF-8 text \(byte 8\)"):
        read_json(p, 1000)


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_json_nested_100k_deep_is_a_validation_error_not_a_crash(tmp_path, opener, closer):
    p = tmp_path / "deep.json"
    p.write_text(opener * DEEP + "1" * (opener == '{"a":') + closer * DEEP)
    with pytest.raises(UnsafeFileError, match="not valid JSON: nested too deep"):
        read_json(p, 10_000_000)


def test_json_deeper_than_the_limit_but_parseable_is_refused(tmp_path):
    p = tmp_path / "d.json"
    p.write_text("[" * 65 + "]" * 65)
    with pytest.raises(UnsafeFileError, match="nested more than 64 levels deep"):
        read_json(p, 1000)
    p.write_text("[" * 64 + "]" * 64)
    assert read_json(p, 1000) is not None
    wide = "[" + ",".join(["[]"] * 500) + "]"  # many brackets, shallow: accepted
    p.write_text(wide)
    assert len(read_json(p, 10_000)) == 500


def test_a_missing_file_is_a_race_not_a_bad_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "gone.json", 1000)


def test_excerpt_only_from_regular_files(tmp_path):
    os.mkfifo(tmp_path / "f")
    (tmp_path / "z").symlink_to("/dev/zero")
    (tmp_path / "r").write_bytes(b"hello \xff world")
    assert safeio.excerpt(tmp_path / "f", 10) is None
    assert safeio.excerpt(tmp_path / "z", 10) is None
    assert safeio.excerpt(tmp_path / "r", 7) == "hello \ufffd"

