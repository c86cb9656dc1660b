"""Generators of seeded starting states (lab.yaml ``generator: grader.labgen.<lab>:generate``).

A generator is ``generate(dest: Path, seed: str | None, values: dict) -> None``; it writes files into the
workspace layout. A module may also define ``derive(seed, values) -> dict``: answer-carrying values the
checks, solutions and fixtures use (see grader.variants.values_for); they are never written into the
learner's workspace.
"""
