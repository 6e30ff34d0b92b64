"""Copy the benchmark tables from bench/results/*.md into docs/benchmarks.md (``make bench``).

Each table goes between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers, so the
page always shows the numbers the scripts last measured. Only the full results in bench/results
itself are read: quick runs write into bench/results/quick and never reach the page. A table's own
headings are nested under the page's sections (its top heading becomes ``###``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = 3  # level of a table's top heading on the page: below "# Benchmarks" and "## Quality" / "## Speed"
HEADING = re.compile(r"^(#+)(?= )", re.M)


def _relink(markdown: str, folder: str) -> str:
    """Point the table's relative image links at the results folder, as seen from the page."""
    return re.sub(r"\]\((?!https?:|/)([^)]+\.png)\)", lambda m: f"]({folder}/{m.group(1)})", markdown)


def _nest(markdown: str, top: int = TOP) -> str:
    """Shift every heading so the highest one is at level ``top`` (the tables hold no code blocks)."""
    levels = [len(m.group(1)) for m in HEADING.finditer(markdown)]
    if not levels:
        return markdown
    shift = top - min(levels)
    return HEADING.sub(lambda m: "#" * max(1, len(m.group(1)) + shift), markdown)


def update(page: Path = ROOT / "docs" / "benchmarks.md", results: Path = ROOT / "bench" / "results") -> list[str]:
    """Fill every marker pair of ``page`` that has a results file; returns the names filled."""
    text = page.read_text()
    folder = Path(os.path.relpath(results, page.parent)).as_posix()
    done = []
    for md in sorted(results.glob("*.md")):
        name = md.stem
        pattern = re.compile(rf"(<!-- bench:{re.escape(name)} -->\n)(.*?)(<!-- /bench:{re.escape(name)} -->)", re.S)
        if pattern.search(text):
            body = _nest(_relink(md.read_text().rstrip(), folder))
            text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(3), text)
            done.append(name)
    page.write_text(text)
    return done


if __name__ == "__main__":
    print("updated:", ", ".join(update()) or "nothing", file=sys.stderr)
