"""Shared helpers for the fingerprint tests: recorded fixtures and the nvidia_gpu_exporter capture sections."""

from __future__ import annotations

import re
import sys
from pathlib import Path

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "fingerprint"
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def fixture_text(*parts: str) -> str:
    return FIX.joinpath(*parts).read_text()


def capture_sections(text: str) -> dict[str, str]:
    """Split an nvidia_gpu_exporter capture into {section title: raw command output}."""
    parts = re.split(r"^#{20,}\n# (.+?)\n(?:# \$ .*\n)?#{20,}\n", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


