"""Numba's on-disk cache is dropped when any kernel source changes."""

from __future__ import annotations

from pathlib import Path

from plastic.kernels_numba.cache_guard import STAMP_NAME, invalidate_stale_cache


def test_cache_is_dropped_when_sources_change(tmp_path: Path) -> None:
    (tmp_path / "math.py").write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "kernel.nbi").write_text("index")
    (cache / "kernel.1.nbc").write_text("code")
    (cache / "other.pyc").write_text("bytecode")
    assert invalidate_stale_cache(tmp_path)  # first sight: unknown provenance, dropped
    assert not (cache / "kernel.nbi").exists() and (cache / "other.pyc").exists()
    (cache / "kernel.nbi").write_text("index")
    assert not invalidate_stale_cache(tmp_path)  # unchanged sources: cache kept
    assert (cache / "kernel.nbi").exists()
    (tmp_path / "math.py").write_text("x = 2\n")  # a dependency changed
    assert invalidate_stale_cache(tmp_path)
    assert not (cache / "kernel.nbi").exists()
    assert (cache / STAMP_NAME).read_text().strip()
