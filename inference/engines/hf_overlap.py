"""The depth model's pass in a second thread while the segmentation model runs, on the CPU.

On a CPU the two models of a request share the cores: each at half of torch's threads, side
by side, takes less wall time than one after the other at all of them (small matrix products
and the models' single-threaded stretches leave threads idle, and a busy machine makes their
barriers wait). The same operations run either way, so the result is the same up to float
rounding in the order of summation. torch is imported inside the functions, as everywhere in
the learned engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads in the calling thread set to ``count`` for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def split_threads() -> tuple[int, int] | None:
    """(threads for the foreground model, threads for the background one), or None with one thread."""
    import torch

    total = torch.get_num_threads()
    if total < 2:
        return None
    return total - total // 2, total // 2


class Background:
    """``fn()`` running in a daemon thread at ``threads`` torch threads; ``result()`` waits for it and
    returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], Any], threads: int, key: Any = None) -> None:
        self.key = key
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, threads), name="monocle-depth", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any], threads: int) -> None:
        try:
            with torch_threads(threads):
                self._value = fn()
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self) -> None:
        """Wait for the thread and drop its result (a request that ended early)."""
        self._thread.join()
