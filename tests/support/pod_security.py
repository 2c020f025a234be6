"""The Pod Security Standards' "restricted" level (which includes "baseline"), as the PodSecurity
admission controller checks a pod: https://kubernetes.io/docs/concepts/security/pod-security-standards/
(policy version 1.30; the same rules up to the newest).

No API server runs on the test machines, so this is the list of the standard's controls written
out, each shown to catch a planted violation in tests/support/test_pod_security.py.
``restricted_violations(pod_spec)`` returns one line per violated control, naming the container.
"""

from __future__ import annotations

from typing import Any, Iterator

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP",
    "SETUID", "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key) or []


def restricted_violations(pod: dict[str, Any], annotations: dict[str, str] | None = None) -> list[str]:
    """Every control of the "restricted" Pod Security Standard that the pod spec ``pod`` violates."""
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    containers = list(_containers(pod))

    def each(what: str, bad: Any) -> None:
        for c in containers:
            sc = c.get("securityContext") or {}
            reason = bad(c, sc)
            if reason:
                out.append(f"{what}: container {c.get('name')!r} {reason}")

    # ---- baseline
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("HostProcess: pod sets windowsOptions.hostProcess")
    each("HostProcess", lambda c, sc: "sets windowsOptions.hostProcess" if (sc.get("windowsOptions") or {}).get("hostProcess") else None)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            out.append(f"Host namespaces: pod sets {key}")
    each("Privileged", lambda c, sc: "is privileged" if sc.get("privileged") else None)
    each("Capabilities (baseline)", lambda c, sc: (
        f"adds {sorted(set((sc.get('capabilities') or {}).get('add') or []) - BASELINE_CAPABILITIES)}"
        if set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES else None))
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            out.append(f"HostPath volumes: volume {volume.get('name')!r}")
    each("Host ports", lambda c, sc: "uses a hostPort" if any(p.get("hostPort") for p in c.get("ports") or []) else None)
    for where, profile in [("pod", psc.get("appArmorProfile"))] + [(f"container {c.get('name')!r}", (c.get("securityContext") or {}).get("appArmorProfile")) for c in containers]:
        if profile and profile.get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"AppArmor: {where} uses profile {profile.get('type')}")
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and value != "runtime/default" and not value.startswith("localhost/"):
            out.append(f"AppArmor: annotation {key}={value}")
    for where, options in [("pod", psc.get("seLinuxOptions"))] + [(f"container {c.get('name')!r}", (c.get("securityContext") or {}).get("seLinuxOptions")) for c in containers]:
        if options and (options.get("type", "") not in SELINUX_TYPES or options.get("user") or options.get("role")):
            out.append(f"SELinux: {where} sets {options}")
    each("/proc mount type", lambda c, sc: f"uses procMount {sc['procMount']}" if sc.get("procMount") not in (None, "Default") else None)
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined":
        out.append("Seccomp: pod profile is Unconfined")
    each("Seccomp", lambda c, sc: "profile is Unconfined" if (sc.get("seccompProfile") or {}).get("type") == "Unconfined" else None)
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"Sysctls: {sysctl.get('name')} is not a safe sysctl")

    # ---- restricted
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"Volume types: volume {volume.get('name')!r} is {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    each("Privilege escalation", lambda c, sc: "does not set allowPrivilegeEscalation: false" if sc.get("allowPrivilegeEscalation") is not False else None)
    pod_non_root = psc.get("runAsNonRoot") is True
    each("Running as non-root", lambda c, sc: (
        "sets runAsNonRoot: false" if sc.get("runAsNonRoot") is False
        else None if pod_non_root or sc.get("runAsNonRoot") is True else "runs without runAsNonRoot: true (pod or container)"))
    if psc.get("runAsUser") == 0:
        out.append("Running as non-root user: pod sets runAsUser: 0")
    each("Running as non-root user", lambda c, sc: "sets runAsUser: 0" if sc.get("runAsUser") == 0 else None)
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    each("Seccomp (restricted)", lambda c, sc: (
        None if (sc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
        or (pod_seccomp and "seccompProfile" not in sc) else "has no RuntimeDefault or Localhost seccomp profile (pod or container)"))
    each("Capabilities (restricted)", lambda c, sc: (
        "does not drop ALL capabilities" if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or [])
        else f"adds {sorted(set((sc.get('capabilities') or {}).get('add') or []) - {'NET_BIND_SERVICE'})}"
        if set((sc.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"} else None))
    return out
