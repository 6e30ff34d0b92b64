"""Calibrate retrieval's acceptance rule on bench_retrieval.py's rows, and say how far it generalises.

    .venv/bin/python bench/bench_retrieval.py --modes oracle,relative,classic --candidates 5
    .venv/bin/python bench/calibrate_retrieval.py [bench/results/quick/retrieval.json ...] [--penalty 3]

Each row holds the fitted candidates of one view with what their score is made of (IoU, depth
error, roll, non-affine lattice offset, axis stretch, and the rigid score it never falls below,
nor rises above by more than the gain cap, ``MAX_FIT_GAIN``). The rule ``templates.retrieve``
applies is re-scored over a grid of weights, gain caps, thresholds (``THRESHOLD``,
``UNTRUSTED_MARGIN``) and ambiguity margins (``AMBIGUITY_MARGIN`` for trusted depth,
``AMBIGUITY_GUESSED`` for depth not trusted at all, ``retrieve.ambiguity_for``), maximising right-category
placements minus ``penalty`` times (wrong-category placements + placements on objects outside the
library). Several row files may be given, ``bench_drawing.py``'s drawing.json among them (its
drawings of templates, mode ``drawing``). Printed: the rule as it is, the best rule on all objects (in-sample) and
leave-one-object-out counts (the rule picked without the object, applied to it), per mode as
right / wrong / none, outside placed / views, and the right-category top-1 whether placed or not.
Only fitted candidates count as rivals here, so a run with more candidates than the default
shows more of them; a rival whose fitted shape is alike the first candidate's (``retrieve.ALIKE``,
the rows' last term) is none, as in ``retrieve``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from templates import fit, retrieve  # noqa: E402

TRUST = {"oracle": fit.DEPTH_TRUST["file"], "relative": fit.DEPTH_TRUST["relative"],
         "classic": fit.DEPTH_TRUST["classic"], "drawing": fit.DEPTH_TRUST["drawing"]}
# depth, displacement, stretch weights and the gain cap
WEIGHTS = list(itertools.product([1.0, 2.0, 3.0], [0.5, 1.0, 1.5], [0.2, 0.4, 0.8], [0.0, 0.04, 0.08]))
# threshold, untrusted margin, ambiguity margin (trusted depth), ambiguity margin (depth not trusted)
RULES = list(itertools.product(np.round(np.arange(0.80, 0.99, 0.01), 2), [0.0, 0.04, 0.08, 0.12, 0.16],
                               [0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12], [0.0, 0.015, 0.03, 0.06]))


class Rows:
    """The candidates' score terms as arrays: (views, candidates) per term."""

    def __init__(self, rows: list[dict]) -> None:
        k = max(len(r["top"]) for r in rows)
        self.n = len(rows)
        self.terms = np.full((self.n, k, 5), np.nan)  # iou, depth error, roll, displacement, stretch
        self.rigid = np.full((self.n, k), -np.inf)  # the rigid pose's score, which a fit never lowers
        self.cats = np.full((self.n, k), "", dtype=object)
        self.alike = np.full((self.n, k), np.nan)  # shape distance to the first candidate (rows that have it)
        for i, r in enumerate(rows):
            for j, c in enumerate(r["top"]):
                self.terms[i, j] = c[3:8]
                self.rigid[i, j] = c[8]
                self.cats[i, j] = c[1]
                self.alike[i, j] = c[10] if len(c) > 10 and c[10] is not None else np.nan
        self.trust = np.array([TRUST[r["mode"]] for r in rows])
        self.truth = np.array([r["category"] or "" for r in rows], dtype=object)
        self.object = np.array([r["object"] for r in rows])
        self.mode = np.array([r["mode"] for r in rows])

    def ranked(self, weights: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(views,) best fitted score, its lead over the best other category, whether its category is right."""
        dw, mw, sw, cap = weights
        t = self.terms
        roll = retrieve.tmatch.ROLL_WEIGHT * (t[..., 2] / 30.0) ** 2
        score = (t[..., 0] - dw * self.trust[:, None] * t[..., 1] - roll - mw * t[..., 3]
                 - sw * np.maximum(t[..., 4] - retrieve.STRETCH_FREE, 0.0))
        score = np.maximum(np.minimum(score, self.rigid + cap), self.rigid)
        score = np.where(np.isnan(score), self.rigid, score)
        best = score.argmax(axis=1)
        s1 = score[np.arange(self.n), best]
        c1 = self.cats[np.arange(self.n), best]
        # a rival of the best's shape is no rival (``retrieve.ALIKE``); the distances are to the first
        # candidate as retrieved, so where another ranks first here every other category is a rival
        alike = (best == 0)[:, None] & (self.alike < retrieve.ALIKE)
        rival = np.where((self.cats != c1[:, None]) & ~alike, score, -np.inf).max(axis=1)
        return s1, s1 - rival, c1 == self.truth

    def decide(self, ranked: tuple[np.ndarray, np.ndarray, np.ndarray], rule: tuple[float, float, float, float],
               ) -> np.ndarray:
        """(views,) 0 none, 1 right, 2 wrong category, 3 placed on an object outside the library."""
        s1, lead, right = ranked
        margin = rule[3] + (rule[2] - rule[3]) * self.trust  # retrieve.ambiguity_for
        placed = (s1 >= rule[0] + rule[1] * (1.0 - self.trust)) & (lead >= margin)
        return np.where(~placed, 0, np.where(self.truth == "", 3, np.where(right, 1, 2)))


def read_rows(path: Path) -> list[dict]:
    """bench_retrieval.py's rows, or the drawings of templates of bench_drawing.py's drawing.json (mode
    ``drawing``)."""
    data = json.loads(path.read_text())
    if "rows" in data:
        return list(data["rows"])
    return [{"object": r["subject"], "category": r["category"], "mode": "drawing", "top": r["top"]}
            for r in data["freestyle"] if r["kind"] == "template" and r.get("top")]


def counts(verdict: np.ndarray, rows: Rows, right: np.ndarray | None = None) -> str:
    """Per mode: right / wrong / none placements, outside placements, and the right-category top-1."""
    out = []
    for mode in TRUST:
        sel = rows.mode == mode
        if not sel.any():
            continue
        cat, outside = sel & (rows.truth != ""), sel & (rows.truth == "")
        line = (f"{mode} {(verdict[cat] == 1).sum()}/{(verdict[cat] == 2).sum()}/{(verdict[cat] == 0).sum()}"
                f" outside {(verdict[outside] == 3).sum()}/{outside.sum()}")
        if right is not None:
            line += f" top-1 {right[cat].sum()}/{cat.sum()}"
        out.append(line)
    return "; ".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="*", type=Path,
                        default=[ROOT / "bench" / "results" / "quick" / "retrieval.json"])
    parser.add_argument("--penalty", type=float, default=3.0, help="cost of a wrong or outside placement")
    args = parser.parse_args()
    rows = Rows([r for path in args.rows for r in read_rows(path)])
    ranked = {w: rows.ranked(w) for w in WEIGHTS}
    keys = [(w, r) for w in WEIGHTS for r in RULES]
    verdicts = np.stack([rows.decide(ranked[w], r) for w, r in keys])  # (rules, views)
    value = (verdicts == 1) - args.penalty * ((verdicts == 2) | (verdicts == 3))
    names = sorted(set(rows.object))
    per_object = np.stack([value[:, rows.object == name].sum(axis=1) for name in names], axis=1)
    total = per_object.sum(axis=1)

    now = ((retrieve.tmatch.DEPTH_WEIGHT, retrieve.DISPLACEMENT_WEIGHT, retrieve.STRETCH_WEIGHT,
            retrieve.MAX_FIT_GAIN),
           (retrieve.THRESHOLD, retrieve.UNTRUSTED_MARGIN, retrieve.AMBIGUITY_MARGIN, retrieve.AMBIGUITY_GUESSED))
    print("as it is", now, ":", counts(rows.decide(rows.ranked(now[0]), now[1]), rows, rows.ranked(now[0])[2]))
    best = int(total.argmax())
    print("best on all objects", keys[best], ":", counts(verdicts[best], rows, ranked[keys[best][0]][2]))
    held_out = np.zeros(rows.n, dtype=np.int64)
    for j, name in enumerate(names):  # the rule picked without the object, applied to it
        held = rows.object == name
        held_out[held] = verdicts[int((total - per_object[:, j]).argmax())][held]
    print("leave one object out:", counts(held_out, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
