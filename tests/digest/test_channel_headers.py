"""Values of channels.yaml that end up in a mail header (from, to, cc) hold one line: a line
break in one would end the header and let the file write headers of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.digest.channels import load_channels
from monitor.errors import ConfigError

CHANNELS = """\
receivers:
  - id: desk
    email:
      to: [desk@example.org]
      from: {sender}
      smtp: {{host: localhost}}
"""


def load(tmp_path: Path, sender: str) -> str:
    path = tmp_path / "channels.yaml"
    path.write_text(CHANNELS.format(sender=sender), encoding="utf-8")
    return load_channels(path).receivers["desk"].email.sender  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "sender",
    [
        '"Monitor\\n<monitor@example.org>"',
        '"Monitor <monitor@example.org>\\r\\nBcc: all@example.org"',
        '"Monitor\\u2028<monitor@example.org>"',  # Unicode's line separator
        '"Monitor\\x85<monitor@example.org>"',  # NEL
        '"Monitor\\x7f <monitor@example.org>"',
    ],
)
def test_a_line_break_in_an_address_is_refused_at_its_line(tmp_path: Path, sender: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, sender)
    assert (raised.value.line, raised.value.column) == (5, 13)
    assert "line break or control character" in raised.value.message


def test_the_newline_a_block_scalar_ends_with_is_not_part_of_the_address(tmp_path: Path) -> None:
    assert (
        load(tmp_path, ">\n        Monitor <monitor@example.org>")
        == "Monitor <monitor@example.org>"
    )
