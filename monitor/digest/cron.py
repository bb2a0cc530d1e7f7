"""Schedules of routes: 5-field cron expressions (or `immediate`) and IANA time zones.

Routes are written in standard cron, and APScheduler 3 runs them. The two differ: APScheduler
3 numbers weekdays from Monday (0 = mon) where cron starts on Sunday (0 = sun), and it ANDs
day-of-month with day-of-week where cron ORs them. So `as_schedule` rewrites the weekday field
to names (`1-5` -> `mon,tue,wed,thu,fri`) and refuses a schedule restricting both days: then
`CronTrigger.from_crontab(schedule)` means what cron means. `schedule_trigger` does that.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger

from monitor.models import Route
from monitor.yamlfile.check import Invalid, as_text

__all__ = ["as_schedule", "as_timezone", "schedule_trigger"]

_CRON_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *"}
_CRON_MACROS |= {"@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *"}
_CRON_MACROS["@annually"] = _CRON_MACROS["@yearly"]
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's order: 0 = Sunday
_CRON_HINT = "5 fields: minute hour day-of-month month day-of-week, e.g. '0 7 * * 1-5'"


def as_timezone(value: Any) -> str:
    name = as_text("timezone", value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, e.g. "Asia"
        close = difflib.get_close_matches(name, available_timezones(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "an IANA name such as Asia/Tokyo"
        raise Invalid(f"unknown timezone {name!r}", hint) from None
    return name


# --- schedules -------------------------------------------------------------------------------


def _cron_day(word: str, *, end: bool = False) -> int:
    name = word.lower()
    if name in _CRON_DAYS:
        # `fri-sun`: Sunday closes a range as 7, as in Vixie cron.
        return 7 if end and name == "sun" else _CRON_DAYS.index(name)
    if word.isdigit() and int(word) <= 7:
        return int(word)
    raise Invalid(
        f"bad day of week {word!r} in the schedule", "0-7 (0 and 7 are Sunday) or sun-sat"
    )


def _cron_days(part: str) -> set[int]:
    """The cron weekdays (0 = Sunday) of one comma-separated part: `1-5`, `*/2`, `sat`."""
    span, _, step_text = part.partition("/")
    if step_text and not (step_text.isdigit() and int(step_text) > 0):
        raise Invalid(f"bad step {step_text!r} in the day-of-week field", _CRON_HINT)
    first_text, dash, last_text = span.partition("-")
    if span == "*":
        first, last = 0, 6
    else:
        first = _cron_day(first_text)
        last = _cron_day(last_text, end=True) if dash else (6 if step_text else first)
    if last < first:
        raise Invalid(
            f"the weekday range {span!r} wraps around", "write two parts, e.g. fri-sat,sun"
        )
    return {day % 7 for day in range(first, last + 1, int(step_text or 1))}


def _weekdays(field: str) -> str:
    """Cron's weekday field as APScheduler 3 reads it the same way: a list of names."""
    if field in ("*", "?"):
        return "*"
    days = set().union(*(_cron_days(part) for part in field.split(",")))
    if len(days) == 7:
        return "*"
    # Listed Monday first, the way APScheduler (and people) read a week.
    return ",".join(_CRON_DAYS[day] for day in (1, 2, 3, 4, 5, 6, 0) if day in days)


def as_schedule(value: Any, timezone: str = "UTC") -> str:
    """`immediate`, or a 5-field cron expression (or `@daily`...) rewritten so that APScheduler
    3's `CronTrigger.from_crontab` reads it as cron does."""
    text = " ".join(as_text("schedule", value).split())
    if text == "immediate":
        return text
    fields = _CRON_MACROS.get(text.lower(), text).split()
    if len(fields) != 5:
        raise Invalid(
            f"bad schedule {text!r}: {len(fields)} fields, cron has 5",
            _CRON_HINT + " or 'immediate'",
        )
    if fields[2] not in ("*", "?") and fields[4] not in ("*", "?"):
        hint = "cron runs when EITHER day matches: write one route for each"
        raise Invalid(f"schedule {text!r} restricts both the day of month and of week", hint)
    # `?` (Quartz's "no specific value") is `*` to cron and APScheduler alike.
    day = "*" if fields[2] == "?" else fields[2]
    schedule = " ".join([*fields[:2], day, fields[3], _weekdays(fields[4])])
    try:
        trigger = CronTrigger.from_crontab(schedule, timezone=timezone)
    except ValueError as error:
        raise Invalid(f"bad schedule {text!r}: {error}", _CRON_HINT) from None
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise Invalid(f"schedule {text!r} never runs (no such date)", _CRON_HINT)
    return schedule


def schedule_trigger(route: Route) -> CronTrigger | None:
    """The APScheduler trigger of a route (cron weekdays kept: `0` is Sunday); None for an
    `immediate` route. Raises `Invalid` for a schedule that `as_schedule` would refuse."""
    schedule = as_schedule(route.schedule, route.timezone)
    if schedule == "immediate":
        return None
    return CronTrigger.from_crontab(schedule, timezone=ZoneInfo(route.timezone))
