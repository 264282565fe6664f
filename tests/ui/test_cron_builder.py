"""The cron builder, clicked in Python: fields, presets, the raw expression, timezones, errors.

The ``ops`` fixture's FakeClock stands at 2026-01-16 14:05:30 UTC (a Friday) in a UTC site;
expected fire times come from croniter here, independently of the service.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

import taskops
from taskops.testing import FakeClock, make_site
from taskops.ui.cron_builder import INVALID_CLASS, PRESETS, CronBuilder
from taskops.ui.feedback import Alerts

NOW = datetime(2026, 1, 16, 14, 5, 30, tzinfo=UTC)
FIELD_KEYS = ("minute", "hour", "day", "month", "weekday")


def expected_runs(expression: str, timezone: str = "UTC", n: int = 5) -> list[datetime]:
    """The next ``n`` fire times after NOW in ``timezone``, by croniter alone (no DST
    change falls in the weeks these tests look at)."""
    walker = croniter(expression, NOW.astimezone(ZoneInfo(timezone)))
    return [walker.get_next(datetime) for _ in range(n)]


def fields(builder: CronBuilder) -> list[str]:
    return [builder.fields[key].value for key in FIELD_KEYS]


def disabled(builder: CronBuilder) -> list[bool]:
    return [builder.fields[key].disabled for key in FIELD_KEYS]


def invalid_inputs(builder: CronBuilder) -> set[str]:
    inputs = {
        **builder.fields,
        "expression": builder.expression_box,
        "preset": builder.preset,
        "timezone": builder.timezone_box,
    }
    return {key for key, widget in inputs.items() if INVALID_CLASS in widget._dom_classes}


def preset_labels(builder: CronBuilder) -> list[str]:
    return [label for label, _expression in builder.preset.options]


@pytest.fixture
def builder(ops: taskops.TaskOps) -> CronBuilder:
    return CronBuilder(ops)


@pytest.fixture
def preview_calls(ops: taskops.TaskOps, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Records every call of ``ops.tasks.preview_schedule`` (and still makes it)."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., dict[str, Any]] = ops.tasks.preview_schedule

    def spy(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append((*args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(ops.tasks, "preview_schedule", spy)
    return calls


def test_default_shows_daily_at_two_with_its_next_runs(builder: CronBuilder) -> None:
    assert fields(builder) == ["0", "2", "*", "*", "*"]
    assert builder.expression == builder.expression_box.value == "0 2 * * *"
    assert builder.timezone == ""
    assert builder.timezone_box.value == "UTC"
    assert builder.valid is True
    assert builder.error == ""
    assert builder.text == "At 02:00 AM"
    assert "At 02:00 AM" in builder.text_view.value
    assert "UTC (site timezone)" in builder.text_view.value
    assert builder.next_runs == expected_runs("0 2 * * *")
    assert "Sat 2026-01-17 02:00 UTC" in builder.next_view.value
    assert "Wed 2026-01-21 02:00 UTC" in builder.next_view.value
    assert builder.next_run_view.value == "Next run: tomorrow at 02:00 UTC (in 11 h 54 min)"
    assert builder.preset.value == "0 2 * * *"
    assert "Custom" not in preset_labels(builder)
    assert builder.value == {"schedule": "0 2 * * *", "timezone": None}
    assert builder.error_view.value == ""
    assert invalid_inputs(builder) == set()


def test_stable_css_classes(builder: CronBuilder) -> None:
    assert "taskops-cron" in builder._dom_classes
    named = {
        "taskops-cron-minute": builder.minute,
        "taskops-cron-hour": builder.hour,
        "taskops-cron-day": builder.day,
        "taskops-cron-month": builder.month,
        "taskops-cron-weekday": builder.weekday,
        "taskops-cron-expression": builder.expression_box,
        "taskops-cron-preset": builder.preset,
        "taskops-cron-timezone": builder.timezone_box,
        "taskops-cron-text": builder.text_view,
        "taskops-cron-next": builder.next_view,
        "taskops-cron-next-run": builder.next_run_view,
        "taskops-cron-error": builder.error_view,
    }
    for css_class, widget in named.items():
        assert css_class in widget._dom_classes, css_class


def test_every_field_has_a_hint_and_updates_continuously(builder: CronBuilder) -> None:
    for key in FIELD_KEYS:
        box = builder.fields[key]
        assert box.continuous_update is True
        assert box.placeholder == "*"
        assert "-" in box.tooltip  # the allowed range, e.g. 0-59
    assert builder.minute.tooltip.startswith("Minute: 0-59")
    assert builder.expression_box.continuous_update is True


def test_editing_fields_builds_the_expression(builder: CronBuilder) -> None:
    builder.minute.value = "*/10"
    builder.hour.value = "9-17"
    builder.weekday.value = "1-5"
    assert builder.expression == builder.expression_box.value == "*/10 9-17 * * 1-5"
    assert builder.valid
    assert builder.text == "Every 10 minutes, between 09:00 AM and 05:59 PM, Monday through Friday"
    assert builder.next_runs == expected_runs("*/10 9-17 * * 1-5")
    assert builder.next_run_view.value == "Next run: today at 14:10 UTC (in 4 min 30 s)"
    assert builder.value == {"schedule": "*/10 9-17 * * 1-5", "timezone": None}


def test_an_empty_field_means_every_value_and_spaces_inside_a_field_are_dropped(
    builder: CronBuilder,
) -> None:
    builder.minute.value = ""
    assert builder.expression == "* 2 * * *"
    assert builder.minute.value == ""  # the box is left as the user has it
    builder.minute.value = "0"
    builder.day.value = "1, 15"
    assert builder.expression == "0 2 1,15 * *"
    assert builder.day.value == "1, 15"
    assert builder.next_runs == expected_runs("0 2 1,15 * *")


@pytest.mark.parametrize(("label", "expression"), PRESETS)
def test_a_preset_fills_the_fields(builder: CronBuilder, label: str, expression: str) -> None:
    builder.preset.value = expression
    assert builder.preset.label == label
    assert builder.expression == builder.expression_box.value == expression
    assert fields(builder) == expression.split()
    assert disabled(builder) == [False] * 5
    assert builder.valid
    assert builder.next_runs == expected_runs(expression)


def test_custom_shows_while_the_fields_match_no_preset(builder: CronBuilder) -> None:
    builder.hour.value = "7"
    assert builder.preset.label == "Custom"
    assert preset_labels(builder)[-1] == "Custom"
    assert builder.expression == "0 7 * * *"  # showing Custom changed nothing
    builder.hour.value = "0"
    assert builder.preset.label == "Daily at midnight"
    assert "Custom" not in preset_labels(builder)


def test_a_five_field_expression_fills_the_fields(builder: CronBuilder) -> None:
    builder.expression_box.value = "30  4 1 */2 0"
    assert fields(builder) == ["30", "4", "1", "*/2", "0"]
    assert disabled(builder) == [False] * 5
    assert builder.expression_box.value == "30  4 1 */2 0"  # not rewritten under the cursor
    assert builder.value == {"schedule": "30  4 1 */2 0", "timezone": None}
    assert builder.next_runs == expected_runs("30 4 1 */2 0")
    assert builder.preset.label == "Custom"


def test_a_six_field_expression_disables_the_fields(builder: CronBuilder) -> None:
    builder.expression_box.value = "0 2 * * * 30"
    assert builder.valid
    assert fields(builder) == ["0", "2", "*", "*", "*"]
    assert disabled(builder) == [True] * 5
    assert builder.text == "At 02:00:30 AM"
    assert builder.next_runs == expected_runs("0 2 * * * 30")
    assert builder.next_runs[0].second == 30
    assert "Sat 2026-01-17 02:00:30 UTC" in builder.next_view.value
    assert builder.preset.label == "Custom"
    builder.expression_box.value = "0 2 * * *"
    assert disabled(builder) == [False] * 5


def test_an_alias_clears_and_disables_the_fields(builder: CronBuilder) -> None:
    builder.expression_box.value = "@daily"
    assert builder.valid
    assert builder.expression == "@daily"
    assert fields(builder) == [""] * 5
    assert disabled(builder) == [True] * 5
    assert builder.text == "At 12:00 AM"
    assert builder.next_runs == expected_runs("0 0 * * *")
    assert builder.value == {"schedule": "@daily", "timezone": None}
    builder.preset.value = "0 * * * *"
    assert builder.expression == "0 * * * *"
    assert fields(builder) == ["0", "*", "*", "*", "*"]
    assert disabled(builder) == [False] * 5


def test_a_half_typed_expression_leaves_the_fields_alone(builder: CronBuilder) -> None:
    builder.expression_box.value = "15 3 *"
    assert builder.valid is False
    assert "has 3 fields" in builder.error
    assert fields(builder) == ["0", "2", "*", "*", "*"]
    assert invalid_inputs(builder) == {"expression"}
    builder.expression_box.value = "15 3 * * *"
    assert builder.valid
    assert fields(builder) == ["15", "3", "*", "*", "*"]
    assert invalid_inputs(builder) == set()


def test_an_invalid_field_shows_the_error_and_marks_the_field(builder: CronBuilder) -> None:
    builder.minute.value = "61"
    assert builder.valid is False
    assert "minute field '61' is out of range (allowed: 0-59)" in builder.error
    assert "out of range" in builder.error_view.value
    assert "color:#c62828" in builder.error_view.value
    assert invalid_inputs(builder) == {"minute", "expression"}
    assert builder.text == ""
    assert builder.text_view.value == ""
    assert builder.next_runs == []
    assert builder.next_view.value == ""
    assert builder.next_run_view.value == ""
    assert builder.expression == "61 2 * * *"

    builder.minute.value = "59"
    assert builder.valid
    assert builder.error == ""
    assert builder.error_view.value == ""
    assert invalid_inputs(builder) == set()
    assert builder.next_runs == expected_runs("59 2 * * *")


@pytest.mark.parametrize(
    ("key", "value"),
    [("hour", "24"), ("day", "32"), ("month", "13"), ("weekday", "8"), ("weekday", "funday")],
)
def test_each_field_is_marked_by_its_own_error(builder: CronBuilder, key: str, value: str) -> None:
    builder.fields[key].value = value
    assert builder.valid is False
    assert invalid_inputs(builder) == {key, "expression"}


def test_a_day_that_never_occurs_marks_day_and_month(builder: CronBuilder) -> None:
    builder.day.value = "31"
    builder.month.value = "2"
    assert builder.valid is False
    assert "never fires" in builder.error
    assert invalid_inputs(builder) == {"day", "month", "expression"}


def test_error_text_is_escaped(builder: CronBuilder) -> None:
    builder.minute.value = "<img/src=x/onerror=alert(1)>"
    assert builder.valid is False
    assert "<img" not in builder.error_view.value
    assert "&lt;img" in builder.error_view.value


def test_another_timezone_shows_runs_there(builder: CronBuilder) -> None:
    builder.timezone_box.value = "Europe/Berlin"
    assert builder.timezone == "Europe/Berlin"
    assert builder.value == {"schedule": "0 2 * * *", "timezone": "Europe/Berlin"}
    assert builder.next_runs == expected_runs("0 2 * * *", "Europe/Berlin")
    assert "Sat 2026-01-17 02:00 CET" in builder.next_view.value
    assert builder.next_run_view.value == "Next run: tomorrow at 02:00 CET (in 10 h 54 min)"
    assert "Europe/Berlin" in builder.text_view.value
    assert "site timezone" not in builder.text_view.value
    # back to the site's timezone: the schedule follows the site again
    builder.timezone_box.value = "UTC"
    assert builder.timezone == ""
    assert builder.value["timezone"] is None
    builder.timezone_box.value = ""
    assert builder.timezone == ""
    assert builder.next_runs == expected_runs("0 2 * * *")


def test_the_timezone_box_offers_every_iana_name(builder: CronBuilder) -> None:
    options = list(builder.timezone_box.options)
    assert options == sorted(options)
    assert {"UTC", "Europe/Berlin", "America/New_York"} <= set(options)
    assert builder.timezone_box.ensure_option is True


def test_an_unknown_timezone_shows_the_error(builder: CronBuilder) -> None:
    builder.timezone_box.value = "Mars/Olympus_Mons"
    assert builder.valid is False
    assert "unknown timezone 'Mars/Olympus_Mons'" in builder.error
    assert invalid_inputs(builder) == {"timezone"}
    assert builder.next_runs == []
    assert builder.next_view.value == ""
    builder.timezone_box.value = "Asia/Tokyo"
    assert builder.valid
    assert invalid_inputs(builder) == set()
    assert builder.next_runs == expected_runs("0 2 * * *", "Asia/Tokyo")


def test_set_loads_a_schedule_with_one_preview(
    builder: CronBuilder, preview_calls: list[tuple[Any, ...]]
) -> None:
    changes: list[str] = []
    builder.observe(lambda change: changes.append(change["name"]), names=["expression", "timezone"])
    builder.set("*/15 * * * *", "Europe/Berlin")
    assert preview_calls == [("*/15 * * * *", "Europe/Berlin", {})]
    assert sorted(changes) == ["expression", "timezone"]  # once each, no echo from the inputs
    assert builder.expression == builder.expression_box.value == "*/15 * * * *"
    assert fields(builder) == ["*/15", "*", "*", "*", "*"]
    assert builder.preset.label == "Every 15 minutes"
    assert builder.timezone_box.value == "Europe/Berlin"
    assert builder.value == {"schedule": "*/15 * * * *", "timezone": "Europe/Berlin"}
    assert builder.next_runs == expected_runs("*/15 * * * *", "Europe/Berlin")


def test_set_keeps_a_timezone_the_task_names_even_if_it_is_the_sites(
    builder: CronBuilder,
) -> None:
    builder.set("0 3 * * *", "UTC")
    assert builder.timezone == "UTC"
    assert builder.value == {"schedule": "0 3 * * *", "timezone": "UTC"}
    builder.set("0 3 * * *", None)
    assert builder.timezone == ""
    assert builder.timezone_box.value == "UTC"
    assert builder.value == {"schedule": "0 3 * * *", "timezone": None}


def test_set_with_an_invalid_schedule_shows_it(builder: CronBuilder) -> None:
    builder.set("0 25 * * *")
    assert builder.valid is False
    assert fields(builder) == ["0", "25", "*", "*", "*"]
    assert invalid_inputs(builder) == {"hour", "expression"}
    builder.set("0 5 * * *")
    assert builder.valid
    assert invalid_inputs(builder) == set()


def test_each_edit_makes_one_preview(
    builder: CronBuilder, preview_calls: list[tuple[Any, ...]]
) -> None:
    builder.minute.value = "5"
    builder.preset.value = "0 9 * * 1-5"
    builder.expression_box.value = "0 9 * * 1-6"
    builder.timezone_box.value = "Asia/Tokyo"
    assert [call[:2] for call in preview_calls] == [
        ("5 2 * * *", None),
        ("0 9 * * 1-5", None),
        ("0 9 * * 1-6", None),
        ("0 9 * * 1-6", "Asia/Tokyo"),
    ]


def test_setting_the_traits_updates_the_inputs(builder: CronBuilder) -> None:
    seen: list[bool] = []
    builder.observe(lambda change: seen.append(change["new"]), names="valid")
    builder.expression = "5 4 * * 0"
    assert builder.expression_box.value == "5 4 * * 0"
    assert fields(builder) == ["5", "4", "*", "*", "0"]
    assert builder.text == "At 04:05 AM, only on Sunday"
    builder.timezone = "America/New_York"
    assert builder.timezone_box.value == "America/New_York"
    assert builder.next_runs == expected_runs("5 4 * * 0", "America/New_York")
    builder.expression = "nonsense"
    assert seen == [False]


def test_the_preview_follows_the_site_clock(builder: CronBuilder, clock: FakeClock) -> None:
    clock.advance(hours=12)  # 2026-01-17 02:05:30 UTC, past the first run
    builder.refresh()
    assert builder.next_runs[0] == datetime(2026, 1, 18, 2, 0, tzinfo=ZoneInfo("UTC"))
    assert builder.next_run_view.value == "Next run: tomorrow at 02:00 UTC (in 23 h 54 min)"


def test_a_site_in_another_timezone_is_the_default(tmp_path: Path, clock: FakeClock) -> None:
    site = make_site(tmp_path / "berlin", {"global": []}, timezone="Europe/Berlin")
    with taskops.open_site(site, user="alice", clock=clock) as ops:
        builder = CronBuilder(ops, "0 23 * * *")
        assert builder.timezone == ""
        assert builder.timezone_box.value == "Europe/Berlin"
        assert builder.next_runs == expected_runs("0 23 * * *", "Europe/Berlin")
        assert "Europe/Berlin (site timezone)" in builder.text_view.value
        assert builder.next_run_view.value == "Next run: today at 23:00 CET (in 7 h 54 min)"


def test_own_alerts_are_shown_given_alerts_are_not(ops: taskops.TaskOps) -> None:
    alone = CronBuilder(ops)
    assert alone.alerts in alone.children
    shared = Alerts()
    inside = CronBuilder(ops, "0 4 * * *", "Asia/Tokyo", alerts=shared)
    assert inside.alerts is shared
    assert shared not in inside.children
    assert inside.value == {"schedule": "0 4 * * *", "timezone": "Asia/Tokyo"}


def test_an_unexpected_failure_of_the_preview_is_an_alert(
    builder: CronBuilder, ops: taskops.TaskOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("store is gone")

    monkeypatch.setattr(ops.tasks, "preview_schedule", broken)
    builder.minute.value = "7"
    assert builder.alerts.messages == [("error", "unexpected error: RuntimeError: store is gone")]
    assert builder.expression == "7 2 * * *"


def test_importing_the_builder_loads_no_pandas_or_plotly() -> None:
    code = (
        "import sys, taskops.ui.cron_builder; "
        "print(sorted(m for m in ('pandas', 'plotly') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
