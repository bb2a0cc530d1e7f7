"""Reading and editing the YAML files under `rules/`: value checks that report file:line:column
(`check`), and comment-preserving, atomic edits (`edit`). Shared by every loader and editor.

Entry points: `read_text` and `parse_yaml` (a regular file, UTF-8, YAML not nested too deep),
the `as_*` checks and `Invalid` in `check`; `round_trip_yaml`, `atomic_write` and `file_lock`
(taken by every command that edits a file under `rules/`) in `edit`.
"""

from __future__ import annotations
