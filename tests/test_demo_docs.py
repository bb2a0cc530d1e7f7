"""README "The demo": its shell block runs as written in a fresh directory, and each command
it lists after `monitor demo` answers with what the section promises.

Expected: exit 0; the status lists the demo's feeds, the search finds items of the rule it
names, and `rules test` reports matches of the rule it names.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.readme import readme_block, run_block


def test_the_demo_block_runs_as_written(tmp_path: Path) -> None:
    block = readme_block("The demo")
    assert block.startswith("monitor demo") and block.count("monitor --rules") >= 3
    outputs = run_block(block, tmp_path)
    status = next(v for k, v in outputs.items() if k.endswith(" status"))
    assert "asia-wire" in status and "manila-courier" in status
    stories = next(v for k, v in outputs.items() if k.endswith(" stories --region KP"))
    assert stories.startswith("story ") and "KP" in stories
    search = next(v for k, v in outputs.items() if "--rule korea-missiles" in k)
    assert "korea-missiles" in search and "[" in search  # at least one item listed
    tested = next(v for k, v in outputs.items() if "rules test" in k)
    assert "china-japan-row [high]" in tested  # a match line, with the rule's severity
