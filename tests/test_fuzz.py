"""Mutation fuzzing (issue 13), fixed seed and bounded count: every mutated safetensors header and
.pth file is accepted or refused with a swin_convert error (one line), within the memory and time
bounds. The full runs (10,000 / 2,000 cases) are benchmarks/fuzz.py."""
from __future__ import annotations

import pytest

from fuzzing import fuzz


@pytest.mark.parametrize("kind,count", [("safetensors", 400), ("pth", 200)])
def test_fuzz(tmp_path, kind, count):
    report = fuzz(kind, count, tmp_path, seed=13)
    assert report.crash_count == 0, (report.summary(), report.crashes[:10])
    assert report.counts["rejected"] > count // 2        # the mutations do reach the checks
