"""`cks collect LAB --out FILE.tar.gz [--target T]`: save a live lab's evidence as a snapshot archive.

The archive is the snapshot directory (workspace layout) that `grade` would grade; an instructor regrades it
offline. It never holds credentials: the kubeconfig is read, never copied.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from grader.cli import CONTEXT, EXIT_ERROR, fail_usage, load_lab, spinner
from grader.cli.options import context_option, kubeconfig_option, output_option, target_option
from grader.text import plural


@click.command("collect", context_settings=CONTEXT)
@click.argument("lab")
@output_option("Where to write the archive.", metavar="FILE.tar.gz", dest="out", required=True)
@target_option(
    "kind[:NAME] | vagrant[:MACHINE] | local | ssh://HOST (default: local on a control-plane node)."
)
@kubeconfig_option("Kubeconfig for the API (default $KUBECONFIG or the node's).")
@context_option()
@click.option("--in-cluster", is_flag=True, help="Use the Pod's ServiceAccount (grader running in a Job).")
def collect_cmd(
    lab: str, out: str, target: str | None, kubeconfig: str | None, kube_context: str | None, in_cluster: bool
) -> None:
    """Collect LAB's evidence from a live cluster into a snapshot archive."""
    the_lab = load_lab(lab)
    try:
        from grader import collectors
        from grader.collectors.gather import archive
    except ImportError as exc:
        fail_usage(f"live collection needs the live extras: pip install 'cks-kit[live]' ({exc})")
    if target is None:
        target = "local" if collectors.default_target() == "local" or in_cluster else None
        if target is None:
            fail_usage(
                "no --target and this is not a control-plane node: pass --target kind:NAME, vagrant, ..."
            )
    try:
        parsed = collectors.parse_target(target)
    except ValueError as exc:
        fail_usage(str(exc))
    if parsed.kind == "workspace":
        fail_usage("a workspace is already a snapshot: `cks submit` packs it")
    with (
        tempfile.TemporaryDirectory(prefix="cks-collect-") as tmp,
        spinner(f"collecting {the_lab.id} from {target}") as status,
    ):
        try:
            result = collectors.collect(
                the_lab,
                parsed,
                Path(tmp) / "snapshot",
                kubeconfig=kubeconfig,
                context=kube_context,
                in_cluster=in_cluster,
                progress=status,
            )
            path = archive(result.snapshot_dir, Path(out))
        except collectors.LiveError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    for scope, message in result.problems:
        click.echo(f"warning: {scope}: {message}", err=True)
    click.echo(
        f"Collected {the_lab.id} from {result.label} into {path}"
        + (
            f" ({plural(len(result.problems), 'problem')} noted; those tasks will grade as error)"
            if result.problems
            else "."
        )
    )


def target_note(lab, target: str, values: dict) -> str:
    """`cks show LAB --target kind:NAME`: how to edit the node files this lab asks for on a kind node (a
    container with no editor). Empty for other targets and for labs without node files."""
    from grader import variants
    from grader.collectors import parse_target
    from grader.collectors.nodes import kind_node_container

    try:
        parsed = parse_target(target)
    except ValueError as exc:
        fail_usage(str(exc))
    if parsed.kind != "kind":
        return ""
    paths = sorted(
        {
            variants.render_text(f.path, values)
            for f in lab.collect.files + lab.collect.dirs
            if f.node == "controlplane"
        }
    )
    if not paths:
        return ""
    node = kind_node_container(parsed.name, "controlplane")
    listed = "\n".join(f"- `{p}`" for p in paths)
    copy_steps = f"`docker cp {node}:/path/file file`, edit, `docker cp file {node}:/path/file`"
    return f"""

## On kind: editing node files

The node `controlplane` is the container `{node}`, and it has no editor. This lab's node files:

{listed}

- Open a shell on the node: `docker exec -it {node} bash`; write small files with `cat > FILE <<'EOF'`.
- Or edit on your machine and copy: {copy_steps}.
- `/etc/kubernetes/audit` and `/opt/course` on the node are the checkout's `kind/audit` and `kind/course`
  folders (kind/cluster.yaml mounts them): edit those directly.
- The kube-apiserver manifest: copy it out, edit the copy, copy it back in one step (kubelet restarts the API
  server within seconds); never leave a second copy inside `/etc/kubernetes/manifests`.
"""
