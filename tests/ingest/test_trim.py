"""A poll cycle gives the memory it freed back to the system (`ingest.trim`), measured on
this process's resident size: blocks freed in the middle of the C heap stay resident until
the heap is trimmed."""

from __future__ import annotations

from pathlib import Path

from monitor.ingest.trim import give_back

MIB = 1024 * 1024


def _resident() -> int:
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_freed_blocks_in_the_heap_go_back_to_the_system() -> None:
    # Blocks larger than Python's own small-object allocator (512 bytes) come from the C heap;
    # freeing all but the last leaves ~120 MiB that the heap cannot shrink past.
    blocks = [bytes(2048) + n.to_bytes(4, "little") for n in range(60_000)]
    last = blocks[-1]
    del blocks
    before = _resident()
    assert give_back()
    after = _resident()
    assert before - after > 60 * MIB, (before // MIB, after // MIB)
    assert len(last) == 2052  # held to the end: the heap's top stays in use
