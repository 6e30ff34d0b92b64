"""One OpenBLAS thread for the template step (geometry.blas): the libraries numpy and scipy bundle are
found, set to one thread inside the block (nested blocks too) and given back their own count after."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS loaded too, as the fit's kd-trees and solves load it)


def test_single_threaded_sets_and_restores(monocle):
    blas = importlib.import_module(f"{monocle.__name__}.geometry.blas")
    before = blas.thread_counts()
    assert len(before) >= 1, "numpy's bundled OpenBLAS was not found (PyPI's Linux wheels ship one)"
    with blas.single_threaded():
        assert blas.thread_counts() == [1] * len(before)
        with blas.single_threaded():
            assert blas.thread_counts() == [1] * len(before)
        assert blas.thread_counts() == [1] * len(before), "an inner block gave the threads back early"
        a = np.random.default_rng(0).random((64, 64)) + 64 * np.eye(64)
        x = np.linalg.solve(a, np.ones(64))
        assert np.allclose(a @ x, 1.0)
    assert blas.thread_counts() == before


def test_single_threaded_from_two_threads(monocle):
    """Blocks that overlap in two Python threads: the count comes back only after the last one ends."""
    blas = importlib.import_module(f"{monocle.__name__}.geometry.blas")
    before = blas.thread_counts()
    inside, release, seen = threading.Event(), threading.Event(), []

    def other() -> None:
        with blas.single_threaded():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with blas.single_threaded():
        pass
    seen.append(blas.thread_counts())  # the other thread's block still runs
    release.set()
    t.join(10)
    assert seen == [[1] * len(before)]
    assert blas.thread_counts() == before
