"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests run on shared, noisy CI machines: no per-example deadline, and a fixed seed
# sequence so a run can be reproduced exactly. Parser properties discard inputs the parser
# rejects on purpose (`assume`), which is expected, not a sign of a bad strategy.
settings.register_profile(
    "monitor",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
settings.load_profile("monitor")
