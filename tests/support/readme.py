"""Running a README shell block as written, the way a reader pastes it into a fresh directory.

Each line of the block is one command; each is echoed with a `>>> ` marker first, so the
output can be cut per command. `monitor` is the one of the running interpreter's environment,
and no MONITOR_* variable of the test run leaks in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_block(section: str) -> str:
    """The first ```sh block of the README's `## {section}` section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```sh\n", 1)[1].split("```", 1)[0]


def run_block(block: str, cwd: Path) -> dict[str, str]:
    """Run `block` in `cwd` under `set -e`; fail with the whole output unless it exits 0.
    Returns each command line's output, by the line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = "set -e\n" + "".join(f"echo '>>> {line}'\n{line}\n" for line in block.splitlines())
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(part.split("\n", 1) for part in done.stdout.split(">>> ")[1:])
