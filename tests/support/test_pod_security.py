"""The "restricted" Pod Security Standard checker catches each control's violation."""

from __future__ import annotations

import copy

import pytest

from support.pod_security import restricted_violations

RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{
        "name": "main", "image": "x",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
        "ports": [{"containerPort": 8080}],
    }],
    "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "data", "persistentVolumeClaim": {"claimName": "c"}}],
}


def test_a_restricted_pod_passes():
    assert restricted_violations(RESTRICTED_POD) == []


def _container(pod: dict) -> dict:
    return pod["containers"][0]["securityContext"]


@pytest.mark.parametrize(("plant", "control"), [
    (lambda p: p.update(hostNetwork=True), "Host namespaces"),
    (lambda p: _container(p).update(privileged=True), "Privileged"),
    (lambda p: _container(p)["capabilities"].update(add=["SYS_ADMIN"]), "Capabilities (baseline)"),
    (lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "HostPath volumes"),
    (lambda p: p["containers"][0]["ports"][0].update(hostPort=80), "Host ports"),
    (lambda p: p["securityContext"].update(appArmorProfile={"type": "Unconfined"}), "AppArmor"),
    (lambda p: p["securityContext"].update(seLinuxOptions={"type": "spc_t"}), "SELinux"),
    (lambda p: _container(p).update(procMount="Unmasked"), "/proc mount type"),
    (lambda p: p["securityContext"].update(seccompProfile={"type": "Unconfined"}), "Seccomp"),
    (lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "Sysctls"),
    (lambda p: p["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}), "Volume types"),
    (lambda p: _container(p).pop("allowPrivilegeEscalation"), "Privilege escalation"),
    (lambda p: p["securityContext"].pop("runAsNonRoot"), "Running as non-root"),
    (lambda p: _container(p).update(runAsNonRoot=False), "Running as non-root"),
    (lambda p: _container(p).update(runAsUser=0), "Running as non-root user"),
    (lambda p: p["securityContext"].pop("seccompProfile"), "Seccomp (restricted)"),
    (lambda p: _container(p)["capabilities"].update(drop=["NET_RAW"]), "Capabilities (restricted)"),
    (lambda p: p.setdefault("initContainers", []).append({"name": "init", "image": "x"}), "Privilege escalation"),
])
def test_each_control_catches_its_violation(plant, control):
    pod = copy.deepcopy(RESTRICTED_POD)
    plant(pod)
    found = restricted_violations(pod)
    assert any(v.startswith(control + ":") for v in found), found
