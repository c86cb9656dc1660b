"""The class report as one self-contained HTML file: inline CSS and SVG, no scripts, no external assets.

Every number in the page is rendered from the same :class:`LearnerRow` list the CSV is written from, and
carries ``data-learner``/``data-col`` attributes so tests (and scrapers) can compare the two.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from grader import __version__
from grader.instructor.regrade import ClassResult, LearnerRow, learner_rows

PASS_MARK = 67.0

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
.muted{color:#57606a;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:120px;background:#f6f8fa}
.card b{display:block;font-size:24px}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eaeef2} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{background:#dafbe1} td.fail{background:#ffebe9} td.error{background:#fff8c5} td.skip{background:#eaeef2}
td.none{background:#f6f8fa;color:#8c959f}
.bar{display:inline-block;height:12px;background:#2da44e;vertical-align:middle;margin-right:6px}
.barbg{display:inline-block;width:160px;height:12px;background:#ffebe9;vertical-align:middle}
.flag{color:#9a6700} .err{color:#cf222e}
ul{margin:4px 0;padding-left:20px}
"""


def _n(x: float) -> str:
    return f"{x:g}"


def render(cls: ClassResult, title: str = "CKS class report", generated: str | None = None) -> str:
    rows = learner_rows(cls)
    generated = generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    graded = [r for r in rows if r.tasks]  # learners with at least one graded lab
    percents = [r.percent for r in graded]
    passed = sum(1 for p in percents if p >= PASS_MARK)
    mean = round(sum(percents) / len(percents), 1) if percents else 0.0
    flagged = sum(1 for r in rows if r.flags)
    bad = sum(1 for r in rows if r.errors)
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<div class='muted'>{len(rows)} learners, {len(cls.bundles)} bundles, labs: "
        f"{escape(', '.join(f'{k} ({v})' for k, v in cls.lab_titles.items()) or 'none')}. "
        f"Regraded from evidence by cks grader {escape(__version__)} at {escape(generated)}.</div>",
        "<div class='cards'>",
        _card("learners", str(len(rows)), "learners"),
        _card("mean score", f"{_n(mean)}%", "mean_percent"),
        _card(f"at or above {_n(PASS_MARK)}%", f"{passed}", "passed"),
        _card("flagged", str(flagged), "flagged"),
        _card("bad bundles", str(bad), "bad"),
        "</div>",
        "<h2>Score distribution</h2>",
        _histogram(percents),
        "<h2>Pass rate per task</h2>",
        _pass_rates(cls),
        "<h2>Most failed tasks</h2>",
        _most_failed(cls),
        "<h2>Learners</h2>",
        _learner_table(cls, rows),
        "</body></html>",
    ]
    return "\n".join(out)


def write_html(cls: ClassResult, out: Path, **kw: str) -> None:
    out.write_text(render(cls, **kw), encoding="utf-8")


def _label(text: str) -> str:
    """Escaped text with each variant placeholder shown as <name> (it differs from learner to learner)."""
    return re.sub(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", r"<i>&lt;\1&gt;</i>", escape(text))


def _card(label: str, value: str, key: str) -> str:
    return f"<div class='card'><b data-summary='{key}'>{escape(value)}</b>{escape(label)}</div>"


def _histogram(percents: list[float]) -> str:
    bins = [0] * 10
    for p in percents:
        bins[min(9, int(p // 10))] += 1
    top = max(bins) or 1
    w, h, pad = 520, 200, 28
    bw = (w - pad) / 10
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h + 40}' role='img' "
             "aria-label='score distribution'>",
             f"<line x1='{pad}' y1='{h}' x2='{w}' y2='{h}' stroke='#57606a'/>"]
    for i, count in enumerate(bins):
        bh = (h - 20) * count / top
        x = pad + i * bw
        colour = "#2da44e" if i * 10 >= PASS_MARK else "#d4a72c" if i * 10 + 10 > PASS_MARK else "#cf222e"
        parts.append(f"<rect x='{x + 3:.1f}' y='{h - bh:.1f}' width='{bw - 6:.1f}' height='{bh:.1f}' "
                     f"fill='{colour}' data-bin='{i * 10}' data-count='{count}'/>")
        parts.append(f"<text x='{x + bw / 2:.1f}' y='{h - bh - 4:.1f}' font-size='12' text-anchor='middle'>"
                     f"{count}</text>")
        parts.append(f"<text x='{x + bw / 2:.1f}' y='{h + 16}' font-size='11' text-anchor='middle'>"
                     f"{i * 10}-{i * 10 + 10 if i < 9 else 100}%</text>")
    parts.append(f"<text x='{pad}' y='{h + 34}' font-size='11' fill='#57606a'>learners per score band; "
                 f"green: at or above the {_n(PASS_MARK)}% pass mark; amber: the band it falls in</text></svg>")
    return "".join(parts)


def _task_stats(cls: ClassResult) -> list[tuple[str, str, int, int, Counter[str]]]:
    """(column, title, passed, graded, failure messages) for every task of every lab."""
    stats = []
    for lab_id, tasks in cls.labs.items():
        for tid, title, _mx, _live in tasks:
            passed = graded = 0
            msgs: Counter[str] = Counter()
            for b in cls.bundles:
                if b.error or b.lab != lab_id:
                    continue
                for t in b.tasks:
                    if t.id != tid or t.status == "skip":
                        continue
                    graded += 1
                    if t.status == "pass":
                        passed += 1
                    else:
                        msgs[t.common or t.message] += 1
            stats.append((f"{lab_id}.{tid}", title, passed, graded, msgs))
    return stats


def _pass_rates(cls: ClassResult) -> str:
    rows = ["<table><tr><th>task</th><th>title</th><th>pass rate</th><th>passed / graded</th></tr>"]
    for col, title, passed, graded, _m in _task_stats(cls):
        if not graded:  # live-only tasks are skipped when regrading offline
            rows.append(f"<tr data-task='{escape(col)}' class='muted'><td>{escape(col)}</td><td>{_label(title)}</td>"
                        "<td>not graded (needs a live cluster)</td><td class='num'><span data-col='passed'>0</span> / "
                        "<span data-col='graded'>0</span></td></tr>")
            continue
        rate = round(100.0 * passed / graded, 1)
        rows.append(
            f"<tr data-task='{escape(col)}'><td>{escape(col)}</td><td>{_label(title)}</td>"
            f"<td><span class='barbg'><span class='bar' style='width:{rate * 1.6:.0f}px'></span></span>"
            f"<span data-col='pass_rate'>{_n(rate)}%</span></td>"
            f"<td class='num'><span data-col='passed'>{passed}</span> / <span data-col='graded'>{graded}</span>"
            "</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _most_failed(cls: ClassResult, top: int = 5) -> str:
    stats = [s for s in _task_stats(cls) if s[3] - s[2] > 0]
    stats.sort(key=lambda s: (-(s[3] - s[2]), s[0]))
    if not stats:
        return "<p class='muted'>No task failed.</p>"
    rows = ["<table><tr><th>task</th><th>failed</th><th>most common failure messages</th></tr>"]
    for col, title, passed, graded, msgs in stats[:top]:
        items = "".join(f"<li>{_label(m[:300])} <span class='muted'>({c}&times;)</span></li>"
                        for m, c in msgs.most_common(3))
        rows.append(f"<tr data-failed-task='{escape(col)}'><td>{escape(col)}<br><span class='muted'>"
                    f"{_label(title)}</span></td><td class='num' data-col='failed'>{graded - passed}</td>"
                    f"<td><ul>{items}</ul></td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _learner_table(cls: ClassResult, rows: list[LearnerRow]) -> str:
    cols = cls.columns()
    head = "".join(f"<th title='{escape(c)}'>{escape(c)}</th>" for c in cols)
    out = [f"<table><tr><th>learner</th><th>score</th><th>max</th><th>%</th>{head}<th>flags</th></tr>"]
    for r in rows:
        cells = []
        for c in cols:
            pts = r.tasks.get(c)
            status = r.statuses.get(c, "none")
            text = "&ndash;" if pts is None else _n(pts)
            cells.append(f"<td class='num {escape(status)}' data-col='{escape(c)}'>{text}</td>")
        notes = "".join(f"<div class='flag'>&#9873; {escape(f)}</div>" for f in r.flags)
        notes += "".join(f"<div class='err'>&#10007; {escape(e)}</div>" for e in r.errors)
        out.append(
            f"<tr data-learner='{escape(r.learner)}'><td>{escape(r.learner)}</td>"
            f"<td class='num' data-col='score'>{_n(r.score)}</td>"
            f"<td class='num' data-col='max_score'>{_n(r.max_score)}</td>"
            f"<td class='num' data-col='percent'>{_n(r.percent)}</td>{''.join(cells)}<td>{notes}</td></tr>")
    out.append("</table>")
    return "".join(out)
