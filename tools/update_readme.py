"""Copy the benchmark tables from bench/results/*.md into README.md.

Each table goes between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers,
so the README always shows the numbers the scripts last measured.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _relink(markdown: str, folder: Path) -> str:
    """Point the table's relative image links at the results folder, as seen from the README."""
    return re.sub(r"\]\((?!https?:|/)([^)]+\.png)\)", lambda m: f"]({folder.as_posix()}/{m.group(1)})", markdown)


def update(readme: Path = ROOT / "README.md", results: Path = ROOT / "bench" / "results") -> list[str]:
    text = readme.read_text()
    done = []
    for md in sorted(results.glob("*.md")):
        name = md.stem
        pattern = re.compile(rf"(<!-- bench:{re.escape(name)} -->\n)(.*?)(<!-- /bench:{re.escape(name)} -->)", re.S)
        if pattern.search(text):
            body = _relink(md.read_text().rstrip(), md.parent.relative_to(readme.parent))
            text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(3), text)
            done.append(name)
    readme.write_text(text)
    return done


if __name__ == "__main__":
    print("updated:", ", ".join(update()) or "nothing", file=sys.stderr)
