"""Validation of task configurations, the same for YAML files, the API and the UI.

A spec travels as a dict with the YAML/JSON keys (``name``, ``scriptPath``,
``termination: {maxRuntime, ...}``). ``normalize_spec`` checks a whole one and fills the
defaults; ``normalize_changes`` checks only the fields given (an edit). Both return plain
JSON-able dicts, which is what the store keeps, and raise ``InvalidInput`` listing every
problem with its field. ``to_spec`` turns a normalized dict into a ``TaskSpec``.

Whether a script path stays inside the site is the site's question (``Site.resolve_script``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from taskops.cron import Schedule, load_timezone
from taskops.errors import InvalidInput, Problem
from taskops.model import NAME_PATTERN, MisfirePolicy, TaskSpec, Termination

__all__ = [
    "SPEC_FIELDS",
    "TERMINATION_FIELDS",
    "normalize_changes",
    "normalize_spec",
    "to_spec",
]

SPEC_FIELDS = (
    "name",
    "description",
    "schedule",
    "timezone",
    "scriptPath",
    "enabled",
    "parameters",
    "environment",
    "termination",
    "misfire",
    "maxInstances",
)
TERMINATION_FIELDS = ("maxRuntime", "maxFailures", "killOnTimeout")
_REQUIRED = ("name", "schedule", "scriptPath")
_DEFAULTS: dict[str, Any] = {
    "description": "",
    "timezone": None,
    "enabled": True,
    "parameters": {},
    "environment": {},
    "termination": {"maxRuntime": None, "maxFailures": 3, "killOnTimeout": True},
    "misfire": MisfirePolicy.SKIP.value,
    "maxInstances": 1,
}
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_NAME = 100
_MAX_TEXT = 2000


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collects the problems of one input."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, field: str, message: str) -> None:
        self.problems.append(Problem(field=field, message=message))

    def name(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            self.fail("name", f"must be a non-empty string, not {_type_name(value)}")
        elif len(value) > _MAX_NAME:
            self.fail("name", f"must be at most {_MAX_NAME} characters")
        elif not NAME_PATTERN.match(value):
            self.fail(
                "name",
                f"{value!r} is not a valid name: start with a letter or digit, then use "
                "letters, digits, '_' and '-' only",
            )
        else:
            return value
        return None

    def text(self, field: str, value: Any) -> str | None:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(field, f"must be a string, not {_type_name(value)}")
            return None
        if len(value) > _MAX_TEXT:
            self.fail(field, f"must be at most {_MAX_TEXT} characters")
            return None
        return value

    def timezone(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail("timezone", f"must be an IANA timezone name, not {_type_name(value)}")
            return None
        try:
            load_timezone(value)
        except InvalidInput as exc:
            self.problems.extend(exc.problems or [Problem(field="timezone", message=str(exc))])
            return None
        return value

    def schedule(self, value: Any, timezone: str | None) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail("schedule", f"must be a cron expression string, not {_type_name(value)}")
            return None
        try:
            Schedule.parse(value, timezone or "UTC")
        except InvalidInput as exc:
            problems = [p for p in exc.problems if p.field == "schedule"]
            self.problems.extend(problems or [Problem(field="schedule", message=str(exc))])
            return None
        return value.strip()

    def script_path(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail("scriptPath", f"must be a non-empty path string, not {_type_name(value)}")
            return None
        if "\x00" in value:
            self.fail("scriptPath", "must not contain NUL characters")
            return None
        return value.strip()

    def boolean(self, field: str, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.fail(field, f"must be true or false, not {value!r}")
            return None
        return value

    def integer(self, field: str, value: Any, *, low: int, high: int) -> int | None:
        if not _is_int(value):
            self.fail(field, f"must be a whole number, not {_type_name(value)} {value!r}")
            return None
        if not low <= value <= high:
            self.fail(field, f"must be between {low} and {high}, not {value}")
            return None
        return int(value)

    def variables(self, field: str, value: Any, *, stringify: bool) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(field, f"must be a mapping of names to values, not {_type_name(value)}")
            return None
        out: dict[str, Any] = {}
        ok = True
        for key, item in value.items():
            where = f"{field}.{key}"
            if not isinstance(key, str) or not _VAR_NAME.match(key):
                self.fail(
                    where,
                    f"{key!r} is not a valid name: letters, digits and '_', "
                    "not starting with a digit",
                )
                ok = False
            elif isinstance(item, bool):
                out[key] = ("true" if item else "false") if stringify else item
            elif isinstance(item, float) and not math.isfinite(item):
                self.fail(where, f"must be a finite number, not {item}")
                ok = False
            elif isinstance(item, str | int | float):
                out[key] = str(item) if stringify else item
            else:
                self.fail(where, f"must be a string, number or boolean, not {_type_name(item)}")
                ok = False
        return out if ok else None

    def termination(self, value: Any, *, partial: bool) -> dict[str, Any] | None:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            self.fail("termination", f"must be a mapping, not {_type_name(value)}")
            return None
        unknown = [k for k in value if k not in TERMINATION_FIELDS]
        for key in unknown:
            self.fail(
                f"termination.{key}",
                f"unknown field (known: {', '.join(TERMINATION_FIELDS)})",
            )
        out: dict[str, Any] = {} if partial else dict(_DEFAULTS["termination"])
        if "maxRuntime" in value:
            if value["maxRuntime"] is None:
                out["maxRuntime"] = None
            else:
                out["maxRuntime"] = self.integer(
                    "termination.maxRuntime", value["maxRuntime"], low=1, high=31 * 86400
                )
        if "maxFailures" in value:
            out["maxFailures"] = self.integer(
                "termination.maxFailures", value["maxFailures"], low=0, high=1000
            )
        if "killOnTimeout" in value:
            out["killOnTimeout"] = self.boolean("termination.killOnTimeout", value["killOnTimeout"])
        return None if unknown else out

    def misfire(self, value: Any) -> str | None:
        allowed = [p.value for p in MisfirePolicy]
        if value not in allowed:
            self.fail("misfire", f"must be one of {', '.join(allowed)}, not {value!r}")
            return None
        return str(value)


def _check_fields(
    data: Mapping[str, Any], *, partial: bool, site_timezone: str, extra: tuple[str, ...]
) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"a task must be a mapping of fields, not {_type_name(data)}",
            problems=[Problem(field="task", message="must be a mapping of fields")],
        )
    check = _Checker()
    for key in data:
        if key not in SPEC_FIELDS and key not in extra:
            check.fail(str(key), f"unknown field (known: {', '.join(SPEC_FIELDS)})")
    if not partial:
        for key in _REQUIRED:
            if key not in data:
                check.fail(key, "is required")
    out: dict[str, Any] = {}
    if "name" in data:
        out["name"] = check.name(data["name"])
    if "description" in data:
        out["description"] = check.text("description", data["description"])
    if "timezone" in data:
        out["timezone"] = check.timezone(data["timezone"])
    if "schedule" in data:
        tz = data.get("timezone") if isinstance(data.get("timezone"), str) else None
        if tz is not None and out.get("timezone") is None:
            tz = None  # the timezone's own problem is reported already
        out["schedule"] = check.schedule(data["schedule"], tz or site_timezone)
    if "scriptPath" in data:
        out["scriptPath"] = check.script_path(data["scriptPath"])
    if "enabled" in data:
        out["enabled"] = check.boolean("enabled", data["enabled"])
    if "parameters" in data:
        out["parameters"] = check.variables("parameters", data["parameters"], stringify=False)
    if "environment" in data:
        out["environment"] = check.variables("environment", data["environment"], stringify=True)
    if "termination" in data:
        out["termination"] = check.termination(data["termination"], partial=partial)
    if "misfire" in data:
        out["misfire"] = check.misfire(data["misfire"])
    if "maxInstances" in data:
        out["maxInstances"] = check.integer("maxInstances", data["maxInstances"], low=1, high=100)
    if check.problems:
        raise InvalidInput.from_problems(check.problems)
    return out


def normalize_spec(
    data: Mapping[str, Any], *, site_timezone: str = "UTC", extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A whole task spec, checked, with defaults filled in.

    ``extra`` names keys that the caller handles itself (e.g. ``app``); they are left out
    of the result. Raises InvalidInput naming every bad, unknown or missing field.
    """
    checked = _check_fields(data, partial=False, site_timezone=site_timezone, extra=extra)
    out = {key: value for key, value in _DEFAULTS.items() if key not in checked}
    out.update(checked)
    return {key: out[key] for key in SPEC_FIELDS}


def normalize_changes(
    data: Mapping[str, Any], *, site_timezone: str = "UTC", extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Only the fields given, checked. ``termination`` holds only the sub-fields given.
    Raises InvalidInput; an empty change is one too."""
    checked = _check_fields(data, partial=True, site_timezone=site_timezone, extra=extra)
    if not checked:
        raise InvalidInput(
            "no fields to change", problems=[Problem(field="task", message="no fields given")]
        )
    return checked


def apply_changes(spec: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with ``changes`` applied (termination merged per sub-field)."""
    out = dict(spec)
    for key, value in changes.items():
        if key == "termination":
            out["termination"] = {**spec.get("termination", {}), **value}
        else:
            out[key] = value
    return out


def to_spec(data: Mapping[str, Any]) -> TaskSpec:
    """A ``TaskSpec`` from a normalized dict."""
    term = data["termination"]
    return TaskSpec(
        name=data["name"],
        description=data["description"],
        schedule=data["schedule"],
        timezone=data["timezone"],
        script_path=data["scriptPath"],
        enabled=data["enabled"],
        parameters=dict(data["parameters"]),
        environment=dict(data["environment"]),
        termination=Termination(
            max_runtime=term["maxRuntime"],
            max_failures=term["maxFailures"],
            kill_on_timeout=term["killOnTimeout"],
        ),
        misfire=_MISFIRE_POLICIES[data["misfire"]],
        max_instances=data["maxInstances"],
    )


_MISFIRE_POLICIES = {policy.value: policy for policy in MisfirePolicy}
"""Value -> policy (faster than ``MisfirePolicy(value)`` for 10,000 tasks)."""
