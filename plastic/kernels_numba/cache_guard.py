"""Drop stale Numba on-disk caches of this package when any of its sources changed.

Numba's `cache=True` keys a cached kernel on the file that defines it, not on the files
it calls into: editing `synapse_math.py` would otherwise keep serving kernels compiled
from the old math. On import we hash every module of this package and, when the hash
differs from the one recorded next to the cache, delete this package's cache files.
Best effort: a read-only install (whose sources cannot change) is left alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

STAMP_NAME = "plastic-kernels-source.sha256"


def source_digest(package_dir: Path, *called: Path) -> str:
    """SHA-256 over the names and contents of the Python modules of the package and of the
    packages its kernels call into."""
    digest = hashlib.sha256()
    for directory in (package_dir, *called):
        for path in sorted(directory.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def invalidate_stale_cache(package_dir: Path, *called: Path) -> bool:
    """Delete the package's cached kernels if its sources, or those of the packages in
    `called` (whose jitable functions its kernels inline), changed since they were
    compiled; True if so."""
    cache_dir = package_dir / "__pycache__"
    stamp = cache_dir / STAMP_NAME
    try:
        current = source_digest(package_dir, *called)
        if stamp.is_file() and stamp.read_text().strip() == current:
            return False
        cache_dir.mkdir(exist_ok=True)
        removed = False
        for cached in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            cached.unlink(missing_ok=True)
            removed = True
        stamp.write_text(current + "\n")
        return removed
    except OSError:
        return False
