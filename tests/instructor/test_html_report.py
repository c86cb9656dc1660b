"""The class HTML report renders in a real browser (headless Chromium): not blank, and its numbers equal the
CSV."""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.instructor.html import render
from grader.instructor.regrade import regrade_many, write_csv
from grader.instructor.submit import submit
from tests.instructor._instructor_lab import workspace

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)"
)


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """A tiny PNG decoder (8-bit RGB/RGBA, non-interlaced): width, height, bytes per pixel, raw rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def colour_stats(png: bytes) -> tuple[float, set[tuple[int, int, int]]]:
    width, height, bpp, rows = decode_png(png)
    non_white, colours = 0, set()
    for row in rows:
        for x in range(0, width * bpp, bpp):
            rgb = (row[x], row[x + 1], row[x + 2])
            if min(rgb) < 235:
                non_white += 1
                colours.add((rgb[0] >> 4, rgb[1] >> 4, rgb[2] >> 4))
    return non_white / (width * height), colours


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


class _Cells(HTMLParser):
    """Collects the learner rows (data-learner) with their data-col cells, and the per-task pass counts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.tasks: dict[str, dict[str, str]] = {}
        self.summary: dict[str, str] = {}
        self._row: dict[str, str] | None = None
        self._col: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-learner" in a:
            self._row = self.rows.setdefault(a["data-learner"], {})
        elif tag == "tr" and "data-task" in a:
            self._row = self.tasks.setdefault(a["data-task"], {})
        elif tag == "tr":
            self._row = None
        if "data-col" in a and self._row is not None:
            self._col, self._text = a["data-col"], ""
        if "data-summary" in a:
            self._col, self._text, self._row = "summary:" + a["data-summary"], "", self._row

    def handle_data(self, data: str) -> None:
        if self._col:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if self._col and tag in ("td", "span", "b"):
            if self._col.startswith("summary:"):
                self.summary[self._col[8:]] = self._text.strip()
            elif self._row is not None:
                self._row[self._col] = self._text.strip()
            self._col = None


@pytest.fixture()
def class_report(lab90, tmp_path: Path) -> tuple[Path, Path]:
    plans = {
        "amy": ("config.yaml", "policy.yaml"),
        "bo": ("config.yaml",),
        "cy": ("policy.yaml",),
        "di": (),
        "ed": ("config.yaml", "policy.yaml"),
        "flo": ("config.yaml",),
        "gus": ("config.yaml", "policy.yaml"),
    }
    bundles = [
        submit(
            lab90, workspace(lab90, tmp_path, f"seed-{name}", files), tmp_path / f"{name}.tar.gz", name
        ).path
        for name, files in plans.items()
    ]
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08broken")
    cls = regrade_many([*bundles, tmp_path / "broken.tar.gz"], jobs=2)
    write_csv(cls, tmp_path / "class.csv")
    (tmp_path / "class.html").write_text(render(cls, title="Test class"))
    return tmp_path / "class.csv", tmp_path / "class.html"


def test_html_is_self_contained(class_report) -> None:
    html = class_report[1].read_text()
    lowered = html.lower()
    for banned in ("<script src", "<link", "<img", "<iframe", "@import", "url(", "fetch(", "xmlhttprequest"):
        assert banned not in lowered, banned
    assert lowered.count("<script>") == 1  # the inline sorter only
    assert "http" not in lowered.replace("xmlns='http://www.w3.org/2000/svg'", "")
    assert "Score distribution" in html and "Pass rate per task" in html and "Most failed tasks" in html


@pytest.mark.slow  # starts chromium
@needs_chromium
def test_screenshot_is_not_blank(class_report, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = chromium(f"--screenshot={shot}", "--window-size=1200,1400", class_report[1].as_uri(), tmp=tmp_path)
    assert shot.is_file(), proc.stderr[-2000:]
    share, colours = colour_stats(shot.read_bytes())
    assert share > 0.02, f"only {share:.2%} of the screenshot is not white"
    assert len(colours) > 10, "the page rendered without its colours (bars, cells)"


@needs_chromium
def test_numbers_in_the_rendered_page_equal_the_csv(class_report, tmp_path: Path) -> None:
    csv_path, html_path = class_report
    proc = chromium("--dump-dom", html_path.as_uri(), tmp=tmp_path)
    assert proc.returncode == 0 and "<table" in proc.stdout, proc.stderr[-2000:]
    page = _Cells()
    page.feed(proc.stdout)
    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert set(page.rows) == {r["learner"] for r in rows}
    task_cols = [c for c in rows[0] if c.startswith("lab90.") and c != "lab90.total"]
    for r in rows:
        cells = page.rows[r["learner"]]
        for col in ("score", "max_score", "percent", "held_score", *task_cols):
            shown = cells[col].replace("\u2013", "")
            if col == "held_score" and shown == "":
                shown = "0"
            assert shown == r[col], (r["learner"], col, shown, r[col])
    # pass rate per task, recomputed from the CSV: full points = passed; a blank cell = not graded
    maxima = {"lab90.t1": "2", "lab90.t2": "1"}
    for col in task_cols:
        graded = [r[col] for r in rows if r[col] != ""]
        assert page.tasks[col]["graded"] == str(len(graded))
        assert page.tasks[col]["passed"] == str(sum(v == maxima[col] for v in graded))
    graded_rows = [float(r["percent"]) for r in rows if r["lab90.t1"] != "" and r["status"] != "held"]
    assert page.summary["mean_percent"] == f"{round(sum(graded_rows) / len(graded_rows), 1):g}%"
    assert page.summary["learners"] == str(len(rows))
    assert page.summary["bad"] == "1"
