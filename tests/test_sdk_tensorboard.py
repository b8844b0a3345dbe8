"""live_code.sdk.ScalarWriter: TensorBoard event files decoded back by a small independent reader."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from live_code import sdk
from live_code.sdk.formats import tfrecord
from tests.helpers.tensorboard import Scalar, crc32c_bitwise, read_events

# -- tests ----------------------------------------------------------------------------------------


def test_crc32c_matches_the_standard_check_value() -> None:
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4 / the "check" value of CRC-32C
    assert tfrecord.crc32c(b"") == 0
    blob = bytes(range(256)) * 3
    assert tfrecord.crc32c(blob) == crc32c_bitwise(blob)


def test_scalars_are_written_as_tfrecords_of_events(tmp_path: Path) -> None:
    with sdk.ScalarWriter(tmp_path / "tb") as writer:
        writer.add_scalar("loss", 0.75, 1)
        writer.add_scalar("mAP", 0.5, 1)
        writer.add_scalar("loss", 0.25, 2)
    files = list((tmp_path / "tb").iterdir())
    assert [f.name for f in files] == [os.path.basename(writer.path)]
    assert files[0].name.startswith("events.out.tfevents.")
    assert files[0].name.split(".")[3].isdigit()
    assert socket.gethostname() in files[0].name
    first, scalars = read_events(files[0])
    assert first[3] == [b"brain.Event:2"]
    assert 1.5e9 < struct.unpack("<d", first[1][0])[0] < 4e9  # wall time in seconds
    assert scalars == [Scalar(1, "loss", 0.75), Scalar(1, "mAP", 0.5), Scalar(2, "loss", 0.25)]


def test_each_add_is_on_disk_before_close(tmp_path: Path) -> None:
    writer = sdk.ScalarWriter(tmp_path)
    writer.add_scalar("loss", 1.0, 0)
    _, scalars = read_events(Path(writer.path))
    assert scalars == [Scalar(0, "loss", 1.0)]
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.add_scalar("loss", 1.0, 1)


def test_large_steps_and_values_round_trip(tmp_path: Path) -> None:
    with sdk.ScalarWriter(tmp_path) as writer:
        writer.add_scalar("a/b", 3, 2**40)
        writer.add_scalar("ünï", -1.5 * 2**33, 300)  # float32-exact
    _, scalars = read_events(Path(writer.path))
    assert scalars == [Scalar(2**40, "a/b", 3.0), Scalar(300, "ünï", -1.5 * 2**33)]


def test_two_writers_in_one_directory_get_their_own_files(tmp_path: Path) -> None:
    with sdk.ScalarWriter(tmp_path) as one, sdk.ScalarWriter(tmp_path) as two:
        one.add_scalar("x", 1.0, 1)
        two.add_scalar("x", 2.0, 1)
    assert one.path != two.path
    assert read_events(Path(two.path))[1] == [Scalar(1, "x", 2.0)]


@pytest.mark.parametrize(
    ("tag", "value", "step"),
    [
        ("", 1.0, 0),
        ("loss", float("nan"), 0),
        ("loss", float("inf"), 0),
        ("loss", "1", 0),
        ("loss", True, 0),
        ("loss", 1.0, -1),
        ("loss", 1.0, 1.5),
    ],
)
def test_add_scalar_refuses_bad_input(tmp_path: Path, tag: str, value: Any, step: Any) -> None:
    with sdk.ScalarWriter(tmp_path) as writer, pytest.raises(ValueError):
        writer.add_scalar(tag, value, step)


_TB_PYTHON = os.environ.get("LIVE_CODE_TEST_TENSORBOARD_PYTHON", sys.executable)


def _has_tensorboard(python: str) -> bool:
    res = subprocess.run([python, "-c", "import tensorboard"], capture_output=True)
    return res.returncode == 0


@pytest.mark.registry
@pytest.mark.skipif(
    not _has_tensorboard(_TB_PYTHON),
    reason=f"tensorboard is not installed for {_TB_PYTHON} (set LIVE_CODE_TEST_TENSORBOARD_PYTHON)",
)
def test_tensorboard_itself_reads_the_file(tmp_path: Path) -> None:
    with sdk.ScalarWriter(tmp_path) as writer:
        writer.add_scalar("loss", 0.75, 3)
    code = (
        "import sys\n"
        "from tensorboard.backend.event_processing.event_file_loader import EventFileLoader\n"
        "for e in EventFileLoader(sys.argv[1]).Load():\n"
        "    values = [(v.tag, v.tensor.float_val[:] or v.simple_value) for v in e.summary.value]\n"
        "    print(e.step, e.file_version, values)\n"
    )
    out = subprocess.run([_TB_PYTHON, "-c", code, writer.path], check=True, capture_output=True, text=True).stdout
    assert out.splitlines() == ["0 brain.Event:2 []", "3  [('loss', [0.75])]"]
