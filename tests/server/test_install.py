"""Installing taskops enables its jupyter-server extension (jupyter_server_config.d), and a
wheel carries the dashboard notebook."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from taskops.testing import jupyter_env


def test_the_extension_is_enabled_on_install_and_validates(tmp_path: Path) -> None:
    # a fresh Jupyter config folder: what enables it is the installed config file
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter_server.extension.serverextension", "list"],
        env=jupyter_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"taskops\.server\s+enabled", text), text
    assert re.search(r"taskops\.server\s+\S*\s*OK", text), text
    installed = Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d/taskops.json"
    assert installed.is_file()


def run(argv: list[str], **kwargs: Any) -> str:
    """The standard output of ``argv``, which must succeed (else its output is shown)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_wheel_ships_the_dashboard_notebook_and_finds_it(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    wheels, target = tmp_path / "wheels", tmp_path / "target"
    pip = [sys.executable, "-m", "pip"]
    # no build isolation: the build backend (hatchling) is one of the test extras
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(root)])
    (wheel,) = wheels.glob("taskops-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("taskops/dashboards/taskops.ipynb")
    assert packaged == (root / "dashboards" / "taskops.ipynb").read_bytes()

    run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)])
    # the installed copy comes first on the path, before this editable checkout
    code = (
        "import taskops; from taskops.server.dashboard import dashboard_notebook; "
        "print(taskops.__file__); print(dashboard_notebook())"
    )
    env = {**jupyter_env(tmp_path), "PYTHONPATH": str(target)}
    package, notebook = run([sys.executable, "-c", code], env=env, cwd=tmp_path).split()
    assert Path(package) == target / "taskops" / "__init__.py"
    assert Path(notebook) == target / "taskops" / "dashboards" / "taskops.ipynb"
