"""README "The demo": its shell block runs as written in a fresh directory, and each command
it lists after `monitor demo` answers with what the section promises.

Expected: exit 0; the status lists the demo's feeds, the search finds items of the rule it
names, and `rules test` reports matches of the rule it names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def demo_block() -> str:
    section = README.split("\n## The demo\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_demo_block_runs_as_written(tmp_path: Path) -> None:
    block = demo_block()
    assert block.startswith("monitor demo") and block.count("monitor --rules") >= 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Each command echoes a marker first, so the output can be cut per command.
    script = "set -e\n" + "".join(f"echo '>>> {line}'\n{line}\n" for line in block.splitlines())
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = dict(part.split("\n", 1) for part in done.stdout.split(">>> ")[1:])
    status = next(v for k, v in outputs.items() if k.endswith(" status"))
    assert "asia-wire" in status and "manila-courier" in status
    search = next(v for k, v in outputs.items() if "--rule korea-missiles" in k)
    assert "korea-missiles" in search and "[" in search  # at least one item listed
    tested = next(v for k, v in outputs.items() if "rules test" in k)
    assert "china-japan-row [high]" in tested  # a match line, with the rule's severity
