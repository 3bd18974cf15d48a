"""The pure SLA clock: working time on a calendar, summed over the intervals in which the clock ran."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from itsm.sla import ALWAYS, Calendar, due_at, running_intervals

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = Calendar(tz=BERLIN)  # Monday to Friday, 09:00-17:00 Berlin time
PAUSED = frozenset({"pending"})


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Around the clock


def test_an_always_running_clock_is_due_exactly_the_target_after_it_started() -> None:
    start = utc(2024, 6, 7, 10, 0)

    assert due_at(ALWAYS, [(start, None)], 60) == utc(2024, 6, 7, 11, 0)
    assert due_at(ALWAYS, [(start, None)], 5 * 24 * 60) == utc(2024, 6, 12, 10, 0)


def test_an_always_running_clock_counts_weekends_and_nights() -> None:
    friday_evening = utc(2024, 6, 7, 22, 0)

    assert due_at(ALWAYS, [(friday_evening, None)], 24 * 60) == utc(2024, 6, 8, 22, 0)


def test_a_pause_moves_the_due_time_by_exactly_the_paused_time() -> None:
    start = utc(2024, 6, 7, 10, 0)
    running = [(start, start + timedelta(minutes=20)), (start + timedelta(minutes=50), None)]

    assert due_at(ALWAYS, running, 60) == start + timedelta(minutes=90)


def test_several_pauses_add_up() -> None:
    start = utc(2024, 6, 7, 10, 0)
    running = [
        (start, start + timedelta(minutes=10)),
        (start + timedelta(minutes=20), start + timedelta(minutes=30)),
        (start + timedelta(hours=2), None),
    ]

    assert due_at(ALWAYS, running, 60) == start + timedelta(hours=2, minutes=40)


def test_a_clock_stopped_short_of_its_target_has_no_due_time() -> None:
    start = utc(2024, 6, 7, 10, 0)

    assert due_at(ALWAYS, [(start, start + timedelta(minutes=59))], 60) is None


def test_a_clock_stopped_exactly_at_its_target_is_due_at_the_stop() -> None:
    start = utc(2024, 6, 7, 10, 0)

    assert due_at(ALWAYS, [(start, start + timedelta(minutes=60))], 60) == start + timedelta(minutes=60)


def test_a_clock_that_ran_past_its_target_before_stopping_keeps_its_due_time() -> None:
    start = utc(2024, 6, 7, 10, 0)

    assert due_at(ALWAYS, [(start, start + timedelta(hours=3))], 60) == start + timedelta(minutes=60)


def test_fractional_minutes_are_kept_to_the_second() -> None:
    start = utc(2024, 6, 7, 10, 0)

    assert due_at(ALWAYS, [(start, None)], 15 * 0.8) == start + timedelta(minutes=12)
    assert due_at(ALWAYS, [(start, None)], 0.5) == start + timedelta(seconds=30)


def test_an_always_running_clock_counts_real_minutes_when_given_local_times_across_a_dst_change() -> None:
    # 23:00 CET on the Saturday before the spring change; 4 real hours later it is 04:00 CEST, not 03:00.
    start = berlin(2024, 3, 30, 23, 0)

    due = due_at(ALWAYS, [(start, None)], 4 * 60)

    assert due == utc(2024, 3, 31, 2, 0)
    assert due is not None
    assert due - start == timedelta(hours=4)


def test_an_always_running_clock_measures_local_intervals_in_real_time_across_a_dst_change() -> None:
    # Saturday 23:00 CET to Sunday 04:00 CEST is 4 real hours, though the wall clock shows 5.
    start, stop = berlin(2024, 3, 30, 23, 0), berlin(2024, 3, 31, 4, 0)

    assert due_at(ALWAYS, [(start, stop)], 4 * 60 + 1) is None
    assert due_at(ALWAYS, [(start, stop)], 4 * 60) == stop


# Business hours: Monday to Friday, 09:00-17:00 Europe/Berlin


def test_business_hours_response_from_friday_afternoon_falls_due_on_monday_morning() -> None:
    friday = berlin(2024, 6, 7, 16, 30)

    assert due_at(OFFICE, [(friday, None)], 60) == berlin(2024, 6, 10, 9, 30)


def test_business_hours_target_used_up_at_closing_time_is_due_at_closing_time() -> None:
    friday = berlin(2024, 6, 7, 16, 0)

    assert due_at(OFFICE, [(friday, None)], 60) == berlin(2024, 6, 7, 17, 0)


def test_business_hours_one_minute_past_closing_time_is_the_first_minute_of_the_next_working_day() -> None:
    friday = berlin(2024, 6, 7, 16, 0)

    assert due_at(OFFICE, [(friday, None)], 61) == berlin(2024, 6, 10, 9, 1)


def test_business_hours_a_full_working_day_runs_from_opening_to_closing() -> None:
    monday = berlin(2024, 6, 3, 9, 0)

    assert due_at(OFFICE, [(monday, None)], 8 * 60) == berlin(2024, 6, 3, 17, 0)
    assert due_at(OFFICE, [(monday, None)], 8 * 60 + 1) == berlin(2024, 6, 4, 9, 1)


def test_business_hours_a_clock_started_at_the_weekend_starts_counting_on_monday() -> None:
    saturday = berlin(2024, 6, 8, 11, 0)

    assert due_at(OFFICE, [(saturday, None)], 30) == berlin(2024, 6, 10, 9, 30)


def test_business_hours_a_clock_started_before_opening_starts_counting_at_opening() -> None:
    early = berlin(2024, 6, 4, 7, 0)

    assert due_at(OFFICE, [(early, None)], 30) == berlin(2024, 6, 4, 9, 30)


def test_business_hours_a_clock_started_after_closing_starts_counting_the_next_working_day() -> None:
    late = berlin(2024, 6, 4, 18, 0)

    assert due_at(OFFICE, [(late, None)], 30) == berlin(2024, 6, 5, 9, 30)


def test_business_hours_a_zero_minute_target_outside_hours_is_due_at_the_next_opening() -> None:
    saturday = berlin(2024, 6, 8, 11, 0)

    assert due_at(OFFICE, [(saturday, None)], 0) == berlin(2024, 6, 10, 9, 0)


def test_business_hours_a_long_target_spans_several_weeks() -> None:
    # 1 day = 1440 working minutes = 3 working days of 8 hours; 5 days = 15 working days.
    friday = berlin(2024, 6, 7, 16, 30)

    assert due_at(OFFICE, [(friday, None)], 24 * 60) == berlin(2024, 6, 12, 16, 30)
    assert due_at(OFFICE, [(friday, None)], 5 * 24 * 60) == berlin(2024, 6, 28, 16, 30)


def test_business_hours_due_times_are_the_same_instant_whatever_the_time_zone_of_the_input() -> None:
    friday_utc = berlin(2024, 6, 7, 16, 30).astimezone(UTC)
    friday_new_york = friday_utc.astimezone(NEW_YORK)

    assert due_at(OFFICE, [(friday_utc, None)], 60) == berlin(2024, 6, 10, 9, 30)
    assert due_at(OFFICE, [(friday_new_york, None)], 60) == berlin(2024, 6, 10, 9, 30)


def test_business_hours_are_read_in_the_calendars_time_zone() -> None:
    new_york_office = Calendar(tz=NEW_YORK)
    # 15:00 UTC on a June Monday is 11:00 in New York (EDT, UTC-4): six working hours are left that day.
    start = utc(2024, 6, 3, 15, 0)

    assert due_at(new_york_office, [(start, None)], 6 * 60) == utc(2024, 6, 3, 21, 0)
    assert due_at(new_york_office, [(start, None)], 6 * 60 + 1) == utc(2024, 6, 4, 13, 1)


def test_business_hours_a_pause_moves_the_due_time_by_the_working_time_paused() -> None:
    monday = berlin(2024, 6, 3, 10, 0)
    # Paused from Monday 15:00 to Tuesday 11:00: 2 working hours on Monday and 2 on Tuesday.
    running = [(monday, berlin(2024, 6, 3, 15, 0)), (berlin(2024, 6, 4, 11, 0), None)]

    without_pause = due_at(OFFICE, [(monday, None)], 8 * 60)
    with_pause = due_at(OFFICE, running, 8 * 60)

    assert without_pause == berlin(2024, 6, 4, 10, 0)
    assert with_pause == berlin(2024, 6, 4, 14, 0)


def test_business_hours_a_pause_outside_working_hours_does_not_move_the_due_time() -> None:
    friday = berlin(2024, 6, 7, 16, 30)
    running = [(friday, berlin(2024, 6, 7, 18, 0)), (berlin(2024, 6, 9, 12, 0), None)]

    assert due_at(OFFICE, running, 60) == berlin(2024, 6, 10, 9, 30)


def test_business_hours_a_clock_paused_at_the_weekend_is_due_when_the_pause_ends_plus_the_rest() -> None:
    friday = berlin(2024, 6, 7, 16, 30)
    running = [(friday, berlin(2024, 6, 7, 16, 45)), (berlin(2024, 6, 11, 14, 0), None)]

    assert due_at(OFFICE, running, 60) == berlin(2024, 6, 11, 14, 45)


def test_business_hours_clock_paused_short_of_its_target_has_no_due_time() -> None:
    friday = berlin(2024, 6, 7, 16, 30)

    assert due_at(OFFICE, [(friday, berlin(2024, 6, 10, 9, 29))], 60) is None
    assert due_at(OFFICE, [(friday, berlin(2024, 6, 10, 9, 30))], 60) == berlin(2024, 6, 10, 9, 30)


def test_a_holiday_is_skipped_like_a_weekend() -> None:
    christmas = Calendar(tz=BERLIN, holidays=frozenset({date(2024, 12, 24), date(2024, 12, 25), date(2024, 12, 26)}))
    monday = berlin(2024, 12, 23, 16, 0)

    assert due_at(christmas, [(monday, None)], 120) == berlin(2024, 12, 27, 10, 0)
    assert due_at(OFFICE, [(monday, None)], 120) == berlin(2024, 12, 24, 10, 0)


def test_a_clock_started_on_a_holiday_starts_counting_the_next_working_day() -> None:
    may_day = Calendar(tz=BERLIN, holidays=frozenset({date(2024, 5, 1)}))

    assert due_at(may_day, [(berlin(2024, 5, 1, 10, 0), None)], 30) == berlin(2024, 5, 2, 9, 30)


def test_other_weekdays_and_hours_can_be_chosen() -> None:
    # A Saturday desk, 10:00-14:00 Berlin time, Monday to Saturday.
    desk = Calendar(tz=BERLIN, weekdays=frozenset(range(6)), day_start=time(10, 0), day_end=time(14, 0))
    friday = berlin(2024, 6, 7, 13, 0)

    assert due_at(desk, [(friday, None)], 120) == berlin(2024, 6, 8, 11, 0)


# Daylight saving time


def test_business_hours_across_the_spring_dst_weekend_keep_local_opening_hours() -> None:
    # Friday 16:00 CET (UTC+1), 2 working hours: 1 on Friday, 1 on Monday from 09:00 CEST (UTC+2).
    friday = berlin(2024, 3, 29, 16, 0)

    due = due_at(OFFICE, [(friday, None)], 120)

    assert due == berlin(2024, 4, 1, 10, 0)
    assert due == utc(2024, 4, 1, 8, 0)


def test_business_hours_across_the_autumn_dst_weekend_keep_local_opening_hours() -> None:
    # Friday 16:00 CEST (UTC+2), 2 working hours: 1 on Friday, 1 on Monday from 09:00 CET (UTC+1).
    friday = berlin(2024, 10, 25, 16, 0)

    due = due_at(OFFICE, [(friday, None)], 120)

    assert due == berlin(2024, 10, 28, 10, 0)
    assert due == utc(2024, 10, 28, 9, 0)


def test_working_hours_that_contain_the_spring_dst_gap_are_one_real_hour_shorter() -> None:
    # Sunday 31 March 2024 01:00-05:00 Berlin time is 00:00-03:00 UTC: three real hours, not four.
    night_shift = Calendar(tz=BERLIN, weekdays=frozenset(range(7)), day_start=time(1, 0), day_end=time(5, 0))
    start = berlin(2024, 3, 31, 1, 0)

    assert due_at(night_shift, [(start, None)], 150) == utc(2024, 3, 31, 2, 30)
    assert due_at(night_shift, [(start, None)], 180) == utc(2024, 3, 31, 3, 0)
    # The 181st minute is the first of Monday's shift, 01:00 CEST = 23:00 UTC on Sunday.
    assert due_at(night_shift, [(start, None)], 181) == utc(2024, 3, 31, 23, 1)


def test_working_hours_that_contain_the_autumn_dst_repeat_are_one_real_hour_longer() -> None:
    # Sunday 27 October 2024 01:00-05:00 Berlin time is Saturday 23:00 to Sunday 04:00 UTC: five real hours.
    night_shift = Calendar(tz=BERLIN, weekdays=frozenset(range(7)), day_start=time(1, 0), day_end=time(5, 0))
    start = berlin(2024, 10, 27, 1, 0)

    assert due_at(night_shift, [(start, None)], 270) == utc(2024, 10, 27, 3, 30)
    assert due_at(night_shift, [(start, None)], 300) == utc(2024, 10, 27, 4, 0)
    assert due_at(night_shift, [(start, None)], 301) == utc(2024, 10, 28, 0, 1)


# Calendars with no working time


def test_a_calendar_without_working_weekdays_never_falls_due() -> None:
    never = Calendar(tz=BERLIN, weekdays=frozenset())

    assert due_at(never, [(berlin(2024, 6, 7, 10, 0), None)], 1) is None


def test_a_calendar_whose_day_ends_when_it_starts_never_falls_due() -> None:
    never = Calendar(tz=BERLIN, day_start=time(9, 0), day_end=time(9, 0))

    assert due_at(never, [(berlin(2024, 6, 7, 10, 0), None)], 1) is None


def test_a_calendar_whose_only_working_day_is_a_holiday_falls_due_the_week_after() -> None:
    mondays = Calendar(tz=BERLIN, weekdays=frozenset({0}), holidays=frozenset({date(2024, 6, 10)}))

    assert due_at(mondays, [(berlin(2024, 6, 7, 10, 0), None)], 60) == berlin(2024, 6, 17, 10, 0)


def test_no_running_interval_means_no_due_time() -> None:
    assert due_at(ALWAYS, [], 60) is None
    assert due_at(OFFICE, [], 60) is None


# Working periods


def test_working_periods_are_clipped_to_the_range_and_in_order() -> None:
    periods = list(OFFICE.working_periods(berlin(2024, 6, 7, 16, 0), berlin(2024, 6, 11, 10, 0)))

    assert periods == [
        (berlin(2024, 6, 7, 16, 0), berlin(2024, 6, 7, 17, 0)),
        (berlin(2024, 6, 10, 9, 0), berlin(2024, 6, 10, 17, 0)),
        (berlin(2024, 6, 11, 9, 0), berlin(2024, 6, 11, 10, 0)),
    ]


def test_working_periods_of_an_empty_range_are_empty() -> None:
    moment = berlin(2024, 6, 7, 10, 0)

    assert list(OFFICE.working_periods(moment, moment)) == []
    assert list(ALWAYS.working_periods(moment, moment)) == []


def test_working_periods_of_a_range_outside_working_hours_are_empty() -> None:
    assert list(OFFICE.working_periods(berlin(2024, 6, 7, 17, 0), berlin(2024, 6, 10, 9, 0))) == []


def test_working_periods_around_the_clock_are_the_range_itself() -> None:
    start, end = utc(2024, 6, 7, 10, 0), utc(2024, 6, 9, 10, 0)

    assert list(ALWAYS.working_periods(start, end)) == [(start, end)]


# Running intervals from status changes


def test_running_intervals_of_a_ticket_never_paused_is_one_open_interval() -> None:
    created = utc(2024, 6, 7, 10, 0)
    changes = [
        (created, "new"),
        (created + timedelta(minutes=5), "open"),
        (created + timedelta(hours=1), "in_progress"),
    ]

    assert running_intervals(changes, PAUSED) == [(created, None)]


def test_running_intervals_stop_while_paused_and_resume_after() -> None:
    t = utc(2024, 6, 7, 10, 0)
    changes = [
        (t, "new"),
        (t + timedelta(minutes=10), "open"),
        (t + timedelta(minutes=20), "pending"),
        (t + timedelta(minutes=50), "in_progress"),
        (t + timedelta(minutes=60), "pending"),
        (t + timedelta(minutes=70), "in_progress"),
    ]

    assert running_intervals(changes, PAUSED) == [
        (t, t + timedelta(minutes=20)),
        (t + timedelta(minutes=50), t + timedelta(minutes=60)),
        (t + timedelta(minutes=70), None),
    ]


def test_running_intervals_of_a_ticket_paused_now_are_all_closed() -> None:
    t = utc(2024, 6, 7, 10, 0)
    changes = [(t, "new"), (t + timedelta(minutes=20), "pending")]

    assert running_intervals(changes, PAUSED) == [(t, t + timedelta(minutes=20))]


def test_running_intervals_treat_a_move_between_paused_statuses_as_one_pause() -> None:
    t = utc(2024, 6, 7, 10, 0)
    changes = [
        (t, "new"),
        (t + timedelta(minutes=20), "pending"),
        (t + timedelta(minutes=30), "resolved"),
        (t + timedelta(minutes=40), "open"),
    ]

    assert running_intervals(changes, frozenset({"pending", "resolved"})) == [
        (t, t + timedelta(minutes=20)),
        (t + timedelta(minutes=40), None),
    ]


def test_running_intervals_ignore_changes_at_or_after_until_and_stay_open() -> None:
    t = utc(2024, 6, 7, 10, 0)
    changes = [
        (t, "new"),
        (t + timedelta(minutes=20), "pending"),
        (t + timedelta(minutes=30), "open"),
        (t + timedelta(minutes=40), "resolved"),
    ]
    done = frozenset({"pending", "resolved"})

    assert running_intervals(changes, done, until=t + timedelta(minutes=40)) == [
        (t, t + timedelta(minutes=20)),
        (t + timedelta(minutes=30), None),
    ]
    assert running_intervals(changes, done, until=t + timedelta(minutes=25)) == [(t, t + timedelta(minutes=20))]


@pytest.mark.parametrize("minutes", [1, 60, 479, 480, 481, 2000])
def test_due_at_is_where_exactly_the_target_of_working_time_has_run(minutes: int) -> None:
    start = berlin(2024, 6, 5, 13, 17)

    due = due_at(OFFICE, [(start, None)], minutes)

    assert due is not None
    worked = sum((hi - lo for lo, hi in OFFICE.working_periods(start, due)), timedelta())
    assert worked == timedelta(minutes=minutes)


def test_running_intervals_count_the_creation_even_when_until_is_the_same_instant() -> None:
    # A ticket opened and resolved at once still has a due time: the one it met.
    t = utc(2024, 6, 7, 10, 0)
    changes = [(t, "new"), (t, "resolved")]

    assert running_intervals(changes, frozenset({"resolved"}), until=t) == [(t, None)]
    assert due_at(ALWAYS, running_intervals(changes, frozenset({"resolved"}), until=t), 60) == t + timedelta(hours=1)
