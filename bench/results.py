"""bench/results.md: one section per benchmark program, each replacing only its own, so a run of
one keeps the others' figures; and the previous run's figures of a table, to show beside new."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results.md")
TITLE = "# Benchmark results\n"


def _text():
    return open(RESULTS).read() if os.path.exists(RESULTS) else TITLE


def _pattern(heading):
    return re.compile(r"\n%s\n.*?(?=\n## |\Z)" % re.escape(heading), re.S)


def section(heading):
    """The section's current text (heading included), or ""."""
    m = _pattern(heading).search(_text())
    return m.group(0) if m else ""


def previous(heading):
    """The rows of the section's table as last written: {what: (req/s, p99 ms)}, from rows
    "| # | what | req/s | p50 ms | p99 ms | ... |"."""
    rows = {}
    for line in section(heading).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and re.fullmatch(r"\d+[a-z]?", cells[0]):
            rows[cells[1]] = (cells[2], cells[4])
    return rows


def write_section(heading, lines):
    """Puts the section (its heading, then lines) in place of the last one, or at the end."""
    text = _pattern(heading).sub("", _text())
    with open(RESULTS, "w") as f:
        f.write(text.rstrip("\n") + "\n\n" + heading + "\n\n" + "\n".join(lines) + "\n")
