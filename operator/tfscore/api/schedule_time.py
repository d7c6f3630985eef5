"""ScoringSchedule time arithmetic: cron parsing, next fire times in an IANA zone, missed runs (stdlib only).

Cron syntax (what Kubernetes CronJob accepts through robfig/cron v3 ``ParseStandard``, with the differences noted):
five fields ``minute hour day-of-month month day-of-week`` separated by spaces or tabs; each field a comma list of
``*``, ``N``, ``A-B``, ``*/S``, ``N/S`` (= N through the field's maximum, step S) or ``A-B/S``; names JAN-DEC and SUN-SAT
in any case; ``?`` means ``*`` in day-of-month and day-of-week; or one of the macros @yearly @annually @monthly @weekly
@daily @midnight @hourly. Day matching follows Vixie cron as robfig does: when both day fields are restricted (neither
written with a ``*`` or ``?``), a day matches if EITHER matches; otherwise both must. (``*/2`` counts as restricted,
``*/1`` and ``*,5`` do not — robfig's "star bit".)
Differences from Kubernetes, all on the strict side except one: ``TZ=``/``CRON_TZ=`` prefixes are refused (as Kubernetes
CronJob refuses any schedule containing "TZ": the zone is the ``timeZone`` field); ``?`` only in the day fields (robfig
takes it anywhere); ``@every`` is refused; steps are 1-999; empty list items (``1,,2``) are refused. Day-of-week 7 is
Sunday here (robfig refuses 7). A schedule whose days never exist (``0 0 30 2 *``) is refused; Kubernetes accepts it and
its controller then fails on it at run time.
Admission: ``SCHEDULE_RULE`` and ``TIME_ZONE_RULE`` (CEL, for x-kubernetes-validations) make the API server refuse what
``parse_schedule``/``load_zone`` refuse, with the same message, except that two checks are Python-only (a range whose
start is after its end, ``30-10``; days that never exist) and that a well-formed but unknown zone is refused by the API
server in its own words (see TIME_ZONE_RULE). Give the string fields a maxLength (cost estimates need one).

Next fire time (``next_after``) is a port of robfig/cron v3.0.1 ``SpecSchedule.Next`` (the code Kubernetes' CronJob
controller runs, with the zone given as ``TZ=<timeZone>``), including Go's ``time.Date`` rule for wall times that do not
exist or exist twice, so a ScoringSchedule fires exactly when a CronJob with the same schedule and timeZone would:
- Spring forward (a wall time that does not exist): robfig steps hours as absolute +1h, so a time inside the gap is
  never reached and that day's run is SKIPPED. ``30 2 * * *`` in Europe/Berlin fires 2026-03-28 01:30Z, then
  2026-03-30 00:30Z (nothing on the 29th); in America/New_York nothing on 2026-03-08. Hourly schedules simply see one
  hour fewer; ``0 3 * * *`` (just after the gap) fires as usual.
- Fall back (a wall time that happens twice): minutes and hours also step as absolute time, so a time inside the
  repeated hour fires TWICE, once per occurrence. ``30 2 * * *`` in Europe/Berlin fires 2026-10-25 00:30Z (CEST) and
  01:30Z (CET); ``30 1 * * *`` in America/New_York fires 2026-11-01 05:30Z (EDT) and 06:30Z (EST).
- A zone whose midnight does not exist follows robfig's one-hour correction, which skips that day of a midnight
  schedule: ``0 0 * * *`` in America/Santiago has no run on 2026-09-06 (nor America/Havana on 2026-03-08).
- Nothing found within five years (``0 0 29 2 1`` can wait 28) → None, as robfig returns the zero time.

Missed runs (``missed_runs``) follow Kubernetes v1.33 ``mostRecentScheduleTime`` (pkg/controller/cronjob/utils.go; the
controller's caller is ``nextScheduleTime``): look from the last schedule time (else the creation time), or from
``now - startingDeadlineSeconds`` if that is later; every fire time in (earliest, now] is unmet; the most recent one is
the one to start; more than 100 is "too many" (the controller then warns ``TooManyMissedTimes`` and still starts the most
recent). Kubernetes estimates the count from the first interval and may then miss the most recent time of an irregular
schedule (weekdays only, after a weekend); here the count is exact up to the cap and the most recent time always exact.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MISSED_CAP = 100  # Kubernetes CronJob: more than this many unmet times is "too many"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# ---------------------------------------------------------------- time zones

# Kubernetes' own timeZone check (pkg/apis/batch/validation validateTimeZone): IANA name components, no '.'/'..', no
# leading '-', not 'Local', then loadable. Python and CEL apply the same pattern with the same message. Loading is CEL's
# getHours(zone): an unknown zone is an evaluation error, and the API server then reports its own text instead of the
# rule's message, "unknown time zone Mars/Olympus evaluating rule: <rule>" (a directory such as "Europe": "is a
# directory evaluating rule: ..."); Python says "unknown time zone Mars/Olympus" too, as CronJob validation does.
_TZ_PART = r"[A-Za-z._+0-9-]{1,14}"
TIME_ZONE_PATTERN = rf"{_TZ_PART}(?:/{_TZ_PART})*"
_TZ_MESSAGE = "timeZone: '{}' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"
TIME_ZONE_RULE = {
    "rule": (f"self.matches(r'^{TIME_ZONE_PATTERN}$') && "
             "!self.split('/').exists(p, p == '.' || p == '..' || p.startsWith('-')) && "
             "self.lowerAscii() != 'local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0"),
    "messageExpression": "'" + _TZ_MESSAGE.replace("'{}'", "\\'' + self + '\\'") + "'",
}


def load_zone(name: str | ZoneInfo) -> ZoneInfo:
    """The IANA zone ``name`` (from the system tz database or the tzdata package), or one sentence naming timeZone."""
    if isinstance(name, ZoneInfo):
        return name
    if (not isinstance(name, str) or not re.fullmatch(TIME_ZONE_PATTERN, name) or name.lower() == "local"
            or any(p in (".", "..") or p.startswith("-") for p in name.split("/"))):
        raise ValueError(_TZ_MESSAGE.format(name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"timeZone: unknown time zone {name}") from None


# ---------------------------------------------------------------- parsing

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
MACROS = {  # robfig parseDescriptor
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


class _Field(NamedTuple):
    name: str
    lo: int
    hi: int
    top: int     # the end of '*' and of 'N/S' (day-of-week: 6, as robfig; 7 is only an alias of Sunday)
    names: list[str]
    value: str   # regex of one value (a number in range or a name)
    hint: str    # what the message lists as allowed


# One regex per field, exact about value ranges, shared by Python (re.fullmatch) and CEL (RE2, anchored): a field the
# API server accepts parses here except for the two checks RE2 cannot do (range start after end, days that never exist).
_FIELDS = (
    _Field("minute", 0, 59, 59, [], r"0*(?:[1-5]?[0-9])", "0-59"),
    _Field("hour", 0, 23, 23, [], r"0*(?:1?[0-9]|2[0-3])", "0-23"),
    _Field("day-of-month", 1, 31, 31, [], r"0*(?:[1-9]|[12][0-9]|3[01])", "1-31, ?"),
    _Field("month", 1, 12, 12, _MONTHS, r"0*(?:[1-9]|1[0-2])|(?i:" + "|".join(_MONTHS) + ")", "1-12, JAN-DEC"),
    _Field("day-of-week", 0, 7, 6, _DAYS, r"0*[0-7]|(?i:" + "|".join(_DAYS) + ")", "0-7 (0 and 7 are Sunday), SUN-SAT, ?"),
)
_STEP = r"(?:/0*[1-9][0-9]{0,2})?"


def _item_pattern(f: _Field) -> str:
    star = r"[*?]" if f.name.startswith("day-") else r"\*"  # ? only in the day fields
    return rf"(?:{star}|(?:{f.value})(?:-(?:{f.value}))?){_STEP}"


_SHAPE = "schedule: '{}' is not 5 fields (minute hour day-of-month month day-of-week) nor a macro such as @daily"
_MACRO_MESSAGE = "schedule: unknown macro '{}' (use " + ", ".join(MACROS) + ")"
_TZ_IN_SCHEDULE = "schedule: TZ= and CRON_TZ= prefixes are not allowed; set the timeZone field instead"


def _value_message(f: _Field, text: str) -> str:
    return f"schedule: {f.name} field '{text}' is not valid (use {f.hint}, *, a-b, */n, a-b/n, comma lists)"


def _schedule_cel() -> dict[str, str]:
    # One anchored matches() for the rule: CEL's cost estimate of findAll/split comprehensions is quadratic in
    # maxLength and refused; matches() costs ~ len(self) * len(regex) / 40.
    sp, field = r"[ \t]", r"[^ \t]+"
    lists = [f"(?:{_item_pattern(f)})(?:,(?:{_item_pattern(f)}))*" for f in _FIELDS]
    macros = "|".join(m[1:] for m in MACROS)
    msg = "''"
    for i in reversed(range(5)):
        tail = f"{sp}*$" if i == 4 else sp
        # find() results are sized by maxLength; findAll() elements are not, and concatenating them is priced as huge
        value = f"self.substring(self.find(r'^{sp}*(?:{field}{sp}+){{{i}}}').size()).find(r'^{field}')"
        text = _value_message(_FIELDS[i], "{}").replace("'{}'", f"\\'' + {value} + '\\'")
        msg = f"!self.matches(r'^{sp}*(?:{field}{sp}+){{{i}}}{lists[i]}{tail}') ? '{text}' : {msg}"
    return {
        "rule": (f"!self.contains('TZ') && self.matches(r'^{sp}*(?:@(?:{macros})|"
                 + f"{sp}+".join(lists) + f"){sp}*$')"),
        "messageExpression": (f"self.contains('TZ') ? '{_TZ_IN_SCHEDULE}' : self.matches(r'^{sp}*@') ? '"
                              + _MACRO_MESSAGE.replace("'{}'", "\\'' + self + '\\'") + "' : "
                              f"!self.matches(r'^{sp}*{field}(?:{sp}+{field}){{4}}{sp}*$') ? "
                              "'" + _SHAPE.replace("'{}'", "\\'' + self + '\\'") + f"' : {msg}"),
    }


SCHEDULE_RULE = _schedule_cel()


class Cron(NamedTuple):
    """A parsed schedule: the allowed values of each field, and whether each day field is unrestricted (robfig's
    star bit, which decides the day-of-month/day-of-week AND-or-OR rule)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]
    dom_star: bool
    dow_star: bool


_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _parse_field(f: _Field, text: str) -> tuple[set[int], bool]:
    values: set[int] = set()
    star = False
    pattern = _item_pattern(f)
    if not re.fullmatch(rf"(?:{pattern})(?:,(?:{pattern}))*", text):
        raise ValueError(_value_message(f, text))
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text or 1)
        if span in ("*", "?"):
            lo, hi = f.lo, f.top
            star = star or step == 1  # robfig: '*' and '*/1' keep the star bit, '*/2' does not
        else:
            a, _, b = span.partition("-")
            lo = _number(f, a)
            hi = _number(f, b) if b else f.top if step_text else lo
            if lo > hi:
                raise ValueError(f"schedule: {f.name} range '{span}' starts after it ends")
        values.update(range(lo, hi + 1, step))
    if f.names is _DAYS and 7 in values:
        values = (values - {7}) | {0}
    return values, star


def _number(f: _Field, text: str) -> int:
    return f.names.index(text.lower()) + f.lo if text.isalpha() else int(text)


def parse_schedule(text: str) -> Cron:
    """Parse a 5-field cron schedule or macro; bad input raises ValueError with one sentence naming the part."""
    if not isinstance(text, str):
        raise ValueError(f"schedule: must be a string, not {type(text).__name__}")
    if "TZ" in text:
        raise ValueError(_TZ_IN_SCHEDULE)
    fields = re.findall(r"[^ \t]+", text)
    if fields and fields[0].startswith("@"):
        if len(fields) != 1 or fields[0] not in MACROS:
            raise ValueError(_MACRO_MESSAGE.format(text))
        fields = MACROS[fields[0]].split()
    if len(fields) != 5:
        raise ValueError(_SHAPE.format(text))
    (minutes, _), (hours, _), (doms, dom_star), (months, _), (dows, dow_star) = (
        _parse_field(f, t) for f, t in zip(_FIELDS, fields, strict=True))
    # AND rule (day-of-week unrestricted): the days must exist in some month (Feb 29 counts; it comes every 4 years).
    if dow_star and not dom_star and not any(d <= _MAX_DAYS[m] for m in months for d in doms):
        raise ValueError(f"schedule: day-of-month '{fields[2]}' never occurs in month '{fields[3]}'")
    return Cron(frozenset(minutes), frozenset(hours), frozenset(doms), frozenset(months), frozenset(dows),
                dom_star, dow_star)


# ---------------------------------------------------------------- Go time, as robfig uses it
# Instants are Unix seconds (int); a ZoneInfo gives the wall clock. Only what SpecSchedule.Next needs.

def _wall(u: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(u, zone)


def _offset(u: int, zone: ZoneInfo) -> int:
    return int(_wall(u, zone).utcoffset().total_seconds())


def _go_date(year: int, month: int, day: int, hour: int, minute: int, second: int, zone: ZoneInfo) -> int:
    """Go's time.Date: normalises out-of-range fields; a wall time in a gap or overlap resolves as Go does (offset at
    the instant 'wall as UTC', then the offset at that corrected instant), which is not Python's fold rule."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    days = date(year, month, 1).toordinal() - _EPOCH_ORDINAL + day - 1
    w = days * 86400 + hour * 3600 + minute * 60 + second
    return w - _offset(w - _offset(w, zone), zone)


def _add_date(u: int, months: int, days: int, zone: ZoneInfo) -> int:
    t = _wall(u, zone)
    return _go_date(t.year, t.month + months, t.day + days, t.hour, t.minute, t.second, zone)


def _day_matches(c: Cron, t: datetime) -> bool:
    dom, dow = t.day in c.doms, (t.weekday() + 1) % 7 in c.dows
    return dom and dow if c.dom_star or c.dow_star else dom or dow


def _next(c: Cron, u: int, zone: ZoneInfo) -> int | None:
    """robfig/cron v3.0.1 SpecSchedule.Next on Unix seconds (its `goto WRAP` is the `continue`)."""
    u += 1
    added = False
    year_limit = _wall(u, zone).year + 5
    while True:
        t = _wall(u, zone)
        if t.year > year_limit:
            return None
        wrapped = False
        while t.month not in c.months:
            if not added:
                added, u = True, _go_date(t.year, t.month, 1, 0, 0, 0, zone)
            u = _add_date(u, 1, 0, zone)
            t = _wall(u, zone)
            if t.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not _day_matches(c, t):
            if not added:
                added, u = True, _go_date(t.year, t.month, t.day, 0, 0, 0, zone)
            u = _add_date(u, 0, 1, zone)
            t = _wall(u, zone)
            if t.hour != 0:  # robfig's fix for zones whose midnight does not exist
                u += (24 - t.hour) * 3600 if t.hour > 12 else -t.hour * 3600
                t = _wall(u, zone)
            if t.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while t.hour not in c.hours:
            if not added:
                added, u = True, _go_date(t.year, t.month, t.day, t.hour, 0, 0, zone)
            u += 3600
            t = _wall(u, zone)
            if t.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while t.minute not in c.minutes:
            if not added:
                added, u = True, u - u % 60
            u += 60
            t = _wall(u, zone)
            if t.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while t.second != 0:  # the standard parser's seconds field is "0"
            added = True
            u += 1
            t = _wall(u, zone)
            if t.second == 0:
                wrapped = True
                break
        if wrapped:
            continue
        return u


# ---------------------------------------------------------------- public API

def _unix(t: datetime) -> int:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time {t.isoformat()} has no time zone (use an aware datetime)")
    return (t - _EPOCH) // timedelta(seconds=1)


def _utc(u: int) -> datetime:
    return _EPOCH + timedelta(seconds=u)


def next_after(schedule: str | Cron, t: datetime, tz: str | ZoneInfo = "UTC") -> datetime | None:
    """The first fire time strictly after ``t`` (aware), computed in zone ``tz``, as an aware UTC datetime; None when
    the schedule does not fire within five years."""
    c = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    u = _next(c, _unix(t), load_zone(tz))
    return None if u is None else _utc(u)


def next_times(schedule: str | Cron, tz: str | ZoneInfo, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` fire times after ``after`` (fewer if the schedule stops firing), aware UTC."""
    c = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    zone, out, t = load_zone(tz), [], after
    while len(out) < n and (t := next_after(c, t, zone)) is not None:
        out.append(t)
    return out


class Missed(NamedTuple):
    most_recent: datetime | None  # the unmet time to start now, or None
    count: int                    # unmet times in (earliest, now], exact up to MISSED_CAP; MISSED_CAP + 1 = more
    too_many: bool                # count > MISSED_CAP (CronJob's TooManyMissedTimes)


def missed_runs(schedule: str | Cron, tz: str | ZoneInfo, since: datetime, now: datetime,
                starting_deadline_seconds: int | None = None) -> Missed:
    """Unmet fire times after ``since`` (the last schedule time, else the creation time) up to ``now`` inclusive,
    looking back no further than ``starting_deadline_seconds`` before now, by Kubernetes CronJob's rules."""
    c = parse_schedule(schedule) if isinstance(schedule, str) else schedule
    zone = load_zone(tz)
    earliest, end = _unix(since), _unix(now)
    if starting_deadline_seconds is not None:
        earliest = max(earliest, end - starting_deadline_seconds)
    times: list[int] = []
    u = _next(c, earliest, zone)
    while u is not None and u <= end and len(times) <= MISSED_CAP:
        times.append(u)
        u = _next(c, u, zone)
    if len(times) <= MISSED_CAP:
        return Missed(_utc(times[-1]) if times else None, len(times), False)
    # Too many to walk: look back from now over a doubling window (exact, unlike Kubernetes' single interval jump).
    back = times[1] - times[0]
    while True:
        start = max(end - back, times[-1])
        last, u = None, _next(c, start, zone)
        while u is not None and u <= end:
            last, u = u, _next(c, u, zone)
        if last is not None or start == times[-1]:
            return Missed(_utc(last if last is not None else times[-1]), MISSED_CAP + 1, True)
        back *= 2
