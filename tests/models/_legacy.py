"""Artifacts as an earlier version saved them: a state key removed, the manifest's hash of state.json redone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def drop_state_key(artifact: Path, key: str) -> None:
    """Remove the top-level ``key`` of ``artifact/state.json`` (it must be there) and rehash it in the manifest."""
    state_path = artifact / "state.json"
    state = json.loads(state_path.read_text())
    del state[key]
    text = json.dumps(state)
    state_path.write_text(text)
    manifest_path = artifact / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["state.json"] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "size": len(text.encode())}
    manifest_path.write_text(json.dumps(manifest))
