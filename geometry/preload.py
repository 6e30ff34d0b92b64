"""Import the geometry layer's heavy dependencies before the first build needs them.

The geometry imports OpenCV and SciPy lazily, so enabling the extension
stays quick. The first build in a session then pays for those imports: 0.3 s with a warm
disk cache and several seconds cold, while the UI waits. The worker always runs before a
build, for a second or more, so ``preload()`` starts the imports on a background thread
when a worker starts. By the time the result arrives they are done. Python's import lock
makes a build that needs a module mid-import simply wait for it.
"""

from __future__ import annotations

import importlib
import logging
import threading

log = logging.getLogger(__name__)

# (module, attribute to touch): a module that loads its submodules lazily loads them on first attribute use
MODULES = (
    ("cv2", "resize"),
    ("scipy.ndimage", "distance_transform_edt"),
    ("scipy.sparse.linalg", "splu"),
    ("scipy.sparse.csgraph", "connected_components"),
    ("scipy.spatial", "cKDTree"),
)

_lock = threading.Lock()
_thread: threading.Thread | None = None


def preload() -> threading.Thread:
    """Start importing ``MODULES`` on a daemon thread, once per process, and return that thread."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import_all, name="monocle-preload", daemon=True)
            _thread.start()
        return _thread


def _import_all() -> None:
    for name, attribute in MODULES:
        try:
            getattr(importlib.import_module(name), attribute)
        except Exception as exc:
            log.debug("preloading %s failed: %s", name, exc)
