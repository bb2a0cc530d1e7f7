"""The `surge:` settings of channels.yaml and `match: {surge: [...]}` of routes: defaults, a
route's own thresholds over the file's, and errors that name the file, line and what to do."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.digest.channels import Channels, load_channels
from monitor.errors import ConfigError
from monitor.story.surge import StorySettings, SurgeSettings, VolumeSettings

RECEIVERS = """\
receivers:
  - id: ops
    webhook: {url: "https://hooks.example.org/x"}
"""


def load(tmp_path: Path, text: str) -> Channels:
    path = tmp_path / "channels.yaml"
    path.write_text(text, encoding="utf-8")
    return load_channels(path, {"strait"}, {"TW"})


def test_defaults_and_a_routes_own_thresholds_over_the_files(tmp_path: Path) -> None:
    text = f"""\
surge:
  volume: {{factor: 2.5, cooldown: 3h}}
{RECEIVERS}routes:
  - {{id: plain, receiver: ops}}
  - id: surges
    receiver: ops
    match: {{surge: [story, volume], rules: [strait]}}
    surge: {{story: {{outlets: 4, window: 1h}}}}
"""
    channels = load(tmp_path, text)
    assert channels.surge == SurgeSettings(volume=VolumeSettings(2.5, 5, timedelta(hours=3)))
    plain, surges = channels.routes
    assert plain.surge is None and plain.match.surge == () and not plain.match.surges_only
    assert surges.match.surge == ("story", "volume") and surges.match.surges_only
    assert surges.surge == SurgeSettings(
        story=StorySettings(outlets=4, window=timedelta(hours=1)),
        volume=VolumeSettings(2.5, 5, timedelta(hours=3)),
    )


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("surge:\n  stories: {outlets: 3}\n", ":2:3:", "unknown key 'stories'"),
        ("surge:\n  story: {outlet: 3}\n", ":2:11:", "did you mean 'outlets'?"),
        (
            "surge:\n  story: {outlets: 1}\n",
            ":2:20:",
            "'outlets' must be a whole number of at least 2",
        ),
        ("surge:\n  story: {window: 2}\n", ":2:19:", "'window' must be a duration with a unit"),
        ("surge:\n  volume: {factor: 0.5}\n", ":2:20:", "'factor' must be a number of at least 1"),
        ("surge:\n  volume: {min: 0}\n", ":2:17:", "'min' must be a whole number of at least 1"),
        ("surge: [story]\n", ":1:8:", "'surge' must be a mapping"),
    ],
)
def test_bad_settings_name_the_line(tmp_path: Path, text: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text + RECEIVERS)
    message = str(error.value)
    assert f"channels.yaml{where}" in message and words in message, message


def test_a_bad_surge_kind_in_a_route_suggests_the_right_one(tmp_path: Path) -> None:
    text = RECEIVERS + "routes:\n  - receiver: ops\n    match: {surge: [story, volum]}\n"
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    message = str(error.value)
    assert "channels.yaml:6:28:" in message and "'surge' must be one of story, volume" in message
    assert "did you mean 'volume'?" in message


def test_thresholds_on_a_route_that_takes_no_surges_are_refused(tmp_path: Path) -> None:
    text = RECEIVERS + "routes:\n  - receiver: ops\n    surge: {story: {outlets: 4}}\n"
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    message = str(error.value)
    assert "channels.yaml:6:5: this route sets surge thresholds but takes no surges" in message
    assert "add 'surge: [story, volume]' to its 'match:'" in message
