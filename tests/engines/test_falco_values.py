"""Values the compiler accepts and refuses as libsinsp does (issue 11 class 7): port fields, fields whose
argument is required, signed ancestor indexes, and the argument types of concat() and getopt()."""

from __future__ import annotations

import pytest

from grader.engines.falco import CompileError, compile_condition, event_from_mapping

REFUSED = {
    # PORT values: digits, an empty string or a service name; a sign makes it neither
    "fd.port = -1": "unrecognized protocol -1",
    "fd.sport = +5": "unrecognized protocol +5",
    "fd.rport = -1": "unrecognized protocol -1",
    "fd.cport = -22": "unrecognized protocol -22",
    "fd.sport in (ssh, -1)": "unrecognized protocol -1",
    "fd.port > -1": "unrecognized protocol -1",
    "fd.sport = no-such-service": "unrecognized protocol no-such-service",
    "fd.lport = 0x16": "unrecognized protocol 0x16",
    # container plugin fields whose argument is required
    "k8s.pod.label = web": "requires an argument",
    "container.label = web": "requires an argument",
    "k8s.ns.label = web": "requires an argument",
    "container.mount.source = /": "requires an argument",
    # concat() and getopt() take strings
    "concat(proc.name, proc.pid) = x": "supports only string arguments",
    "concat(proc.pid, proc.name) = x": "supports only string arguments",
    "concat(proc.name, container.privileged) = x": "supports only string arguments",
    "concat(fd.name, fd.sport) = x": "supports only string arguments",
    'getopt(proc.pid, "a:")[a] = x': "supports only string arguments",
    'getopt((proc.name, user.uid), "a:")[a] = x': "supports only string arguments",
    'getopt((proc.name, proc.pid), "a:") intersects (a)': "supports only string arguments",
}

ACCEPTED = [
    "fd.sport = ssh",
    'fd.sport = ""',
    "fd.sport in (ssh, http, 8443)",
    "fd.port = https",
    "fd.rport = domain",
    "fd.sport = 22",
    "fd.lport = 65535",
    "k8s.pod.label[app] = web",
    "k8s.pod.label.app = web",
    "container.label[maintainer] = x",
    "k8s.pod.labels contains web",
    "container.labels contains x",
    "proc.aname[-1] = bash",
    "proc.aname[+2] = bash",
    "proc.apid[-1] = 1",
    "proc.aname[0] = bash",
    'concat(proc.name, "-", fd.name) = x',
    "concat(proc.name, toupper(fd.name)) = x",
    'getopt(proc.args, "nt:")[t] = x',
    'getopt(("-n", proc.name), "n") intersects (n)',
]


@pytest.mark.parametrize(("condition", "message"), sorted(REFUSED.items()))
def test_refused_as_libs_refuses(condition: str, message: str) -> None:
    with pytest.raises(CompileError) as err:
        compile_condition(f"evt.type in (connect, execve) and {condition}")
    assert message in str(err.value)


@pytest.mark.parametrize("condition", ACCEPTED)
def test_accepted_as_libs_accepts(condition: str) -> None:
    compile_condition(f"evt.type in (connect, execve) and {condition}")


@pytest.mark.parametrize(("value", "port"), [("ssh", 22), ('""', 0), ("http", 80), ("65558", 22), ("22", 22)])
def test_port_values_mean_what_libs_makes_of_them(value: str, port: int) -> None:
    flt = compile_condition(f"evt.type = connect and fd.sport = {value}")
    assert flt.matches(event_from_mapping({"evt.type": "connect", "fd.sport": port}))
    assert not flt.matches(event_from_mapping({"evt.type": "connect", "fd.sport": port + 1}))


def test_minus_one_ancestor_is_any_ancestor() -> None:
    event = event_from_mapping({"evt.type": "execve", "proc.name": "sh", "proc.ancestors": ["bash", "sshd"]})
    assert compile_condition("proc.aname[-1] = sshd").matches(event)
    assert compile_condition("proc.aname = sshd").matches(event)
    assert not compile_condition("proc.aname[1] = sshd").matches(event)
    assert compile_condition("proc.aname[+2] = sshd").matches(event)
