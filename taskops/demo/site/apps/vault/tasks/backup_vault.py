"""VaultBackup: copy the vault store to a timestamped backup, verify it, keep the last N.

``<data>/demo/vault/vault.json`` (created with sample entries when missing) is copied to
``<data>/demo/vault/backups/vault_<time>.json`` beside a ``.sha256`` file (``sha256sum``
format). The copy is read back and its checksum compared; the backup storage is simulated
as flaky: with probability ``FAILURE_RATE`` a write loses a byte, the check catches it and
the run fails. Only after a good backup are the oldest pruned to ``KEEP_BACKUPS``.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULTS = {"KEEP_BACKUPS": 5, "FAILURE_RATE": 0.25}
SAMPLE_VAULT: dict[str, Any] = {
    "entries": {
        "smtp.host": "mail.example.org",
        "smtp.port": "587",
        "metrics.retention": "24h",
    },
    "keys": {},
}


def vault_file(data_dir: Path) -> Path:
    path = data_dir / "demo" / "vault" / "vault.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(SAMPLE_VAULT, indent=2))
    return path


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    keep = max(1, int(params["KEEP_BACKUPS"]))
    failure_rate = float(params["FAILURE_RATE"])
    source = vault_file(ctx.data_dir)
    backups = source.parent / "backups"
    backups.mkdir(exist_ok=True)

    data = source.read_bytes()
    expected = hashlib.sha256(data).hexdigest()
    target = backups / f"vault_{datetime.now():%Y%m%d_%H%M%S_%f}.json"
    ctx.logger.info("backing up %s (%d bytes, sha256 %s)", source.name, len(data), expected[:12])

    written = data
    if random.random() < failure_rate:  # the simulated flaky storage drops a byte
        written = data[:-1]
    target.write_bytes(written)
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    if actual != expected:
        target.unlink()
        raise RuntimeError(
            f"backup verification failed for {target.name}: sha256 {actual[:12]} of the "
            f"written copy differs from {expected[:12]} of the vault (simulated flaky "
            f"storage, FAILURE_RATE={failure_rate}); the bad copy was removed"
        )
    target.with_name(target.name + ".sha256").write_text(f"{expected}  {target.name}\n")
    ctx.logger.info("verified %s", target.name)

    existing = sorted(backups.glob("vault_*.json"))
    for old in existing[:-keep]:
        old.unlink()
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
        ctx.logger.info("pruned %s", old.name)
    ctx.logger.info("%d backups kept (KEEP_BACKUPS=%d)", min(len(existing), keep), keep)


if __name__ == "__main__":  # without the runner: python backup_vault.py
    from taskops.demo import run_standalone

    run_standalone(run, "vault.VaultBackup", DEFAULTS, __file__)
