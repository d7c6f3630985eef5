"""ScoringSchedule time arithmetic and templates (tfscore.api.schedule_time, tfscore.api.schedule_template).

Expected DST times were cross-checked against robfig/cron v3.0.1 itself (the library Kubernetes' CronJob controller
runs), built from the Go module proxy into a throwaway differential oracle; the other expectations come from a brute-force
minute scan of the cron definition below, or are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tfscore.api.schedule_template import TEMPLATE_HINT, TEMPLATE_RULE, check_template, render, template_rule
from tfscore.api.schedule_time import (
    MISSED_CAP,
    SCHEDULE_RULE,
    TIME_ZONE_RULE,
    load_zone,
    missed_runs,
    next_after,
    next_times,
    parse_schedule,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hhmm(times: list[datetime]) -> list[str]:
    return [t.strftime("%m-%d %H:%M") for t in times]


# ---------------------------------------------------------------- parsing

@pytest.mark.parametrize("text,minutes,hours,doms,months,dows", [
    ("*/15 9-17 * * MON-FRI", {0, 15, 30, 45}, set(range(9, 18)), set(range(1, 32)), set(range(1, 13)), {1, 2, 3, 4, 5}),
    ("1-30/5 0 1,15 jan-Mar ?", {1, 6, 11, 16, 21, 26}, {0}, {1, 15}, {1, 2, 3}, set(range(7))),
    ("5/20 */6 ? 2/5 sun", {5, 25, 45}, {0, 6, 12, 18}, set(range(1, 32)), {2, 7, 12}, {0}),
    ("0 0 * * 7", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {0}),            # 7 is Sunday
    ("0 0 * * 5-7", {0}, {0}, set(range(1, 32)), set(range(1, 13)), {5, 6, 0}),    # Fri-Sun
    ("007 00 * * *", {7}, {0}, set(range(1, 32)), set(range(1, 13)), set(range(7))),
    ("0\t0  *   * *", {0}, {0}, set(range(1, 32)), set(range(1, 13)), set(range(7))),
])
def test_fields_parse_to_their_values(text, minutes, hours, doms, months, dows):
    c = parse_schedule(text)
    assert (set(c.minutes), set(c.hours), set(c.doms), set(c.months), set(c.dows)) == (minutes, hours, doms, months, dows)


@pytest.mark.parametrize("macro,spec", [("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
                                        ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
                                        ("@hourly", "0 * * * *"), ("  @daily ", "0 0 * * *")])
def test_macros_are_their_five_field_forms(macro, spec):
    assert parse_schedule(macro) == parse_schedule(spec)


@pytest.mark.parametrize("text,dom_star,dow_star", [
    ("0 0 * * *", True, True), ("0 0 ? * ?", True, True), ("0 0 */1 * *", True, True),
    ("0 0 *,5 * 1", True, False), ("0 0 */2 * *", False, True), ("0 0 1-31 * MON", False, False),
])
def test_star_bit_as_robfig_sets_it(text, dom_star, dow_star):
    c = parse_schedule(text)
    assert (c.dom_star, c.dow_star) == (dom_star, dow_star)


HINT = "*, a-b, */n, a-b/n, comma lists)"


@pytest.mark.parametrize("text,message", [
    ("61 * * * *", f"schedule: minute field '61' is not valid (use 0-59, {HINT}"),
    ("0,61 * * * *", f"schedule: minute field '0,61' is not valid (use 0-59, {HINT}"),
    ("* 24 * * *", f"schedule: hour field '24' is not valid (use 0-23, {HINT}"),
    ("* * 0 * *", f"schedule: day-of-month field '0' is not valid (use 1-31, ?, {HINT}"),
    ("* * * 13 *", f"schedule: month field '13' is not valid (use 1-12, JAN-DEC, {HINT}"),
    ("* * * foo *", f"schedule: month field 'foo' is not valid (use 1-12, JAN-DEC, {HINT}"),
    ("* * * * 8", f"schedule: day-of-week field '8' is not valid (use 0-7 (0 and 7 are Sunday), SUN-SAT, ?, {HINT}"),
    ("? * * * *", f"schedule: minute field '?' is not valid (use 0-59, {HINT}"),
    ("*/0 * * * *", f"schedule: minute field '*/0' is not valid (use 0-59, {HINT}"),
    ("*/1000 * * * *", f"schedule: minute field '*/1000' is not valid (use 0-59, {HINT}"),
    ("1,,2 * * * *", f"schedule: minute field '1,,2' is not valid (use 0-59, {HINT}"),
    ("*-5 * * * *", f"schedule: minute field '*-5' is not valid (use 0-59, {HINT}"),
    ("* * * *", "schedule: '* * * *' is not 5 fields (minute hour day-of-month month day-of-week) nor a macro such as "
                "@daily"),
    ("0 0 * * * *", "schedule: '0 0 * * * *' is not 5 fields (minute hour day-of-month month day-of-week) nor a macro "
                    "such as @daily"),
    ("", "schedule: '' is not 5 fields (minute hour day-of-month month day-of-week) nor a macro such as @daily"),
    ("@every 1h", "schedule: unknown macro '@every 1h' (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
                  "@hourly)"),
    ("@Daily", "schedule: unknown macro '@Daily' (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
               "@hourly)"),
    ("TZ=UTC 0 * * * *", "schedule: TZ= and CRON_TZ= prefixes are not allowed; set the timeZone field instead"),
    ("CRON_TZ=Europe/Berlin 0 * * * *",
     "schedule: TZ= and CRON_TZ= prefixes are not allowed; set the timeZone field instead"),
    # Python-only (RE2 cannot compare numbers or know month lengths):
    ("30-10 * * * *", "schedule: minute range '30-10' starts after it ends"),
    ("0 0 * * FRI-MON", "schedule: day-of-week range 'FRI-MON' starts after it ends"),
    ("0 0 30 2 *", "schedule: day-of-month '30' never occurs in month '2'"),
    ("0 0 31 4,6,9,11 *", "schedule: day-of-month '31' never occurs in month '4,6,9,11'"),
])
def test_bad_schedules_name_the_field_and_part(text, message):
    with pytest.raises(ValueError) as info:
        parse_schedule(text)
    assert str(info.value) == message


def test_days_that_exist_through_the_or_rule_are_accepted():
    assert parse_schedule("0 0 30 2 MON").dows == {1}   # both restricted: every Monday, OR Feb 30 (never)
    assert parse_schedule("0 0 29 2 *").doms == {29}    # Feb 29 exists every 4 years


def _cel_regex(rule: str) -> str:
    return re.search(r"self\.matches\(r'\^(.*)\$'\)", rule).group(1)


@pytest.mark.parametrize("text", ["*/15 9-17 * * MON-FRI", "1-30/5 0 1,15 jan-Mar ?", "@hourly", " @daily ", "0 0 * * 7",
                                  "61 * * * *", "* * * *", "@every 1h", "? * * * *", "1,,2 * * * *", "0 0 * * 8",
                                  "*/1000 * * * *", "0\t0 * * *"])
def test_the_cel_schedule_regex_is_the_python_grammar(text):
    # The API server runs SCHEDULE_RULE's regex with RE2; this regex uses only syntax RE2 and Python share.
    try:
        parse_schedule(text)
        ok = True
    except ValueError:
        ok = False
    assert bool(re.fullmatch(_cel_regex(SCHEDULE_RULE["rule"]), text)) == ok


# ---------------------------------------------------------------- time zones

@pytest.mark.parametrize("name,message", [
    ("Mars/Olympus", "timeZone: unknown time zone Mars/Olympus"),
    ("Europe", "timeZone: unknown time zone Europe"),
    ("Local", "timeZone: 'Local' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"),
    ("+05:00", "timeZone: '+05:00' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"),
    ("../etc/passwd", "timeZone: '../etc/passwd' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, "
                      "UTC)"),
    ("", "timeZone: '' is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"),
])
def test_bad_time_zones_name_timezone(name, message):
    with pytest.raises(ValueError) as info:
        load_zone(name)
    assert str(info.value) == message
    with pytest.raises(ValueError, match="timeZone"):
        next_after("0 * * * *", utc("2026-01-01T00:00"), name)


def test_the_cel_time_zone_regex_is_the_python_one():
    pattern = _cel_regex(TIME_ZONE_RULE["rule"])
    assert re.fullmatch(pattern, "America/Argentina/Buenos_Aires") and re.fullmatch(pattern, "Etc/GMT+5")
    assert not re.fullmatch(pattern, "+05:00") and not re.fullmatch(pattern, "Europe/Berlin ")


# ---------------------------------------------------------------- next fire times

def _brute(minutes, hours, doms, months, dows, either, after: datetime, n: int) -> list[datetime]:
    """The cron definition itself, day by day in UTC (OR of the day fields when `either`)."""
    out, day = [], after.replace(hour=0, minute=0, second=0, microsecond=0)
    while len(out) < n:
        dom, dow = day.day in doms, (day.weekday() + 1) % 7 in dows
        if day.month in months and ((dom or dow) if either else (dom and dow)):
            out += [t for h in sorted(hours) for m in sorted(minutes)
                    if (t := day.replace(hour=h, minute=m)) > after]
        day += timedelta(days=1)
    return out[:n]


ALL_DOM, ALL_MONTHS, ALL_DOW = set(range(1, 32)), set(range(1, 13)), set(range(7))


@pytest.mark.parametrize("text,sets,either", [
    ("0 12 13 * FRI", ({0}, {12}, {13}, ALL_MONTHS, {5}), True),            # Vixie: the 13th OR any Friday
    ("0 0 1 * */2", ({0}, {0}, {1}, ALL_MONTHS, {0, 2, 4, 6}), True),       # */2 drops the star bit: OR
    ("0 0 1 * */1", ({0}, {0}, {1}, ALL_MONTHS, ALL_DOW), False),           # */1 keeps it: AND (the 1st)
    ("0 0 1-7 * MON", ({0}, {0}, set(range(1, 8)), ALL_MONTHS, {1}), True),
    ("0 0 * * MON", ({0}, {0}, ALL_DOM, ALL_MONTHS, {1}), False),
    ("*/20 */7 * * *", ({0, 20, 40}, {0, 7, 14, 21}, ALL_DOM, ALL_MONTHS, ALL_DOW), False),
    ("30 23 31 * *", ({30}, {23}, {31}, ALL_MONTHS, ALL_DOW), False),        # month ends: only 31-day months
    ("0 0 28-31 * *", ({0}, {0}, {28, 29, 30, 31}, ALL_MONTHS, ALL_DOW), False),
])
def test_next_times_follow_the_cron_definition(text, sets, either):
    after = utc("2026-01-20T07:41:13")
    assert next_times(text, "UTC", after, 12) == _brute(*sets, either, after, 12)


def test_next_is_strictly_after_and_utc():
    t = next_after("*/15 * * * *", utc("2026-05-01T10:15:00"))
    assert t == utc("2026-05-01T10:30") and t.tzinfo is UTC
    assert next_after("*/15 * * * *", utc("2026-05-01T10:14:59.999")) == utc("2026-05-01T10:15")
    berlin = datetime(2026, 5, 1, 12, 15, tzinfo=ZoneInfo("Europe/Berlin"))  # aware input in any zone
    assert next_after("*/15 * * * *", berlin) == utc("2026-05-01T10:30")


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="has no time zone"):
        next_after("* * * * *", datetime(2026, 1, 1))


def test_feb_29_and_month_ends():
    assert next_times("0 0 29 2 *", "UTC", utc("2026-03-01T00:00"), 3) == [
        utc("2028-02-29T00:00"), utc("2032-02-29T00:00"), utc("2036-02-29T00:00")]
    assert next_times("0 0 31 * *", "UTC", utc("2026-01-31T00:00"), 4) == [
        utc("2026-03-31T00:00"), utc("2026-05-31T00:00"), utc("2026-07-31T00:00"), utc("2026-08-31T00:00")]
    assert next_times("0 9 30 * *", "Europe/Berlin", utc("2026-01-31T00:00"), 2) == [
        utc("2026-03-30T07:00"), utc("2026-04-30T07:00")]  # February has no 30th; CEST from March 29


def test_nothing_within_five_years_is_none():
    # robfig searches five years ahead: from 2097 the next Feb 29 is 2104 (2100 is not a leap year).
    assert next_after("0 0 29 2 *", utc("2097-03-01T00:00")) is None
    assert next_times("0 0 29 2 *", "UTC", utc("2095-01-01T00:00"), 3) == [utc("2096-02-29T00:00")]


@pytest.mark.parametrize("text,tz,after,expected", [
    # Spring forward, Berlin 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist, that day's run is skipped.
    ("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00", ["03-28 01:30", "03-30 00:30", "03-31 00:30"]),
    ("*/30 1-3 * * *", "Europe/Berlin", "2026-03-28T23:00",
     ["03-29 00:00", "03-29 00:30", "03-29 01:00", "03-29 01:30", "03-29 23:00"]),   # 01:00 01:30 03:00 03:30
    ("0 3 * * *", "Europe/Berlin", "2026-03-28T12:00", ["03-29 01:00", "03-30 01:00"]),  # just after the gap: runs
    # Fall back, Berlin 2026-10-25 03:00 CEST -> 02:00 CET: 02:00-02:59 happens twice, and so does the run.
    ("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00", ["10-24 00:30", "10-25 00:30", "10-25 01:30", "10-26 01:30"]),
    ("0 2 * * *", "Europe/Berlin", "2026-10-24T12:00", ["10-25 00:00", "10-25 01:00", "10-26 01:00"]),
    # Spring forward, New York 2026-03-08 02:00 EST -> 03:00 EDT: no 02:30 run on the 8th.
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00", ["03-09 06:30", "03-10 06:30"]),
    # Fall back, New York 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 twice (EDT 05:30Z, EST 06:30Z).
    ("30 1 * * *", "America/New_York", "2026-10-31T12:00", ["11-01 05:30", "11-01 06:30", "11-02 06:30"]),
    ("0 * * * *", "America/New_York", "2026-11-01T04:30", ["11-01 05:00", "11-01 06:00", "11-01 07:00"]),
    # Midnight that does not exist (Santiago 2026-09-06 00:00 -> 01:00): robfig's correction skips that day.
    ("0 0 * * *", "America/Santiago", "2026-09-04T12:00", ["09-05 04:00", "09-07 03:00", "09-08 03:00"]),
])
def test_dst_transitions_as_robfig(text, tz, after, expected):
    assert hhmm(next_times(text, tz, utc(after), len(expected))) == expected


def test_wall_time_stays_local_across_dst():
    # 09:00 local every weekday: 08:00Z in winter, 07:00Z in summer (Berlin), 14:00Z/13:00Z (New York).
    assert hhmm(next_times("0 9 * * 1-5", "Europe/Berlin", utc("2026-03-26T12:00"), 3)) == [
        "03-27 08:00", "03-30 07:00", "03-31 07:00"]
    assert hhmm(next_times("0 9 * * 1-5", "America/New_York", utc("2026-03-06T20:00"), 2)) == [
        "03-09 13:00", "03-10 13:00"]


# ---------------------------------------------------------------- missed runs

NOW = utc("2026-06-10T10:32:20")  # a Wednesday


def test_no_unmet_time():
    assert missed_runs("0 * * * *", "UTC", utc("2026-06-10T10:00"), NOW) == (None, 0, False)


def test_the_due_time_and_a_few_missed():
    assert missed_runs("*/5 * * * *", "UTC", utc("2026-06-10T10:27"), NOW) == (utc("2026-06-10T10:30"), 1, False)
    assert missed_runs("*/5 * * * *", "UTC", utc("2026-06-10T10:00"), NOW) == (utc("2026-06-10T10:30"), 6, False)
    # since is exclusive (the last schedule time ran), now inclusive
    assert missed_runs("*/5 * * * *", "UTC", utc("2026-06-10T10:25"), utc("2026-06-10T10:30")) == (
        utc("2026-06-10T10:30"), 1, False)


def test_starting_deadline_limits_the_look_back():
    since = utc("2026-06-01T00:00")
    assert missed_runs("*/5 * * * *", "UTC", since, NOW, starting_deadline_seconds=600) == (
        utc("2026-06-10T10:30"), 2, False)                       # 10:22:20 .. 10:32:20: 10:25, 10:30
    assert missed_runs("0 * * * *", "UTC", since, NOW, starting_deadline_seconds=600) == (None, 0, False)
    # a deadline reaching before the last schedule time does not widen the window
    assert missed_runs("*/5 * * * *", "UTC", utc("2026-06-10T10:27"), NOW, starting_deadline_seconds=86400) == (
        utc("2026-06-10T10:30"), 1, False)


def test_the_cap_of_100():
    minute = utc("2026-06-10T10:32")
    assert missed_runs("* * * * *", "UTC", minute - timedelta(minutes=100), NOW) == (minute, MISSED_CAP, False)
    assert missed_runs("* * * * *", "UTC", minute - timedelta(minutes=101), NOW) == (minute, MISSED_CAP + 1, True)


def test_years_behind_still_finds_the_most_recent_time():
    assert missed_runs("* * * * *", "Europe/Berlin", utc("2016-01-01T00:00"), NOW) == (
        utc("2026-06-10T10:32"), MISSED_CAP + 1, True)
    assert missed_runs("0 0 1 * *", "UTC", utc("2010-01-01T00:00"), NOW) == (utc("2026-06-01T00:00"), 101, True)


def test_irregular_schedules_get_their_true_most_recent_time():
    # Kubernetes' estimate (first interval, one jump) finds nothing here; the Friday 09:00 run is the one to start.
    sunday = utc("2026-06-14T12:00")
    assert missed_runs("0 9 * * 1-5", "UTC", utc("2026-06-01T09:00"), sunday) == (utc("2026-06-12T09:00"), 9, False)
    assert missed_runs("0 9 * * 1-5", "UTC", utc("2025-06-01T09:00"), sunday) == (utc("2026-06-12T09:00"), 101, True)
    assert missed_runs("*/7 * * * *", "UTC", utc("2026-06-01T00:00"), utc("2026-06-10T10:33:00")).most_recent == \
        utc("2026-06-10T10:28")


def test_missed_runs_in_the_schedule_zone_across_fall_back():
    # 02:30 Berlin twice on 2026-10-25: both occurrences are unmet times.
    got = missed_runs("30 2 * * *", "Europe/Berlin", utc("2026-10-24T12:00"), utc("2026-10-25T12:00"))
    assert got == (utc("2026-10-25T01:30"), 2, False)


def test_a_schedule_that_never_fires_has_nothing_missed():
    assert missed_runs("0 0 29 2 *", "UTC", utc("2097-03-01T00:00"), utc("2099-01-01T00:00")) == (None, 0, False)


# ---------------------------------------------------------------- templates

T = utc("2026-11-24T10:00")  # 11:00 CET
VARS = {"scheduledTime": T, "scheduleName": "nightly"}


@pytest.mark.parametrize("text,expected", [
    ("${scheduledTime}", "2026-11-24T10:00:00Z"),
    ("s3a://out/dt=${scheduledTime:%Y-%m-%d}/hour=${scheduledTime:%H}/", "s3a://out/dt=2026-11-24/hour=11/"),
    ("${scheduledTime:%Y-%m-%dT%H:%M:%S%z %Z}", "2026-11-24T11:00:00+0100 CET"),
    ("${scheduledTime-1h:%H}", "10"),
    ("${scheduledTime+30m}", "2026-11-24T10:30:00Z"),
    ("${scheduledTime-90s}", "2026-11-24T09:58:30Z"),
    ("${scheduledTime-1d:%Y-%m-%d}", "2026-11-23"),
    ("${scheduledTime-1w:%Y-%m-%d}", "2026-11-17"),
    ("${scheduledTime+2w:%G-W%V-%u %a %b %j}", "2026-W50-2 Tue Dec 342"),
    ("${scheduledTime:100%% %y}", "100% 26"),
    ("out/${scheduleName}/${scheduledTime:%Y%m%d}", "out/nightly/20261124"),
    ("dt = '${scheduledTime-1d:%Y-%m-%d}' AND id > 0", "dt = '2026-11-23' AND id > 0"),
])
def test_render(text, expected):
    assert render(text, VARS, "Europe/Berlin") == expected


@pytest.mark.parametrize("text,expected", [
    ("$${scheduledTime}", "${scheduledTime}"),
    ("$$${scheduledTime:%H}", "$11"),
    ("$$$${x}", "$${x}"),
    ("$${a${scheduledTime:%H}}", "${a11}"),
    ("a$b $$ c$", "a$b $$ c$"),
    ("{}} $5", "{}} $5"),
    ("", ""),
])
def test_escapes(text, expected):
    assert render(text, VARS, "Europe/Berlin") == expected


def test_shifts_across_midnight_and_dst():
    berlin = "Europe/Berlin"
    after_midnight = utc("2026-06-30T22:30")  # 00:30 CEST on July 1
    assert render("${scheduledTime-1h:%Y-%m-%d %H:%M}", {"scheduledTime": after_midnight}, berlin) == "2026-06-30 23:30"
    assert render("${scheduledTime:%Y-%m-%d}", {"scheduledTime": after_midnight}) == "2026-06-30"  # UTC zone
    # 2026-03-30 00:30 CEST: 1d earlier is the same wall time, 23 h before; 24h earlier is already the 28th.
    t = utc("2026-03-29T22:30")
    assert render("${scheduledTime-1d:%Y-%m-%d %H:%M %Z}", {"scheduledTime": t}, berlin) == "2026-03-29 00:30 CET"
    assert render("${scheduledTime-24h:%Y-%m-%d %H:%M %Z}", {"scheduledTime": t}, berlin) == "2026-03-28 23:30 CET"
    # a calendar shift into the gap (02:30 on the 29th does not exist) resolves as Go's time.Date: 03:30 CEST
    t = utc("2026-03-30T00:30")  # 02:30 CEST
    assert render("${scheduledTime-1d:%d %H:%M %Z}", {"scheduledTime": t}, berlin) == "29 03:30 CEST"
    # fall back: -1d from 2026-10-26 02:30 CET is 25 h earlier
    t = utc("2026-10-26T01:30")
    assert render("${scheduledTime-1d}", {"scheduledTime": t}, berlin) == "2026-10-25T01:30:00Z"
    ny = "America/New_York"
    assert render("${scheduledTime-1h:%H:%M %Z}", {"scheduledTime": utc("2026-11-01T06:30")}, ny) == "01:30 EDT"


def _message(occurrence: str, field: str = "template") -> str:
    return f"{field}: '{occurrence}' {TEMPLATE_HINT}"


@pytest.mark.parametrize("text,bad", [
    ("x ${foo} y", "${foo}"),
    ("${scheduledtime}", "${scheduledtime}"),
    ("${scheduledTime:%Q}", "${scheduledTime:%Q}"),
    ("${scheduledTime:%}", "${scheduledTime:%}"),
    ("${scheduledTime-1y}", "${scheduledTime-1y}"),
    ("${scheduledTime-1}", "${scheduledTime-1}"),
    ("${scheduledTime-1234567d}", "${scheduledTime-1234567d}"),
    ("${scheduledTime+1h-1m}", "${scheduledTime+1h-1m}"),
    ("${scheduleName:%Y}", "${scheduleName:%Y}"),
    ("${scheduledTime", "${scheduledTime"),
    ("ok ${scheduledTime} ${", "${"),
    ("$${ok} $$${bad", "$$${bad"),
    ("$${a${bogus}}", "${bogus}"),
    ("${scheduledTime:%Y$}", "${scheduledTime:%Y"),
])
def test_bad_references_are_named(text, bad):
    with pytest.raises(ValueError) as info:
        render(text, VARS, "UTC")
    assert str(info.value) == _message(bad)
    with pytest.raises(ValueError) as info:
        check_template(text, "spec.output.uri")
    assert str(info.value) == _message(bad, "spec.output.uri")


def test_a_variable_the_run_does_not_set():
    with pytest.raises(ValueError) as info:
        render("${scheduleName}", {"scheduledTime": T})
    assert str(info.value) == "template: '${scheduleName}' names variable scheduleName, which this run does not set"


def test_a_shift_out_of_range():
    with pytest.raises(ValueError) as info:
        render("${scheduledTime-999999w}", VARS)
    assert str(info.value) == "template: '${scheduledTime-999999w}' shifts the time out of the years 1-9999"


def test_unknown_zone_when_rendering():
    with pytest.raises(ValueError, match="timeZone: unknown time zone Mars/Olympus"):
        render("${scheduledTime:%H}", VARS, "Mars/Olympus")


@pytest.mark.parametrize("text", ["${scheduledTime-1d:%Y-%m-%d}", "$${x}", "a$b$", "${foo}", "${scheduledTime",
                                  "$$${bad", "$${a${bogus}}", "plain"])
def test_the_cel_template_regex_is_the_python_grammar(text):
    try:
        check_template(text)
        ok = True
    except ValueError:
        ok = False
    assert bool(re.fullmatch(_cel_regex(TEMPLATE_RULE["rule"]), text)) == ok


def test_template_rule_names_its_field():
    assert template_rule("input.where")["messageExpression"].startswith("'input.where: \\'' + ")
    assert template_rule("input.where")["rule"] == TEMPLATE_RULE["rule"]


def test_the_modules_import_only_the_standard_library():
    probe = ("import json, sys, tfscore.api.schedule_time, tfscore.api.schedule_template; "
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60)
    assert {m for m in json.loads(out.stdout) if not m.startswith("_")} == {"tfscore"}
