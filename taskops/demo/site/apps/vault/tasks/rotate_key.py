"""VaultKeyRotation: give a vault key a new version, sealed with ``VAULT_TOKEN``.

The token comes from the task's environment and is never printed or stored: the vault keeps
only its sha256, bound on first use, and refuses a different token afterwards. Each version
holds 32 random bytes sealed (XOR) with a pad derived from the token, and a fingerprint
that is safe to show. This is a demo of the workflow, not real cryptography.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
from datetime import datetime
from typing import Any

DEFAULTS = {"KEY_NAME": "api-signing-key", "KEEP_VERSIONS": 3}
SAMPLE_VAULT: dict[str, Any] = {
    "entries": {
        "smtp.host": "mail.example.org",
        "smtp.port": "587",
        "metrics.retention": "24h",
    },
    "keys": {},
}


def pad(token: str, key_name: str, version: int) -> bytes:
    return hashlib.sha256(f"{token}:{key_name}:{version}".encode()).digest()


def unseal(sealed: str, token: str, key_name: str, version: int) -> bytes:
    """The key bytes of one version (what a service holding the token would do)."""
    return bytes(
        a ^ b for a, b in zip(base64.b64decode(sealed), pad(token, key_name, version), strict=True)
    )


def run(ctx: Any) -> None:
    params = {**DEFAULTS, **ctx.params}
    name = str(params["KEY_NAME"])
    keep = max(1, int(params["KEEP_VERSIONS"]))
    token = ctx.env.get("VAULT_TOKEN", "")
    if not token:
        raise RuntimeError("VAULT_TOKEN is not set in the task's environment")

    path = ctx.data_dir / "demo" / "vault" / "vault.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    vault: dict[str, Any] = (
        json.loads(path.read_text()) if path.exists() else copy.deepcopy(SAMPLE_VAULT)
    )
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    if vault.setdefault("tokenSha256", token_hash) != token_hash:
        raise PermissionError("VAULT_TOKEN does not open this vault (a different token sealed it)")

    versions = vault.setdefault("keys", {}).setdefault(name, [])
    version = versions[-1]["version"] + 1 if versions else 1
    key = secrets.token_bytes(32)
    sealed = bytes(a ^ b for a, b in zip(key, pad(token, name, version), strict=True))
    versions.append(
        {
            "version": version,
            "createdAt": datetime.now().astimezone().isoformat(timespec="seconds"),
            "fingerprint": hashlib.sha256(key).hexdigest()[:16],
            "sealed": base64.b64encode(sealed).decode(),
        }
    )
    dropped = versions[:-keep]
    del versions[:-keep]

    partial = path.with_name(".vault.json.partial")
    partial.write_text(json.dumps(vault, indent=2))
    partial.replace(path)  # VaultBackup never copies half a vault
    ctx.logger.info(
        "rotated %s to version %d (fingerprint %s)", name, version, versions[-1]["fingerprint"]
    )
    for old in dropped:
        ctx.logger.info("retired version %d of %s", old["version"], name)
    ctx.logger.info("kept versions %s of %s", [v["version"] for v in versions], name)


if __name__ == "__main__":  # without the runner: VAULT_TOKEN=... python rotate_key.py
    from taskops.demo import run_standalone

    run_standalone(run, "vault.VaultKeyRotation", DEFAULTS, __file__)
