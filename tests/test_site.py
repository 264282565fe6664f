"""Reading a site's YAML: one broken file hides nothing else; every error names its place."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskops
from taskops.errors import InvalidInput
from taskops.site import Catalog, Site
from taskops.testing import make_site

GOOD = {"name": "Good", "schedule": "0 * * * *", "scriptPath": "tasks/good.py"}


def errors_of(site_dir: Path) -> list[tuple[str, str | None, str | None, str]]:
    snapshot = Catalog(Site(site_dir)).snapshot()
    return [(e.file, e.task, e.field, e.message) for e in snapshot.errors]


def test_apps_lists_global_first_then_app_folders(tmp_path: Path) -> None:
    site = make_site(tmp_path / "s", {"global": [GOOD], "zeta": [GOOD], "Alpha": [GOOD]})
    (site / "apps" / "not an app").mkdir()
    (site / "apps" / "empty").mkdir()
    assert Site(site).apps() == ["global", "Alpha", "empty", "zeta"]


def test_broken_yaml_hides_only_its_own_app(tmp_path: Path) -> None:
    site = make_site(tmp_path / "s", {"global": [GOOD], "vault": [GOOD], "metrics": [GOOD]})
    (site / "apps" / "vault" / "config" / "tasks.yaml").write_text("tasks:\n  - name: [oops\n")
    with taskops.open_site(site) as ops:
        assert [t.id for t in ops.tasks.list()] == ["global.Good", "metrics.Good"]
        (error,) = ops.site_errors()
        assert error.file == "apps/vault/config/tasks.yaml"
        assert error.app == "vault"
        assert "invalid YAML" in error.message


def test_invalid_task_names_file_task_and_field(tmp_path: Path) -> None:
    bad = {
        "name": "Bad",
        "schedule": "0 * * * *",
        "scriptPath": "tasks/bad.py",
        "termination": {"maxFailures": "three"},
    }
    site = make_site(tmp_path / "s", {"vault": [GOOD, bad]})
    assert errors_of(site) == [
        (
            "apps/vault/config/tasks.yaml",
            "Bad",
            "termination.maxFailures",
            "must be a whole number, not str 'three'",
        ),
    ]
    with taskops.open_site(site) as ops:
        assert [t.id for t in ops.tasks.list()] == ["vault.Good"]


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ({"name": "X", "schedule": "0 0 31 2 * * *", "scriptPath": "a.py"}, "schedule", ""),
        ({"name": "X", "schedule": "@reboot", "scriptPath": "a.py"}, "schedule", "reboot"),
        (
            {
                "name": "X",
                "schedule": "0 * * * *",
                "timezone": "Nowhere/City",
                "scriptPath": "a.py",
            },
            "timezone",
            "Nowhere/City",
        ),
        (
            {"name": "X", "schedule": "0 * * * *", "scriptPath": "../../../../etc/passwd"},
            "scriptPath",
            "outside the site",
        ),
        (
            {"name": "X", "schedule": "0 * * * *", "scriptPath": "/bin/true"},
            "scriptPath",
            "relative",
        ),
        ({"name": "X", "schedule": "0 * * * *"}, "scriptPath", "required"),
        (
            {"name": "X", "schedule": "0 * * * *", "scriptPath": "a.py", "owner": "me"},
            "owner",
            "unknown field",
        ),
        ({"name": "-X", "schedule": "0 * * * *", "scriptPath": "a.py"}, "name", "not a valid name"),
    ],
)
def test_each_kind_of_bad_entry_is_reported(
    tmp_path: Path, entry: dict[str, object], field: str, words: str
) -> None:
    site = make_site(tmp_path / "s", {"vault": [GOOD, entry]}, scripts=False)
    ((file, _task, got_field, message),) = errors_of(site)
    assert file == "apps/vault/config/tasks.yaml"
    assert got_field == field
    assert words in message


def test_duplicate_names_and_bad_shapes(tmp_path: Path) -> None:
    site = make_site(tmp_path / "s", {"vault": [GOOD, GOOD]})
    assert [(e[1], e[2]) for e in errors_of(site)] == [("Good", "name")]
    (site / "apps" / "vault" / "config" / "tasks.yaml").write_text("- just a list\n")
    assert "must be a mapping" in errors_of(site)[0][3]
    (site / "apps" / "vault" / "config" / "tasks.yaml").write_text("tasks: {a: 1}\nextra: 1\n")
    assert {e[2] for e in errors_of(site)} == {"extra", "tasks"}
    (site / "apps" / "vault" / "config" / "tasks.yaml").write_text("")
    assert errors_of(site) == []


def test_catalog_rereads_a_changed_file(tmp_path: Path) -> None:
    site = make_site(tmp_path / "s", {"vault": [GOOD]})
    catalog = Catalog(Site(site))
    first = catalog.snapshot()
    assert catalog.snapshot() is first  # nothing changed: nothing parsed
    make_site(site, {"vault": [GOOD, {**GOOD, "name": "Second"}]})
    assert set(catalog.snapshot().tasks) == {"vault.Good", "vault.Second"}
    make_site(site, {"metrics": [GOOD]})
    assert "metrics.Good" in catalog.snapshot().tasks


def test_site_timezone(tmp_path: Path) -> None:
    site = make_site(tmp_path / "s", {"global": [GOOD]}, timezone="America/New_York")
    assert Catalog(Site(site)).snapshot().timezone == "America/New_York"
    make_site(site, {"global": [GOOD]}, timezone="Nowhere/City")
    snapshot = Catalog(Site(site)).snapshot()
    assert snapshot.errors[0].field == "timezone"
    assert "global.Good" in snapshot.tasks


def test_resolve_script(tmp_path: Path) -> None:
    root = make_site(tmp_path / "s", {"vault": [GOOD]})
    site = Site(root)
    assert (
        site.resolve_script("vault", "tasks/good.py") == root.resolve() / "apps/vault/tasks/good.py"
    )
    assert site.resolve_script("vault", "../../tasks/x.py") == root.resolve() / "tasks/x.py"
    assert site.resolve_script("global", "apps/vault/tasks/good.py").is_file()
    for bad in ("../../../x.py", "/etc/passwd", "~/x.py"):
        with pytest.raises(InvalidInput) as caught:
            site.resolve_script("vault", bad)
        assert caught.value.fields() and "scriptPath" in caught.value.fields()
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="outside"):
        site.resolve_script("global", "escape/anything.py")
    assert site.script_path_for("vault", root.resolve() / "tasks" / "x.py") == "../../tasks/x.py"


def test_open_site_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInput, match="no site folder"):
        taskops.open_site(tmp_path / "missing")
    monkeypatch.delenv("TASKOPS_SITE", raising=False)
    with pytest.raises(InvalidInput, match="TASKOPS_SITE"):
        taskops.open_site()
    site = make_site(tmp_path / "s", {"vault": [GOOD]})
    monkeypatch.setenv("TASKOPS_SITE", str(site))
    with taskops.open_site() as ops:
        assert [t.id for t in ops.tasks.list()] == ["vault.Good"]
        assert ops.site.db_path == site.resolve() / "data" / "taskops.db"
        assert ops.site.db_path.is_file()
