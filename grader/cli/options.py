"""Options shared by several commands, declared once so that a name, a short flag or a help text cannot drift.

Each is a decorator; those whose meaning depends on the command take the help text as an argument.
Only click is imported here: every command module may use these without slowing `grade --help`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

DEFAULT_WS_HELP = "The practice workspace (default ./cks-workspace/LAB)."


def lab_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    """LAB, optional to click so a missing one gets a message that lists the labs (exit 2)."""
    return click.argument("lab", required=False, metavar="LAB")(f)


def workspace_option(help: str = DEFAULT_WS_HELP) -> Decorator:
    return click.option("--workspace", "-w", metavar="DIR", help=help)


TARGETS = "kind[:NAME] | vagrant[:MACHINE] | local | ssh://HOST | workspace:DIR"


def target_option(help: str = TARGETS) -> Decorator:
    return click.option("--target", "-t", metavar="T", default=None, help=help)


def kubeconfig_option(help: str = "Kubeconfig for live targets (default $KUBECONFIG).") -> Decorator:
    return click.option("--kubeconfig", metavar="FILE", help=help)


def context_option(help: str = "Kubeconfig context for live targets.") -> Decorator:
    return click.option("--context", "kube_context", metavar="NAME", help=help)


def seed_option(help: str = "Per-learner variant: names and values drawn from ID.") -> Decorator:
    return click.option("--seed", metavar="ID", help=help)


def format_option(*choices: str, default: str | None = None) -> Decorator:
    return click.option(
        "--format",
        "-f",
        "fmt",
        type=click.Choice(list(choices)),
        default=default or choices[0],
        show_default=True,
        help="Output format.",
    )


def output_option(
    help: str = "Write the chosen format to FILE (the table still prints).",
    *,
    metavar: str = "FILE",
    dest: str = "output",
    required: bool = False,
) -> Decorator:
    """-o/--output, with --out accepted too, wherever a command writes a file."""
    return click.option("--output", "--out", "-o", dest, metavar=metavar, required=required, help=help)


def verbose_option(help: str = "Show evidence (where, expected, actual) for every task.") -> Decorator:
    return click.option("-v", "--verbose", is_flag=True, help=help)


def live_target_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--kubeconfig and --context, which always travel together."""
    return kubeconfig_option()(context_option()(f))
