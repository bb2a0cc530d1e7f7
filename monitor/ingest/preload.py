"""Imported by the fork server of the poll workers (`remote`), once, before it forks any.

What every worker needs is loaded here, so that a worker forked from the server starts with
it in memory instead of loading it again: the worker's code, the modules httpx only imports
at its first request, and the TLS context (building one loads the CA store); and what the
linking process (`linkproc`) runs: the store and the linker. Without this a
worker spent ~0.25 s of CPU starting, every cycle of `monitor poll`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import warnings

from monitor.ingest import linking, remote
from monitor.ingest.fetch import LAZY_MODULES, _tls_context

for name in LAZY_MODULES:
    with contextlib.suppress(ImportError):  # another httpx version: then loaded on first use
        importlib.import_module(name)
_tls_context()
# A main module run with -m is preloaded too (`forking._preload`); each worker then runs it
# again as multiprocessing does, and runpy warns that it was imported already: it was, here.
warnings.filterwarnings("ignore", "'.*' found in sys.modules after import", RuntimeWarning)

__all__ = ["linking", "remote"]

# Everything loaded so far is kept out of the collector's sight: a collection in a worker
# would otherwise write to every object's header and so copy the pages it shares with this
# server (~6 MiB a worker).
gc.freeze()
