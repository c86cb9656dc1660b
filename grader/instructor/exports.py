"""Class exports beside the CSV: per-task statistics, gradebook files for Canvas and Moodle, feedback.

Gradebooks carry only what counts: a held bundle's cell is left blank (the instructor has not accepted it),
a learner with no submission gets 0. Learner-controlled text is defused against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from html import escape
from pathlib import Path

from grader.instructor.regrade import ClassResult, LearnerRow, Policy, csv_cell, csv_number, learner_rows


def task_stats(cls: ClassResult) -> list[dict[str, object]]:
    out = []
    for lab_id, tasks in cls.labs.items():
        for tid, title, mx, live in tasks:
            pts, statuses, msgs = [], Counter(), Counter()
            for b in cls.bundles:
                if b.error or b.lab != lab_id:
                    continue
                for t in b.tasks:
                    if t.id == tid:
                        statuses[t.status] += 1
                        if t.status != "skip":
                            pts.append(t.points)
                        if t.status in ("fail", "error"):
                            msgs[t.common or t.message] += 1
            graded = len(pts)
            out.append(
                {
                    "column": f"{lab_id}.{tid}",
                    "lab": lab_id,
                    "task": tid,
                    "title": title,
                    "max_points": mx,
                    "live_only": live,
                    "graded": graded,
                    "passed": statuses["pass"],
                    "failed": statuses["fail"],
                    "errors": statuses["error"],
                    "skipped": statuses["skip"],
                    "mean_points": round(sum(pts) / graded, 2) if graded else "",
                    "pass_rate": round(100.0 * statuses["pass"] / graded, 1) if graded else "",
                    "most_common_failure": msgs.most_common(1)[0][0][:300] if msgs else "",
                }
            )
    return out


def write_stats_csv(cls: ClassResult, out: Path) -> list[dict[str, object]]:
    stats = task_stats(cls)
    cols = [
        "column",
        "lab",
        "task",
        "title",
        "max_points",
        "live_only",
        "graded",
        "passed",
        "failed",
        "errors",
        "skipped",
        "mean_points",
        "pass_rate",
        "most_common_failure",
    ]
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for s in stats:
            w.writerow([csv_cell(str(s[c])) if isinstance(s[c], str) else s[c] for c in cols])
    return stats


def _learners(cls: ClassResult) -> list[LearnerRow]:
    """Rows of real learners: a bundle too damaged to name its learner ("?file.tar.gz") has no gradebook
    entry or feedback (it is in the class CSV and HTML, with its error)."""
    return [r for r in learner_rows(cls) if not r.learner.startswith("?")]


def _lab_cell(row: LearnerRow, lab: str) -> str:
    if lab in row.held_labs:
        return ""  # held: not counted until accepted
    if lab in row.lab_scores:
        return csv_number(row.lab_scores[lab])
    return "0"  # no submission (or a bad bundle): nothing earned


def _lab_max(cls: ClassResult, lab: str) -> float:
    return sum(mx for _i, _t, mx, live in cls.labs[lab] if not live)


def _assignment(cls: ClassResult, lab: str) -> str:
    return f"CKS {lab}: {cls.lab_titles.get(lab, lab)}"


def write_canvas(cls: ClassResult, out: Path) -> None:
    """Canvas's gradebook import layout: Student, ID, SIS User ID, SIS Login ID, Section, one column per
    assignment, and a "Points Possible" row. Canvas matches learners by SIS Login ID (the learner id here)
    or SIS User ID from the roster; a column it does not know becomes a new assignment."""
    rows = _learners(cls)
    roster = (cls.policy or Policy()).roster
    labs = list(cls.labs)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "Student",
                "ID",
                "SIS User ID",
                "SIS Login ID",
                "Section",
                *[_assignment(cls, lab) for lab in labs],
            ]
        )
        w.writerow(["    Points Possible", "", "", "", "", *[csv_number(_lab_max(cls, lab)) for lab in labs]])
        for row in rows:
            entry = roster.get(row.learner)
            w.writerow(
                [
                    csv_cell(entry.name if entry and entry.name else row.learner),
                    "",
                    csv_cell(entry.sis_id if entry else ""),
                    csv_cell(row.learner),
                    csv_cell(entry.section if entry else ""),
                    *[_lab_cell(row, lab) for lab in labs],
                ]
            )


def write_moodle(cls: ClassResult, out: Path) -> None:
    """Moodle's "Import grades: CSV file" layout: an identifier column to map to a user field (ID number,
    Email address), then one grade column and one feedback column per grade item."""
    rows = _learners(cls)
    roster = (cls.policy or Policy()).roster
    labs = list(cls.labs)
    head = ["ID number", "Email address", "Full name"]
    for lab in labs:
        head += [_assignment(cls, lab), f"{_assignment(cls, lab)} (feedback)"]
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for row in rows:
            entry = roster.get(row.learner)
            rec = [
                csv_cell(row.learner),
                csv_cell(entry.email if entry else ""),
                csv_cell(entry.name if entry and entry.name else row.learner),
            ]
            for lab in labs:
                note = (
                    "held for review"
                    if lab in row.held_labs
                    else ("no submission" if lab not in row.lab_scores else "")
                )
                comment = "; ".join(
                    f"{k.split('.', 1)[-1]}: {v}" if k != lab else v
                    for k, v in row.comments.items()
                    if k == lab or k.startswith(lab + ".")
                )
                rec += [_lab_cell(row, lab), csv_cell("; ".join(x for x in (note, comment) if x))]
            w.writerow(rec)


_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def write_feedback(cls: ClassResult, folder: Path) -> list[Path]:
    """One Markdown and one HTML file per learner: each lab's score and each task's status, points, reason
    and the instructor's comment. Flags are for the instructor and are not written here."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {r.learner: r for r in _learners(cls)}
    written = []
    for learner, row in rows.items():
        name = _SAFE.sub("_", learner) or "learner"
        md, html = _feedback(cls, row)
        for suffix, text in ((".md", md), (".html", html)):
            path = folder / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def _feedback(cls: ClassResult, row: LearnerRow) -> tuple[str, str]:
    md = [f"# Feedback for {row.learner}", ""]
    html = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Feedback for {escape(row.learner)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
        "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}"
        ".pass{background:#dafbe1}.fail{background:#ffebe9}.error{background:#fff8c5}.partial{background:#fff1d6}"
        "</style></head><body>",
        f"<h1>Feedback for {escape(row.learner)}</h1>",
    ]
    bundles = [b for b in cls.bundles if b.learner == row.learner and b.error is None]
    if not bundles:
        md.append("No submission was received.")
        html.append("<p data-status='no submission'>No submission was received.</p>")
    for b in bundles:
        state = " (held for review: not counted yet)" if b.held else ""
        penalty = f", late penalty -{b.penalty:g}" if b.penalty else ""
        md += [f"## {b.lab}: {b.lab_title}", "", f"Score: {b.score:g}/{b.max_score:g}{penalty}{state}", ""]
        html.append(
            f"<h2>{escape(str(b.lab))}: {escape(b.lab_title)}</h2><p data-lab='{escape(str(b.lab))}'>"
            f"Score: <b data-col='score'>{b.score:g}</b>/{b.max_score:g}{escape(penalty + state)}</p>"
        )
        if b.comments.get(""):
            md += [f"Instructor's comment: {b.comments['']}", ""]
            html.append(f"<p class='comment'>Instructor's comment: {escape(b.comments[''])}</p>")
        md += ["| task | status | points | reason | instructor's comment |", "|---|---|---|---|---|"]
        html.append(
            "<table><tr><th>task</th><th>status</th><th>points</th><th>reason</th>"
            "<th>instructor's comment</th></tr>"
        )
        for t in b.tasks:
            comment = b.comments.get(t.id, "")
            reason = t.message.replace("|", "\\|").replace("\n", " ")
            md.append(
                f"| {t.id}: {t.title} | {t.status} | {t.points:g}/{t.max_points:g} | {reason} | "
                f"{comment.replace('|', '/')} |"
            )
            cls_name = "partial" if t.status == "fail" and t.points > 0 else t.status
            html.append(
                f"<tr data-task='{escape(t.id)}' class='{escape(cls_name)}'><td>{escape(t.id)}: "
                f"{escape(t.title)}</td><td>{escape(t.status)}</td><td>{t.points:g}/{t.max_points:g}</td>"
                f"<td>{escape(t.message)}</td><td class='comment'>{escape(comment)}</td></tr>"
            )
        md.append("")
        html.append("</table>")
    html.append("</body></html>")
    return "\n".join(md) + "\n", "\n".join(html) + "\n"
