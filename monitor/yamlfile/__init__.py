"""Reading and editing the YAML files under `rules/`: value checks that report file:line:column
(`check`), and comment-preserving, atomic edits (`edit`). Shared by every loader and editor.

Entry points: the `as_*` checks and `Invalid` in `check`; `round_trip_yaml` and
`atomic_write` in `edit`.
"""

from __future__ import annotations
