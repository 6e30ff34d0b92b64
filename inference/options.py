"""The settings the worker takes, spelled once: each choice as a ``StrEnum`` (the strings the worker,
the command line and result files use) with the name and description the panel shows beside it,
and the defaults. The worker's argument parser, the command line's (``cli.py``) and the panel's
PropertyGroup (``props.py``) are all made from these, so a choice is added or renamed in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

C = TypeVar("C", bound=StrEnum)


class EngineName(StrEnum):
    AUTO = "auto"  # not an engine: the worker picks drawing for line art, classic for anything else
    CLASSIC = "classic"
    DRAWING = "drawing"
    TRANSFORMERS = "transformers"
    MOGE = "moge"


class Objects(StrEnum):
    ALL = "all"
    LARGEST = "largest"


class SegMode(StrEnum):
    LABELS = "labels"
    FOREGROUND = "foreground"


class DepthKind(StrEnum):
    METRIC = "metric"  # distance along the camera's axis, in scene units
    RELATIVE_INVERSE = "relative_inverse"  # larger is nearer, at an unknown scale and offset


# (name, description) of every choice, in the order the panel lists them.
ENGINE_TEXTS = {
    EngineName.AUTO: ("Automatic", "The drawing engine for line art (drawings, scans, photos of paper), the classic "
                      "engine for photos"),
    EngineName.CLASSIC: ("Classic (offline)", "Works everywhere with no downloads: automatic cut-out and rounded "
                         "depth"),
    EngineName.DRAWING: ("Drawing (line art)", "Industrial-design drawings: one object per outlined shape, rounded "
                         "and creased along the internal lines"),
    EngineName.TRANSFORMERS: ("Learned (transformers)", "Learned depth and object detection models (needs an "
                              "inference Python with torch and transformers)"),
    EngineName.MOGE: ("Metric (MoGe)", "Real proportions from one photo: depth in metres and the camera's focal "
                      "length (MoGe-2 with onnxruntime), with the classic cut-out"),
}
OBJECTS_TEXTS = {
    Objects.ALL: ("All Objects", "Make one object for every object found in the photo"),
    Objects.LARGEST: ("Largest Object", "Make only the biggest object in the photo"),
}
SEG_MODE_TEXTS = {
    SegMode.LABELS: ("Labelled Objects", "Find objects of known kinds (chair, cup, car...) and name them"),
    SegMode.FOREGROUND: ("Any Object", "Cut out whatever stands out, whatever it is"),
}

# Defaults shared by the worker, the command line and the panel.
ENGINE = EngineName.AUTO  # what the panel and the command line ask for (a bare `python -m inference run`: classic)
WORKER_ENGINE = EngineName.CLASSIC
MAX_SIZE = 1024  # long side, in pixels, a photo is analysed at
MIN_MAX_SIZE = 16  # the worker refuses a smaller analysis size


def values(choice: type[StrEnum]) -> tuple[str, ...]:
    """The strings of a choice, for ``argparse`` ``choices``."""
    return tuple(str(m) for m in choice)


def parse(choice: type[C], text: str) -> C:
    """The member a command line names; ``-`` and ``_`` are one letter (``relative-inverse``).

    ValueError for anything else, which ``argparse`` reports as an invalid choice."""
    return choice(text.strip().lower().replace("-", "_"))


def argument(choice: type[C]) -> Callable[[str], C]:
    """An ``argparse`` ``type`` reading one of a choice's members (see ``parse``)."""

    def convert(text: str) -> C:
        try:
            return parse(choice, text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(values(choice))}") from None

    return convert
