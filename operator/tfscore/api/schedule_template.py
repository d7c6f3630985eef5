"""Per-run templates of a ScoringSchedule: strings (URIs, where clauses) that name the run's scheduled time.

Syntax (the only one; CEL ``TEMPLATE_RULE`` admits exactly what ``check_template`` admits):

- ``${scheduledTime}`` — the scheduled time, ISO 8601 in UTC: ``2026-11-24T10:00:00Z``.
- ``${scheduledTime:FORMAT}`` — strftime ``FORMAT`` applied to the scheduled time IN THE SCHEDULE'S timeZone (``dt=``
  partitions are usually local days): ``${scheduledTime:%Y-%m-%d}`` → ``2026-11-24``. Directives: %Y %m %d %H %M %S
  %j %y %b %B %a %A %p %I %U %W %w %u %V %G %z %Z %%; other characters are literal except ``$ { }``.
- A shift before the format or the closing brace: ``${scheduledTime-1d:%Y-%m-%d}``, ``${scheduledTime+30m}``,
  ``${scheduledTime-1h:%H}``; one signed integer (up to 6 digits) with unit s, m, h (elapsed time: ``-1h`` is 3600 s
  earlier, so across a DST change the local hour may move by 0 or 2) or d, w (calendar days in the time zone: ``-1d`` is
  the same wall time yesterday, 23 or 25 hours earlier across a DST change; a wall time that does not exist or exists
  twice resolves as the cron arithmetic does, see schedule_time).
- ``${scheduleName}`` — the ScoringSchedule's name (no shift, no format).
- Escapes: before a ``{``, ``$$`` stands for one literal ``$``: ``$${scheduledTime}`` renders ``${scheduledTime}``,
  ``$$${scheduledTime}`` renders ``$`` followed by the time. A ``$`` not followed by ``{`` is always literal (``a$b``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .schedule_time import _go_date, _unix, _utc, _wall, load_zone

VARIABLES = ("scheduledTime", "scheduleName")
_DIRECTIVES = "YmdHMSjybBaApIUWwuVGzZ%"
_UNITS = {"s": 1, "m": 60, "h": 3600}

# A template is a sequence of chunks, each consuming a whole run of '$' (a run always starts after a non-'$'):
# a plain character, dollars followed by neither '$' nor '{' (literal), an even run + '{' (escape: half the dollars and a
# literal '{'), an odd run + '{' + a valid reference + '}'; dollars may end the text. One anchored regex judges a whole
# template in Python (re.fullmatch) and in CEL (RE2 matches(): its cost estimate is linear, where a findAll()
# comprehension's is quadratic in maxLength and refused); the longest valid prefix locates the bad occurrence.
_FORMAT = rf"(?:[^%}}${{]|%[{_DIRECTIVES}])*"
_BODY_PATTERN = rf"scheduledTime(?:[+-][0-9]{{1,6}}[smhdw])?(?::{_FORMAT})?|scheduleName"
_CHUNKS = rf"(?:[^$]|[$]+[^${{]|(?:[$][$])+[{{]|(?:[$][$])*[$][{{](?:{_BODY_PATTERN})[}}])*"
_OCCURRENCE = r"[$]+[{][^}${]*[}]?"  # what the message quotes: the run, '{', the body up to '}' (or '$', '{')
_BODY = re.compile(rf"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<shift>[+-][0-9]{{1,6}}[smhdw])?(?::(?P<format>{_FORMAT}))?")

TEMPLATE_HINT = ("is not a valid reference: use ${scheduledTime}, ${scheduledTime:FORMAT} or "
                 "${scheduledTime-1d:FORMAT} (shift units s m h d w; FORMAT of strftime directives), "
                 "${scheduleName}, or $${ for a literal ${")


def template_rule(field: str = "template") -> dict[str, str]:
    """The CEL rule for a template string field; its message starts with ``field`` as check_template's does."""
    bad = f"self.substring(self.find(r'^{_CHUNKS}').size()).find(r'^{_OCCURRENCE}')"
    return {
        "rule": f"self.matches(r'^{_CHUNKS}[$]*$')",
        "messageExpression": f"'{field}: \\'' + {bad} + '\\' {TEMPLATE_HINT}'",
    }


TEMPLATE_RULE = template_rule()


def _bad(occurrence: str, why: str, field: str) -> ValueError:
    return ValueError(f"{field}: '{occurrence}' {why}")


def check_template(text: str, field: str = "template") -> str:
    """Validate a template without rendering it: the Python side of template_rule(field), with the same message."""
    if not re.fullmatch(rf"{_CHUNKS}[$]*", text):
        rest = text[re.match(_CHUNKS, text).end():]
        raise _bad(re.match(_OCCURRENCE, rest).group(), TEMPLATE_HINT, field)
    return text


def _shifted(t: datetime, shift: str | None, zone: ZoneInfo) -> datetime:
    if not shift:
        return t
    n, unit = int(shift[:-1]), shift[-1]
    if unit in _UNITS:
        return t + timedelta(seconds=n * _UNITS[unit])
    days = n * (7 if unit == "w" else 1)
    w = _wall(_unix(t), zone)  # calendar shift of the wall clock, resolved by Go's time.Date rule (as the cron math)
    return _utc(_go_date(w.year, w.month, w.day + days, w.hour, w.minute, w.second, zone))


def render(text: str, variables: Mapping[str, object], tz: str | ZoneInfo = "UTC", field: str = "template") -> str:
    """Render ``text`` with ``variables`` (``scheduledTime``: aware datetime; ``scheduleName``: str), formatting in the
    schedule's zone ``tz``. An unknown or missing variable, a bad shift or format raises one sentence naming it."""
    check_template(text, field)
    zone = load_zone(tz)
    out, pos = [], 0
    for m in re.finditer(_OCCURRENCE, text):  # valid now: every odd run's occurrence is a whole reference
        start, end, occ = m.start(), m.end(), m.group()
        dollars = len(occ) - len(occ.lstrip("$"))
        out.append(text[pos:start] + "$" * (dollars // 2))
        if dollars % 2 == 0:
            out.append("{")
            pos = start + dollars + 1  # what follows the '{' is ordinary text
            continue
        body = _BODY.fullmatch(occ[dollars + 1:-1])
        name, shift, fmt = body["name"], body["shift"], body["format"]
        if name not in variables:
            raise _bad(occ, f"names variable {name}, which this run does not set", field)
        value = variables[name]
        if name == "scheduledTime":
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise _bad(occ, "needs scheduledTime as an aware datetime", field)
            try:
                t = _shifted(value, shift, zone)
                out.append(t.astimezone(zone).strftime(fmt) if fmt is not None
                           else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            except (OverflowError, ValueError, OSError):
                raise _bad(occ, "shifts the time out of the years 1-9999", field) from None
        else:
            out.append(str(value))
        pos = end
    return "".join(out) + text[pos:]
