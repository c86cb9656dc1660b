from __future__ import annotations

import json

from grader.results import Report


def render_json(report: Report, *, hints: bool = False) -> str:
    return json.dumps(report.to_dict(hints=hints), indent=2, ensure_ascii=False) + "\n"
