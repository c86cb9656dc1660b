"""The README's lab table agrees with the lab.yaml files: one row per lab, in order, linking the lab's own
README, with its points as offline + live and a live-cluster column exactly when the lab has live tasks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader.labs import Lab, all_labs

REPO = Path(__file__).resolve().parents[2]
HEADER = "| lab | exercise | points (offline + live) | needs a live cluster for |"
ROW = re.compile(
    r"^\| \[(?P<id>lab\d+)\]\((?P<link>[^)]+)\) \| (?P<exercise>[^|]+) \| (?P<points>[^|]+) \| "
    r"(?P<live>[^|]+) \|$"
)


def table_rows(readme: str) -> list[str]:
    """The rows of the table under HEADER (its separator line skipped), up to the first non-table line."""
    lines = readme.splitlines()
    if HEADER not in lines:
        raise AssertionError(f"README.md has no lab table with the header {HEADER!r}")
    rows = []
    for line in lines[lines.index(HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _number(points: float) -> str:
    return f"{points:g}"


def points_cell(lab: Lab) -> str:
    offline = sum(t.points for t in lab.tasks if not t.live)
    live = sum(t.points for t in lab.tasks if t.live)
    return _number(offline) + (f" + {_number(live)}" if live else "")


LABS = all_labs(REPO / "labs")
ROWS = table_rows((REPO / "README.md").read_text(encoding="utf-8"))


def test_one_row_per_lab_in_order() -> None:
    parsed = [ROW.match(r) for r in ROWS]
    unreadable = [r for r, m in zip(ROWS, parsed, strict=True) if m is None]
    assert not unreadable, (
        f"README lab table rows not in the form '| [labN](link) | ... | pts | live |': {unreadable}"
    )
    assert [m["id"] for m in parsed if m] == [lab.id for lab in LABS]


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_row_matches_lab_yaml(lab: Lab) -> None:
    row = next((m for m in map(ROW.match, ROWS) if m and m["id"] == lab.id), None)
    assert row is not None, f"README.md's lab table has no row for {lab.id}"
    link = (REPO / row["link"]).resolve()
    assert link == (lab.dir / "README.md").resolve(), f"{lab.id} links {row['link']}, not its own README"
    assert link.is_file()
    assert row["points"].strip() == points_cell(lab), (
        f"{lab.id}: README says {row['points'].strip()} points, lab.yaml gives {points_cell(lab)} "
        "(offline + live)"
    )
    has_live = any(t.live for t in lab.tasks)
    live_cell = row["live"].strip()
    assert (live_cell != "-") == has_live, (
        f"{lab.id}: the live column says {live_cell!r} but the lab has "
        f"{'live' if has_live else 'no live'} tasks"
    )
