"""The API's edge: which reverse proxies gwm believes, and where its static files live.

docs/deployment.md ("Behind a reverse proxy", "Static files").
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured


def trusted_proxies(entries: list[str]) -> list[str]:
    """``GWM_TRUSTED_PROXIES``: addresses or networks only. A host name would match
    nothing and ``*`` would let every client choose its own address: both refused."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"GWM_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return entries


def static_files(root: str, data_dir: Path) -> tuple[Path, bool, dict[str, Any]]:
    """(STATIC_ROOT, WHITENOISE_USE_FINDERS, STORAGES).

    WhiteNoise serves what `gwm manage collectstatic` collected into the root
    (``GWM_STATIC_ROOT``, default inside the data directory), compressed; when nothing
    was collected, straight from the installed packages (its finders).
    """
    static_root = Path(root or data_dir / "static").resolve()
    use_finders = not (static_root / "admin").is_dir()
    # Nothing collected is a normal state (embedded mode), not worth a warning per start.
    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        # Compressed copies (gzip) beside each collected file; no manifest, so a
        # release that was not collected still renders its pages.
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
    return static_root, use_finders, storages
