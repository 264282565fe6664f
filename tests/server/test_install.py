"""Installing taskops enables its jupyter-server extension (jupyter_server_config.d)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import jupyter_env


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
