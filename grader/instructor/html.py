"""The class report as one self-contained HTML file: inline CSS, SVG and a small inline sorting script; no
external assets.

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
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #d0d7de;padding-bottom:4px}
.muted{color:#57606a;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:120px;background:#f6f8fa}
.card b{display:block;font-size:24px}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eaeef2} th.sortable{cursor:pointer} th.sortable:after{content:" \\2195";color:#8c959f}
th small{display:block;font-weight:normal;color:#57606a;max-width:11em;white-space:normal}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{background:#dafbe1} td.fail{background:#ffebe9} td.partial{background:#fff1c2}
td.error{background:#fde2f3}
td.skip{background:#eaeef2} td.none{background:#f6f8fa;color:#8c959f}
td.total{font-weight:600;background:#f6f8fa}
tr.flagged>td:first-child{border-left:5px solid #bf8700}
tr.flagged>td:not(.pass):not(.fail):not(.partial):not(.error):not(.skip){background-color:#fff8e1}
tr.missing>td{color:#8c959f;font-style:italic}
td.flags{min-width:16em;max-width:30em;white-space:normal;overflow-wrap:anywhere}
.wide{max-width:100%;overflow-x:auto}
.bar{display:inline-block;height:12px;background:#2da44e;vertical-align:middle;margin-right:6px}
.barbg{display:inline-block;width:160px;height:12px;background:#ffebe9;vertical-align:middle}
.flag{color:#9a6700} .err{color:#cf222e} .note{color:#0969da}
figure{margin:0} figcaption{font-size:12px;color:#57606a;max-width:520px}
ul{margin:4px 0;padding-left:20px}
@media print{body{margin:8mm;font-size:11px} .wide{overflow:visible} th.sortable:after{content:""}
 table{font-size:10px} tr{page-break-inside:avoid} h2{page-break-after:avoid}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _n(x: float) -> str:
    return f"{x:g}"


def render(cls: ClassResult, title: str = "CKS class report", generated: str | None = None) -> str:
    rows = learner_rows(cls)
    generated = generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    graded = [r for r in rows if r.tasks and not r.held_labs]  # learners with a counted lab
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
        _card("held (not counted)", str(sum(1 for r in rows if r.held_labs)), "held"),
        _card("no submission", str(sum(1 for r in rows if r.status == "no submission")), "missing"),
        _card("bad bundles", str(bad), "bad"),
        "</div>",
        "<h2>Score distribution</h2>",
        _histogram(percents),
        "<h2>Pass rate per task</h2>",
        _pass_rates(cls),
        "<h2>Most failed tasks</h2>",
        _most_failed(cls),
        "<h2>Learners</h2>",
        "<p class='muted'>Held: a flagged bundle's score is shown apart and not counted until accepted "
        "(<code>--accept</code> or the overrides file). Click a column header to sort.</p>",
        _learner_table(cls, rows),
        f"<script>{_SORT_JS}</script>",
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
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h + 24}' role='img' "
        "aria-label='score distribution'>",
        f"<line x1='{pad}' y1='{h}' x2='{w}' y2='{h}' stroke='#57606a'/>",
    ]
    for i, count in enumerate(bins):
        bh = (h - 20) * count / top
        x = pad + i * bw
        colour = "#2da44e" if i * 10 >= PASS_MARK else "#d4a72c" if i * 10 + 10 > PASS_MARK else "#cf222e"
        parts.append(
            f"<rect x='{x + 3:.1f}' y='{h - bh:.1f}' width='{bw - 6:.1f}' height='{bh:.1f}' "
            f"fill='{colour}' data-bin='{i * 10}' data-count='{count}'/>"
        )
        parts.append(
            f"<text x='{x + bw / 2:.1f}' y='{h - bh - 4:.1f}' font-size='12' text-anchor='middle'>"
            f"{count}</text>"
        )
        parts.append(
            f"<text x='{x + bw / 2:.1f}' y='{h + 16}' font-size='11' text-anchor='middle'>"
            f"{i * 10}-{i * 10 + 10 if i < 9 else 100}%</text>"
        )
    parts.append("</svg>")
    caption = (
        f"<figcaption>Learners per score band (counted scores). Green: at or above the {_n(PASS_MARK)}% "
        "pass mark; amber: the band the pass mark falls in; red: below.</figcaption>"
    )
    return "<figure>" + "".join(parts) + caption + "</figure>"


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
            rows.append(
                f"<tr data-task='{escape(col)}' class='muted'><td>{escape(col)}</td>"
                f"<td>{_label(title)}</td><td>not graded (needs a live cluster)</td>"
                "<td class='num'><span data-col='passed'>0</span> / "
                "<span data-col='graded'>0</span></td></tr>"
            )
            continue
        rate = round(100.0 * passed / graded, 1)
        rows.append(
            f"<tr data-task='{escape(col)}'><td>{escape(col)}</td><td>{_label(title)}</td>"
            f"<td><span class='barbg'><span class='bar' style='width:{rate * 1.6:.0f}px'></span></span>"
            f"<span data-col='pass_rate'>{_n(rate)}%</span></td>"
            f"<td class='num'><span data-col='passed'>{passed}</span> / "
            f"<span data-col='graded'>{graded}</span></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _most_failed(cls: ClassResult, top: int = 5) -> str:
    stats = [s for s in _task_stats(cls) if s[3] - s[2] > 0]
    stats.sort(key=lambda s: (-(s[3] - s[2]), s[0]))
    if not stats:
        return "<p class='muted'>No task failed.</p>"
    rows = ["<table><tr><th>task</th><th>failed</th><th>most common failure messages</th></tr>"]
    for col, title, passed, graded, msgs in stats[:top]:
        items = "".join(
            f"<li>{_label(m[:300])} <span class='muted'>({c}&times;)</span></li>"
            for m, c in msgs.most_common(3)
        )
        rows.append(
            f"<tr data-failed-task='{escape(col)}'><td>{escape(col)}<br><span class='muted'>"
            f"{_label(title)}</span></td><td class='num' data-col='failed'>{graded - passed}</td>"
            f"<td><ul>{items}</ul></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th.sortable').forEach(function(th, i){
  th.addEventListener('click', function(){
   var rows = Array.from(t.querySelectorAll('tr[data-learner]'));
   var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
   function key(r){ var c = r.children[i]; var v = c ? c.textContent.trim() : '';
    var n = parseFloat(v); return isNaN(n) ? v.toLowerCase() : n; }
   rows.sort(function(a, b){ var x = key(a), y = key(b);
    if (typeof x !== typeof y) { x = String(x); y = String(y); }
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
   rows.forEach(function(r){ t.appendChild(r); });
  });
 });
});
"""


def _learner_table(cls: ClassResult, rows: list[LearnerRow]) -> str:
    cols = cls.columns()
    titles = {f"{lab}.{tid}": title for lab, tasks in cls.labs.items() for tid, title, _mx, _live in tasks}
    maxima = {f"{lab}.{tid}": mx for lab, tasks in cls.labs.items() for tid, _t, mx, _live in tasks}
    head = ["learner", "status", "score", "max", "%", "held", "flags and notes"]
    ths = "".join(f"<th class='sortable'>{escape(h)}</th>" for h in head[:6])
    ths += "<th class='flags'>flags and notes</th>"
    for lab in cls.labs:
        ths += f"<th class='sortable' title='{escape(cls.lab_titles.get(lab, lab))}'>{escape(lab)} total</th>"
        for c in cols:
            if c.startswith(lab + "."):
                title = titles.get(c, "")
                short = title if len(title) <= 40 else title[:38] + "\u2026"
                ths += (
                    f"<th class='sortable' title='{escape(c)}: {escape(title)}'>{escape(c.split('.', 1)[1])}"
                    f"<small>{_label(short)} ({_n(maxima.get(c, 0))})</small></th>"
                )
    out = [f"<div class='wide'><table class='sortable learners'><tr>{ths}</tr>"]
    for r in rows:
        notes = "".join(f"<div class='flag'>&#9873; {escape(f)}</div>" for f in r.flags)
        notes += "".join(f"<div class='err'>&#10007; {escape(e)}</div>" for e in r.errors)
        notes += "".join(f"<div class='note'>&#10003; {escape(n)}</div>" for n in r.notes)
        notes += "".join(
            f"<div class='note'>&#9998; {escape(k)}: {escape(v)}</div>" for k, v in r.comments.items()
        )
        classes = " ".join(
            x
            for x in (
                "flagged" if r.flags or r.errors else "",
                "missing" if r.status == "no submission" else "",
            )
            if x
        )
        cells = []
        for lab in cls.labs:
            total = r.lab_scores.get(lab)
            held = lab in r.held_labs
            text = "&ndash;" if total is None else _n(total) + (" (held)" if held else "")
            cells.append(f"<td class='num total' data-col='{escape(lab)}.total'>{text}</td>")
            for c in cols:
                if not c.startswith(lab + "."):
                    continue
                pts = r.tasks.get(c)
                status = r.statuses.get(c, "none")
                if status == "fail" and pts:
                    status = "partial"  # some credit: not the colour of zero
                text = "&ndash;" if pts is None else _n(pts)
                cells.append(f"<td class='num {escape(status)}' data-col='{escape(c)}'>{text}</td>")
        out.append(
            f"<tr data-learner='{escape(r.learner)}' data-status='{escape(r.status)}' class='{classes}'>"
            f"<td>{escape(r.learner)}</td><td data-col='status'>{escape(r.status)}</td>"
            f"<td class='num' data-col='score'>{_n(r.score)}</td>"
            f"<td class='num' data-col='max_score'>{_n(r.max_score)}</td>"
            f"<td class='num' data-col='percent'>{_n(r.percent)}</td>"
            f"<td class='num' data-col='held_score'>{_n(r.held_score) if r.held_labs else ''}</td>"
            f"<td class='flags' data-col='flags'>{notes}</td>{''.join(cells)}</tr>"
        )
    out.append("</table></div>")
    return "".join(out)
