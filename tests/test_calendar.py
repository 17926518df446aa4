"""The working-day calendar and time limits, checked against the holidays chinesecalendar records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import httpx
import pytest
from sqlalchemy import select, update

from api.app import create_app
from api.cli import main
from engine.calendar import LOCAL_TZ, WorkingCalendar, library_years, load_calendar, parse_date
from engine.calendar_admin import CalendarFileError, calendar_status, import_days, set_day
from engine.db import calendar_days
from engine.deadlines import Pause, TimeLimit, Unit, compute_deadline, parse_moment, share_left, time_left
from engine.errors import Forbidden, InvalidInput
from engine.service import Liuhen
from engine.users import Actor
from tests.conftest import ADMIN, LiveServer, add_user

CLERK = Actor("clerk", "经办人", frozenset({"staff"}))
# The first year chinesecalendar has no data for; a year past it behaves the same way.
MISSING_YEAR = max(library_years()) + 1


def local(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=LOCAL_TZ)


def working_days_after(first: date, last: date) -> int:
    """Count the working days in (first, last] with chinesecalendar alone, as an independent check."""
    return len(chinese_calendar.get_workdays(first + timedelta(days=1), last))


def weekday_count(first: date, last: date, holidays: set[date] | None = None,
                  working: set[date] | None = None) -> int:
    """Count the working days in (first, last] by the weekday rule, with the given exceptions."""
    days = (first + timedelta(days=n) for n in range(1, (last - first).days + 1))
    return sum(1 for day in days if day in (working or set()) or (day.weekday() < 5 and day not in (holidays or set())))


def limit(amount: int, unit: Unit = Unit.WORKING_DAY) -> TimeLimit:
    return TimeLimit(amount, unit)


@pytest.fixture
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


# What chinesecalendar records, checked rather than assumed.

@pytest.mark.parametrize(("day", "weekday", "working"), [
    ("2025-01-26", 6, True), ("2025-02-08", 5, True),
    ("2025-01-28", 1, False), ("2025-02-04", 1, False),
    ("2025-09-28", 6, True), ("2025-10-11", 5, True),
    ("2025-10-01", 2, False), ("2025-10-08", 2, False),
])
def test_library_dates_as_expected(calendar, day, weekday, working) -> None:
    parsed = date.fromisoformat(day)

    assert parsed.weekday() == weekday
    assert chinese_calendar.is_workday(parsed) is working
    assert calendar.is_working_day(parsed) is working
    assert calendar.is_provisional(parsed) is False


def test_make_up_day_status(calendar) -> None:
    status = calendar.day(date(2025, 2, 8))

    assert status.is_working_day
    assert status.is_adjusted
    assert status.name == "春节"
    assert status.source == "chinese_calendar"


# Working-day arithmetic.

def test_add_and_count_are_inverse(calendar) -> None:
    for start in (date(2025, 1, 24), date(2025, 9, 26), date(2025, 10, 5)):
        for count in range(-25, 26):
            assert calendar.working_days_between(start, calendar.add_working_days(start, count)) == count


def test_spring_festival_20_working_days(calendar) -> None:
    deadline = compute_deadline(local(2025, 1, 20), limit(20), [], calendar)

    assert deadline.last_day == date(2025, 2, 21)
    assert working_days_after(date(2025, 1, 20), deadline.last_day) == 20
    assert chinese_calendar.is_workday(deadline.last_day)
    assert deadline.due == datetime(2025, 2, 21, 23, 59, 59, tzinfo=LOCAL_TZ)
    assert deadline.working_days == 20
    assert not deadline.provisional


def test_national_day_20_working_days(calendar) -> None:
    deadline = compute_deadline(local(2025, 9, 26), limit(20), [], calendar)

    assert deadline.last_day == date(2025, 10, 30)
    assert working_days_after(date(2025, 9, 26), deadline.last_day) == 20


def test_make_up_sunday_counts(calendar) -> None:
    # Saturday 2025-01-25 01:00 in China is still Friday in UTC; the local date decides.
    start = datetime(2025, 1, 24, 17, 0, tzinfo=UTC)

    deadline = compute_deadline(start, limit(1), [], calendar)

    assert deadline.last_day == date(2025, 1, 26)


def test_start_day_not_counted(calendar) -> None:
    morning = compute_deadline(local(2025, 3, 3, 0), limit(1), [], calendar)
    night = compute_deadline(local(2025, 3, 3, 23), limit(1), [], calendar)

    assert morning.last_day == date(2025, 3, 4)
    assert night.last_day == date(2025, 3, 4)


def test_pause_across_holiday(calendar) -> None:
    # Review from the evening before the Spring Festival until the morning after it: of the working
    # days after the day it began, only 2025-02-05 was lost.
    review = Pause(local(2025, 1, 27, 17), local(2025, 2, 5, 9))

    deadline = compute_deadline(local(2025, 1, 20), limit(20), [review], calendar)

    assert deadline.paused_days == 1
    assert deadline.last_day == date(2025, 2, 24)


def test_pause_within_holiday_adds_nothing(calendar) -> None:
    holiday = Pause(local(2025, 1, 28), local(2025, 2, 4))

    deadline = compute_deadline(local(2025, 1, 20), limit(20), [holiday], calendar)

    assert deadline.paused_days == 0
    assert deadline.last_day == date(2025, 2, 21)


def test_pause_of_whole_weeks(calendar) -> None:
    # Monday to the Monday two weeks later covers ten working days.
    hearing = (local(2025, 3, 10), local(2025, 3, 24))

    deadline = compute_deadline(local(2025, 3, 3), limit(20), [hearing], calendar)

    assert deadline.paused_days == 10
    assert working_days_after(date(2025, 3, 3), deadline.last_day) == 30


def test_overlapping_pauses_count_once(calendar) -> None:
    single = compute_deadline(local(2025, 3, 3), limit(20), [(local(2025, 3, 10), local(2025, 3, 17))], calendar)
    overlapping = compute_deadline(local(2025, 3, 3), limit(20), [(local(2025, 3, 10), local(2025, 3, 14)),
                                                                  (local(2025, 3, 12), local(2025, 3, 17))], calendar)

    assert single.paused_days == 5
    assert overlapping.paused_days == 5
    assert overlapping.last_day == single.last_day


def test_pause_after_deadline_ignored(calendar) -> None:
    late = (local(2025, 3, 3) + timedelta(days=60), local(2025, 3, 3) + timedelta(days=70))

    deadline = compute_deadline(local(2025, 3, 3), limit(5), [late], calendar)

    assert deadline.paused_days == 0
    assert deadline.last_day == date(2025, 3, 10)


def test_pause_before_start_rejected(calendar) -> None:
    with pytest.raises(InvalidInput, match="begins before the limit starts"):
        compute_deadline(local(2025, 3, 3), limit(5), [(local(2025, 3, 1), local(2025, 3, 4))], calendar)


def test_pause_end_before_start_rejected() -> None:
    with pytest.raises(InvalidInput, match="ends before it begins"):
        Pause(local(2025, 3, 4), local(2025, 3, 3))


# Calendar days and months.

@pytest.mark.parametrize(("start", "months", "last_day"), [
    (date(2025, 1, 31), 1, date(2025, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2025, 8, 31), 1, date(2025, 9, 30)),
    (date(2025, 10, 31), 2, date(2025, 12, 31)),
])
def test_month_limit_at_month_end(calendar, start, months, last_day) -> None:
    assert chinese_calendar.is_workday(last_day)

    deadline = compute_deadline(datetime.combine(start, datetime.min.time(), LOCAL_TZ), limit(months, Unit.MONTH),
                                [], calendar)

    assert deadline.last_day == last_day
    assert deadline.moved_from is None


def test_month_end_on_make_up_saturday(calendar) -> None:
    # 2026-02-28 is a Saturday worked in exchange for the Spring Festival, so the limit stays on it.
    assert chinese_calendar.is_workday(date(2026, 2, 28))

    deadline = compute_deadline(local(2025, 11, 30), limit(3, Unit.MONTH), [], calendar)

    assert deadline.last_day == date(2026, 2, 28)
    assert deadline.moved_from is None


def test_month_end_on_holiday_moves(calendar) -> None:
    nominal = date(2025, 5, 31)
    assert not chinese_calendar.is_workday(nominal)
    next_working = min(day for day in (nominal + timedelta(days=n) for n in range(1, 10))
                       if chinese_calendar.is_workday(day))

    deadline = compute_deadline(local(2025, 3, 31), limit(2, Unit.MONTH), [], calendar)

    assert deadline.moved_from == nominal
    assert deadline.last_day == next_working


def test_day_limit_into_national_day(calendar) -> None:
    deadline = compute_deadline(local(2025, 9, 20), limit(11, Unit.DAY), [], calendar)

    assert deadline.moved_from == date(2025, 10, 1)
    assert deadline.last_day == date(2025, 10, 9)
    assert all(not chinese_calendar.is_workday(date(2025, 10, d)) for d in range(1, 9))


def test_day_limit_pause_adds_days(calendar) -> None:
    deadline = compute_deadline(local(2025, 3, 3), limit(10, Unit.DAY), [(local(2025, 3, 5), local(2025, 3, 8))],
                                calendar)

    assert deadline.paused_days == 3
    assert deadline.last_day == date(2025, 3, 17)
    assert deadline.moved_from == date(2025, 3, 16)


# Time left.

def test_time_left_and_share(calendar) -> None:
    deadline = compute_deadline(local(2025, 1, 20), limit(20), [], calendar)

    assert time_left(local(2025, 1, 20, 12), deadline, calendar) == 20
    assert share_left(local(2025, 1, 20, 12), deadline, calendar) == 1.0
    assert time_left(local(2025, 2, 14), deadline, calendar) == 5
    assert share_left(local(2025, 2, 14), deadline, calendar) == 0.25
    assert time_left(local(2025, 2, 21, 23), deadline, calendar) == 0
    assert not deadline.is_overdue(local(2025, 2, 21, 23))


def test_time_left_after_deadline(calendar) -> None:
    deadline = compute_deadline(local(2025, 1, 20), limit(20), [], calendar)

    assert time_left(local(2025, 2, 22), deadline, calendar) == -1
    assert deadline.is_overdue(local(2025, 2, 22))
    assert time_left(local(2025, 2, 24), deadline, calendar) == -1
    assert time_left(local(2025, 2, 25), deadline, calendar) == -2
    assert share_left(local(2025, 2, 25), deadline, calendar) == -0.1


# Years without official data.

def test_missing_year_is_provisional(calendar) -> None:
    first = date(MISSING_YEAR, 1, 1)

    assert MISSING_YEAR not in calendar.official_years()
    assert calendar.is_provisional(first)
    assert calendar.day(first).source == "weekdays"
    assert calendar.is_working_day(first) is (first.weekday() < 5)


def test_deadline_into_missing_year_provisional(calendar) -> None:
    start = local(MISSING_YEAR - 1, 12, 1)

    deadline = compute_deadline(start, limit(40), [], calendar)

    assert deadline.last_day.year == MISSING_YEAR
    assert deadline.provisional
    assert deadline.provisional_years == (MISSING_YEAR,)


def test_pause_into_missing_year_provisional(calendar) -> None:
    start = local(MISSING_YEAR - 1, 12, 1)
    # The review itself ends in December, but the days it adds carry the limit into the next year.
    review = (local(MISSING_YEAR - 1, 12, 2), local(MISSING_YEAR - 1, 12, 29))
    assert not compute_deadline(start, limit(10), [], calendar).provisional

    deadline = compute_deadline(start, limit(10), [review], calendar)

    assert deadline.last_day.year == MISSING_YEAR
    assert deadline.provisional_years == (MISSING_YEAR,)


def test_deadline_before_missing_year_official(calendar) -> None:
    deadline = compute_deadline(local(MISSING_YEAR - 1, 11, 2), limit(5), [], calendar)

    assert not deadline.provisional


# Input checks.

@pytest.mark.parametrize(("amount", "unit", "quoted"), [
    ("-3", "working_day", "-3"),
    ("0", "day", "0"),
    ("twenty", "working_day", "'twenty'"),
    ("2.5", "month", "'2.5'"),
    ("20", "weeks", "'weeks'"),
    ("99999", "working_day", "99999"),
])
def test_bad_limit_names_value(amount, unit, quoted) -> None:
    with pytest.raises(InvalidInput) as error:
        TimeLimit.parse(amount, unit)

    assert quoted in str(error.value)


@pytest.mark.parametrize(("value", "quoted"), [
    ("2025-02-30", "'2025-02-30'"),
    ("20250101", "'20250101'"),
    ("2025-1-1", "'2025-1-1'"),
    ("tomorrow", "'tomorrow'"),
    ("1800-01-01", "Year 1800"),
])
def test_bad_date_names_value(value, quoted) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_date(value)

    assert quoted in str(error.value)


def test_parse_moment_forms() -> None:
    assert parse_moment("2025-01-20") == datetime(2025, 1, 20, tzinfo=LOCAL_TZ)
    assert parse_moment("2025-01-20T09:30") == datetime(2025, 1, 20, 9, 30, tzinfo=LOCAL_TZ)
    assert parse_moment("2025-01-20T01:30Z") == datetime(2025, 1, 20, 1, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="'next monday'"):
        parse_moment("next monday")


# Administrators' entries, stored in the database.

GOOD_FILE = f"""date,type,name
{MISSING_YEAR}-01-01,holiday,元旦
{MISSING_YEAR}-01-04,holiday,元旦
{MISSING_YEAR}-01-09,working,元旦
""".encode()


def test_set_day_overrides_library(service) -> None:
    national_day_after = date(2025, 10, 9)
    assert load_calendar(service.db).is_working_day(national_day_after)

    status = set_day(service, national_day_after, False, "国庆节", ADMIN)

    assert not status.is_working_day
    assert status.source == "admin"
    assert not load_calendar(service.db).is_working_day(national_day_after)
    deadline = compute_deadline(local(2025, 9, 26), limit(20), [], load_calendar(service.db))
    assert deadline.last_day == date(2025, 10, 31)


def test_set_day_traced_with_previous(service) -> None:
    day = date(2025, 10, 9)

    set_day(service, day, False, "国庆节", ADMIN)
    set_day(service, day, True, None, ADMIN)

    events = [e for e in service.system_trace() if e["kind"] == "calendar_day_set"]
    assert [e["payload"]["is_working_day"] for e in events] == [False, True]
    assert events[0]["payload"]["previous"] == {"is_working_day": True, "name": None, "source": "chinese_calendar"}
    assert events[1]["payload"]["previous"] == {"is_working_day": False, "name": "国庆节", "source": "admin"}
    assert events[1]["actor"] == "admin"
    assert load_calendar(service.db).is_working_day(day)
    with service.db.read() as conn:
        assert len(conn.execute(select(calendar_days)).all()) == 2


def test_set_day_needs_admin(service) -> None:
    with pytest.raises(Forbidden):
        set_day(service, date(2025, 10, 9), False, None, CLERK)


def test_entries_are_append_only(service) -> None:
    set_day(service, date(2025, 10, 9), False, None, ADMIN)

    with pytest.raises(Exception, match="append-only"):
        with service.db.write() as conn:
            conn.execute(update(calendar_days).values(is_working_day=True))

    assert not load_calendar(service.db).is_working_day(date(2025, 10, 9))


def test_cache_sees_other_writer(service) -> None:
    before = load_calendar(service.db)
    assert load_calendar(service.db) is before
    other = Liuhen(service.settings, clock=service.clock)
    try:
        set_day(other, date(2025, 10, 9), False, None, ADMIN)
    finally:
        other.db.dispose()

    after = load_calendar(service.db)

    assert after is not before
    assert not after.is_working_day(date(2025, 10, 9))


def test_import_makes_year_official(service) -> None:
    new_year = date(MISSING_YEAR, 1, 1)
    start = local(MISSING_YEAR, 1, 1)
    provisional = compute_deadline(start, limit(10), [], load_calendar(service.db))
    assert provisional.provisional_years == (MISSING_YEAR,)
    assert weekday_count(new_year, provisional.last_day) == 10

    result = import_days(service, GOOD_FILE, ADMIN)

    assert result.stored == 3
    assert result.years == (MISSING_YEAR,)
    calendar = load_calendar(service.db)
    official = compute_deadline(start, limit(10), [], calendar)
    assert not official.provisional
    assert weekday_count(new_year, official.last_day, holidays={date(MISSING_YEAR, 1, 4)},
                         working={date(MISSING_YEAR, 1, 9)}) == 10
    assert MISSING_YEAR in calendar.official_years()
    assert not calendar.is_provisional(date(MISSING_YEAR, 6, 1))


def test_import_covers_year_boundary(service) -> None:
    start = local(MISSING_YEAR - 1, 12, 20)
    assert compute_deadline(start, limit(20), [], load_calendar(service.db)).provisional

    import_days(service, GOOD_FILE, ADMIN)

    assert not compute_deadline(start, limit(20), [], load_calendar(service.db)).provisional


def test_import_rejects_bad_row(service) -> None:
    bad = GOOD_FILE + f"{MISSING_YEAR}-02-10,holidy,春节\n{MISSING_YEAR}-02-30,holiday,春节\n".encode()

    with pytest.raises(CalendarFileError) as error:
        import_days(service, bad, ADMIN)

    assert [line for line, _reason in error.value.problems] == [5, 6]
    assert "Line 5" in str(error.value)
    assert "'holidy'" in str(error.value)
    assert "2 invalid lines" in str(error.value)
    assert load_calendar(service.db).entries() == []
    assert not [e for e in service.system_trace() if e["kind"] == "calendar_day_set"]


def test_import_rejects_duplicate_date(service) -> None:
    with pytest.raises(CalendarFileError) as error:
        import_days(service, GOOD_FILE + f"{MISSING_YEAR}-01-01,working\n".encode(), ADMIN)

    assert error.value.problems[0][0] == 5
    assert "already listed on line 2" in str(error.value.problems[0][1])


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "contains no dates"),
    ("2027-01-01,假日\n".encode("gbk"), "not UTF-8"),
    (b"2027-01-01\n", "found 1 columns"),
])
def test_import_rejects_bad_file(service, content, expected) -> None:
    with pytest.raises(InvalidInput, match=expected):
        import_days(service, content, ADMIN)


def test_import_needs_admin(service) -> None:
    with pytest.raises(Forbidden):
        import_days(service, GOOD_FILE, CLERK)


def test_status_warns_in_november(service, clock) -> None:
    clock.set(datetime(MISSING_YEAR - 1, 11, 15, 2, tzinfo=UTC))

    warnings = calendar_status(service).warnings

    assert [(w.code, w.year) for w in warnings] == [("next_year_missing", MISSING_YEAR)]
    assert f"{MISSING_YEAR} has no official holiday data yet" in str(warnings[0].message)


def test_status_quiet_before_november(service, clock) -> None:
    clock.set(datetime(MISSING_YEAR - 1, 10, 15, 2, tzinfo=UTC))

    assert calendar_status(service).warnings == ()


def test_status_quiet_after_import(service, clock) -> None:
    clock.set(datetime(MISSING_YEAR - 1, 11, 15, 2, tzinfo=UTC))
    import_days(service, GOOD_FILE, ADMIN)

    status = calendar_status(service)

    assert status.warnings == ()
    assert status.imported_years == (MISSING_YEAR,)
    assert status.entries == 3


def test_status_warns_in_missing_year(service, clock) -> None:
    clock.set(datetime(MISSING_YEAR, 1, 10, 2, tzinfo=UTC))

    warnings = calendar_status(service).warnings

    assert [(w.code, w.year) for w in warnings] == [("year_missing", MISSING_YEAR)]


# The command line.

def run_cli(monkeypatch, capsys, service: Liuhen, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.resolved_database_url())
    code = main(["--lang", "en", "calendar", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_import_bad_file(service, monkeypatch, capsys, tmp_path: Path) -> None:
    path = tmp_path / "holidays.csv"
    path.write_bytes(GOOD_FILE + b"2027-13-01,holiday\n")

    code, _out, err = run_cli(monkeypatch, capsys, service, "import", str(path))

    assert code == 1
    assert "holidays.csv, line 5: Date '2027-13-01' is invalid" in err
    assert "nothing was stored" in err
    assert load_calendar(service.db).entries() == []


def test_cli_set_show_status(service, monkeypatch, capsys) -> None:
    code, out, _err = run_cli(monkeypatch, capsys, service, "set", f"{MISSING_YEAR}-01-01", "--holiday",
                              "--name", "元旦")
    assert code == 0
    assert f"{MISSING_YEAR}-01-01 is now a holiday." in out

    code, out, _err = run_cli(monkeypatch, capsys, service, "show", str(MISSING_YEAR), "--list")
    assert code == 0
    assert f"{MISSING_YEAR} has no official holiday data" in out
    assert "元旦  [set by an administrator]" in out

    code, out, _err = run_cli(monkeypatch, capsys, service, "show", "2025")
    assert code == 0
    assert "2025-02-08 Sa  a make-up working day  春节" in out
    assert " 8+" in out

    code, out, _err = run_cli(monkeypatch, capsys, service, "status")
    assert code == 0
    assert "Imported by administrators: -." in out


def test_cli_deadline_preview(service, monkeypatch, capsys) -> None:
    code, out, _err = run_cli(monkeypatch, capsys, service, "deadline", "2025-01-20", "20")
    assert code == 0
    assert "Due 2025-02-21 23:59:59 (20 working days after 2025-01-20)." in out

    code, _out, err = run_cli(monkeypatch, capsys, service, "deadline", "2025-01-20", "20", "--unit", "week")
    assert code == 1
    assert "Unit 'week' is unknown" in err

    code, out, _err = run_cli(monkeypatch, capsys, service, "deadline", f"{MISSING_YEAR - 1}-12-01", "40")
    assert code == 0
    assert f"Provisional: {MISSING_YEAR} has no official holiday data" in out


# The HTTP API.

@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    add_user(service, "clerk", ["staff"])
    add_user(service, "admin", ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def test_http_year_needs_sign_in(api) -> None:
    assert api.get("/api/calendar/2025").status_code == 401


def test_http_year_days(api) -> None:
    response = api.get("/api/calendar/2025", headers=login(api, "clerk"))

    assert response.status_code == 200
    body = response.json()
    assert body["official"] is True
    assert len(body["days"]) == 365
    make_up = next(day for day in body["days"] if day["date"] == "2025-02-08")
    assert make_up == {"date": "2025-02-08", "is_working_day": True, "name": "春节", "source": "chinese_calendar",
                       "provisional": False}


def test_http_missing_year_provisional(api) -> None:
    body = api.get(f"/api/calendar/{MISSING_YEAR}", headers=login(api, "clerk")).json()

    assert body["official"] is False
    assert all(day["provisional"] for day in body["days"])


def test_http_bad_year_names_value(api) -> None:
    response = api.get("/api/calendar/20x5", headers=login(api, "clerk"))

    assert response.status_code == 422
    assert "'20x5'" in response.json()["error"]["message"]


def test_http_set_day_roles(api) -> None:
    body = {"type": "holiday", "name": "国庆节"}

    denied = api.put("/api/calendar/days/2025-10-09", json=body, headers=login(api, "clerk"))
    allowed = api.put("/api/calendar/days/2025-10-09", json=body, headers=login(api, "admin"))

    assert denied.status_code == 403
    assert allowed.status_code == 200
    assert allowed.json() == {"date": "2025-10-09", "is_working_day": False, "name": "国庆节", "source": "admin",
                              "provisional": False}


def test_http_set_day_bad_input(api) -> None:
    headers = login(api, "admin")

    bad_type = api.put("/api/calendar/days/2025-10-09", json={"type": "vacation"}, headers=headers)
    bad_date = api.put("/api/calendar/days/2025-13-09", json={"type": "holiday"}, headers=headers)

    assert bad_type.status_code == 422
    assert "'vacation'" in bad_type.json()["error"]["message"]
    assert bad_date.status_code == 422
    assert "'2025-13-09'" in bad_date.json()["error"]["message"]


def test_http_import(api, service) -> None:
    csv_headers = {"Content-Type": "text/csv"}

    denied = api.post("/api/calendar/import", content=GOOD_FILE, headers={**login(api, "clerk"), **csv_headers})
    bad = api.post("/api/calendar/import", content=GOOD_FILE + f"{MISSING_YEAR}-01-05,closed\n".encode(),
                   headers={**login(api, "admin"), **csv_headers})
    good = api.post("/api/calendar/import", content=GOOD_FILE, headers={**login(api, "admin"), **csv_headers})

    assert denied.status_code == 403
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "calendar_file_invalid"
    assert bad.json()["error"]["details"]["line"] == 5
    assert good.status_code == 200
    assert good.json() == {"stored": 3, "years": [MISSING_YEAR]}
    assert len(load_calendar(service.db).entries()) == 3


def test_http_status_warning(api, clock) -> None:
    clock.set(datetime(MISSING_YEAR - 1, 11, 15, 2, tzinfo=UTC))

    response = api.get("/api/calendar/status", headers=login(api, "clerk"))

    assert response.status_code == 200
    body = response.json()
    assert body["today"] == f"{MISSING_YEAR - 1}-11-15"
    assert MISSING_YEAR not in body["official_years"]
    assert [w["code"] for w in body["warnings"]] == ["next_year_missing"]
    assert "deadlines reaching into it are provisional" in body["warnings"][0]["message"]


def test_http_deadline_preview(api, clock) -> None:
    clock.set(datetime(2025, 2, 14, 2, tzinfo=UTC))

    response = api.get("/api/calendar/deadline", params={"start": "2025-01-20", "amount": "20"},
                       headers=login(api, "clerk"))

    assert response.status_code == 200
    body = response.json()
    assert body["last_day"] == "2025-02-21"
    assert body["due"] == "2025-02-21T23:59:59+08:00"
    assert body["working_days_left"] == 5
    assert body["provisional"] is False
    assert body["overdue"] is False


def test_http_deadline_with_pause(api) -> None:
    params = {"start": "2025-01-20", "amount": "20", "pause": "2025-01-27T17:00/2025-02-05T09:00"}

    body = api.get("/api/calendar/deadline", params=params, headers=login(api, "clerk")).json()

    assert body["paused_days"] == 1
    assert body["last_day"] == "2025-02-24"


def test_http_deadline_provisional(api) -> None:
    params = {"start": f"{MISSING_YEAR - 1}-12-01", "amount": "2", "unit": "month"}

    body = api.get("/api/calendar/deadline", params=params, headers=login(api, "clerk")).json()

    assert body["provisional"] is True
    assert body["provisional_years"] == [MISSING_YEAR]


@pytest.mark.parametrize(("params", "quoted"), [
    ({"start": "2025-01-20", "amount": "-5"}, "-5"),
    ({"start": "2025-01-20", "amount": "5", "unit": "fortnight"}, "'fortnight'"),
    ({"start": "2025-01-32", "amount": "5"}, "'2025-01-32'"),
    ({"start": "2025-01-20", "amount": "5", "pause": "2025-01-21"}, "'2025-01-21'"),
])
def test_http_deadline_bad_input(api, params, quoted) -> None:
    response = api.get("/api/calendar/deadline", params=params, headers=login(api, "clerk"))

    assert response.status_code == 422
    assert quoted in response.json()["error"]["message"]
