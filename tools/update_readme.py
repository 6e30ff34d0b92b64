"""Copy the benchmark tables from bench/results/*.md into README.md.

Each table goes between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` markers,
so the README always shows the numbers the scripts last measured.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def update(readme: Path = ROOT / "README.md", results: Path = ROOT / "bench" / "results") -> list[str]:
    text = readme.read_text()
    done = []
    for md in sorted(results.glob("*.md")):
        name = md.stem
        pattern = re.compile(rf"(<!-- bench:{re.escape(name)} -->\n)(.*?)(<!-- /bench:{re.escape(name)} -->)", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda m: m.group(1) + md.read_text().rstrip() + "\n" + m.group(3), text)
            done.append(name)
    readme.write_text(text)
    return done


if __name__ == "__main__":
    print("updated:", ", ".join(update()) or "nothing", file=sys.stderr)
