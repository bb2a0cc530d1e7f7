"""README "Your own setup": every shell block not marked *needs the internet* runs as written,
offline, in a directory of one's own and in a copy of the project's (its rules/ beside it).

The blocks run in order in one shell, as a reader would type them into one terminal, with the
environment's `bin/` on PATH (as after `. .venv/bin/activate`) and no MONITOR_* variables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from monitor.ingest.feeds import load_feeds

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ONLINE = "# needs the internet"


def setup_blocks() -> list[str]:
    section = README.split("\n## Your own setup\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def test_the_section_marks_what_needs_the_internet() -> None:
    blocks = setup_blocks()
    online = [b for b in blocks if b.startswith(ONLINE)]
    assert len(blocks) >= 6 and len(online) >= 2
    fetching = ("feeds check", "feeds add", "monitor run", "monitor poll")
    for block in blocks:
        if any(word in block for word in fetching):
            assert block.startswith(ONLINE), block


def test_every_offline_block_runs_as_written(tmp_path: Path) -> None:
    # In a directory of one's own and in a copy of the project's, at once (each command is a
    # process start: in turn they would take twice as long).
    script = "set -e\n" + "\n".join(b for b in setup_blocks() if not b.startswith(ONLINE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    runs = {}
    for where in ("own-directory", "project-directory"):
        home = tmp_path / where
        home.mkdir()
        if where == "project-directory":
            shutil.copytree(ROOT / "rules", home / "rules")
        runs[home] = subprocess.Popen(
            ["bash", "-c", script], cwd=home, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    for home, proc in runs.items():
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{home.name}:\n{output}"
        feeds = load_feeds(home / "rules" / "feeds.yaml").feeds
        assert sum(1 for f in feeds if f.id.startswith("gnews-")) >= 30
        assert "38-north" not in {f.id for f in feeds}
        assert "strait-drills" in output  # `rules test --text` matched the new rule
