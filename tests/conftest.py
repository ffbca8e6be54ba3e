"""Shared fixtures: an isolated environment and small models built in the real runtimes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("SWIN_CONVERT_DEBUG", raising=False)


def run_cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (exit codes and stderr as users see them)."""
    full_env = dict(os.environ, NO_COLOR="1", COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=300)


@pytest.fixture
def cli():
    return run_cli
