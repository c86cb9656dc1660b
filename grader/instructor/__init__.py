"""Instructor tools: evidence bundles (submit), class regrading and reports, learner distributions, solutions.

Nothing here is imported on a learner's grading path; the CLI loads these modules only for their commands.
"""
