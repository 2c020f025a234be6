"""charts/polya rendered by the real Helm engine: lint, schemas, and the objects' shape."""

from __future__ import annotations

import copy
import json
import re

import helm_python as helm
import pytest
import yaml
from chart_render import (
    CHART_DIR,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    RenderedChart,
    RenderedObject,
    render_chart,
    validate_object,
)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_chart_lints_clean_in_strict_mode(value_set: str) -> None:
    report = helm.lint(str(CHART_DIR), copy.deepcopy(VALUE_SETS[value_set]), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems or report["errors"]


def test_every_rendered_object_matches_its_schema(rendered: RenderedChart) -> None:
    assert rendered.objects
    for obj in rendered.objects:
        validate_object(obj)


def test_validation_rejects_unknown_fields_and_missing_required_fields(rendered_gpu: RenderedChart) -> None:
    """The validators are strict: a typo in a Deployment or a RayCluster worker group fails."""
    deployment = copy.deepcopy(rendered_gpu.of_kind("Deployment")[0])
    deployment.body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(AssertionError, match="imagePullPolicyy"):
        validate_object(deployment)
    ray = copy.deepcopy(rendered_gpu.of_kind("RayCluster")[0])
    del ray.body["spec"]["workerGroupSpecs"][0]["groupName"]
    with pytest.raises(AssertionError, match="groupName"):
        validate_object(ray)
    ray = copy.deepcopy(rendered_gpu.of_kind("RayCluster")[0])
    ray.body["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(AssertionError, match="resourcez"):
        validate_object(ray)
    rule = copy.deepcopy(rendered_gpu.of_kind("PrometheusRule")[0])
    rule.body["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    with pytest.raises(AssertionError, match="does not match"):
        validate_object(rule)


def test_every_object_carries_the_release_labels(rendered: RenderedChart) -> None:
    for obj in rendered.objects:
        labels = obj.body["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == RELEASE, obj
        assert labels.get("app.kubernetes.io/version") == "0.1.0", obj
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", obj


# ---------------------------------------------------------------- security


def _is_namespaces_verifier(obj: RenderedObject, values: dict) -> bool:
    return obj.name.endswith("-verifier") and values.get("verifier", {}).get("sandbox", {}).get("mode") == "namespaces"


def test_pods_run_non_root_with_runtime_default_seccomp_and_no_capabilities(rendered: RenderedChart) -> None:
    seen = 0
    for obj, pod in rendered.pod_specs():
        if _is_namespaces_verifier(obj, rendered.values):
            continue
        seen += 1
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, obj
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, obj
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, (obj, container["name"])
            assert sc["allowPrivilegeEscalation"] is False, (obj, container["name"])
            assert sc["readOnlyRootFilesystem"] is True, (obj, container["name"])
            assert sc["capabilities"] == {"drop": ["ALL"]}, (obj, container["name"])
            if obj.kind != "ClusterTrainingRuntime":  # a TrainJob sets its nodes' resources (resourcesPerNode)
                assert "resources" in container and container["resources"].get("limits", {}).get("memory"), (obj, container["name"])
    assert seen > 0


def test_read_only_root_filesystem_pods_get_a_writable_tmp(rendered: RenderedChart) -> None:
    for obj, pod in rendered.pod_specs():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            writable = [p for p in mounts if p in ("/tmp", "/prometheus")]
            assert writable, f"{obj!r} container {container['name']} has no writable scratch volume"
            assert "emptyDir" in volumes[mounts[writable[0]]], obj


def test_namespaces_sandbox_mode_is_an_explicit_opt_in() -> None:
    chart = render_chart(VALUE_SETS["pvc-model"])
    pod = chart.get("Deployment", f"{RELEASE}-polya-verifier")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "Unconfined"}
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"add": ["SYS_ADMIN"]}
    # everything else stays restricted
    vllm = chart.get("Deployment", f"{RELEASE}-polya-vllm")["spec"]["template"]["spec"]
    assert vllm["securityContext"]["runAsNonRoot"] is True


def test_service_account_tokens_are_not_mounted_into_services(rendered: RenderedChart) -> None:
    for obj, pod in rendered.pod_specs():
        if obj.kind == "Deployment" and obj.name.endswith("-prometheus"):
            continue  # service discovery needs the API
        if obj.kind == "RayCluster" and obj.body["spec"]["enableInTreeAutoscaling"] and pod is obj.body["spec"]["headGroupSpec"]["template"]["spec"]:
            assert pod["automountServiceAccountToken"] is True  # KubeRay's autoscaler beside the head calls the API
            continue
        assert pod.get("automountServiceAccountToken") is False, obj


def test_verifier_network_policy_denies_all_egress(rendered_defaults: RenderedChart) -> None:
    policy = rendered_defaults.get("NetworkPolicy", f"{RELEASE}-polya-verifier")["spec"]
    assert "Egress" in policy["policyTypes"]
    assert policy["egress"] == []
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "verifier"
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "http"}]


def test_network_policies_admit_the_monitoring_and_client_namespaces(rendered_gpu: RenderedChart) -> None:
    policy = rendered_gpu.get("NetworkPolicy", f"{RELEASE}-polya-vllm")["spec"]
    sources = policy["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in sources
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}} in sources
    # Hugging Face downloads: HTTPS egress; DNS
    ports = [p for rule in policy["egress"] for p in rule.get("ports", [])]
    assert {"protocol": "TCP", "port": 443} in ports and {"protocol": "UDP", "port": 53} in ports


def test_external_s3_egress_uses_the_endpoint_port() -> None:
    values = copy.deepcopy(VALUE_SETS["external-s3"])
    values["s3"]["external"]["endpoint"] = "http://ceph.storage.svc:7480"
    chart = render_chart(values)
    policy = chart.get("NetworkPolicy", f"{RELEASE}-polya-ray")["spec"]
    assert {"ports": [{"protocol": "TCP", "port": 7480}]} in policy["egress"]


def _granted(role: dict) -> dict[tuple[str, str], set[str]]:
    return {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


def test_pipeline_runner_rbac_is_namespaced_and_bound(rendered_defaults: RenderedChart) -> None:
    assert not rendered_defaults.of_kind("ClusterRole") and not rendered_defaults.of_kind("ClusterRoleBinding")
    sa = rendered_defaults.get("ServiceAccount", f"{RELEASE}-polya-pipeline-runner")
    for name in ("pipeline-runner", "job-submitter"):
        role = rendered_defaults.get("Role", f"{RELEASE}-polya-{name}")
        binding = rendered_defaults.get("RoleBinding", f"{RELEASE}-polya-{name}")
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
    granted = _granted(rendered_defaults.get("Role", f"{RELEASE}-polya-pipeline-runner"))
    assert {"create", "delete"} <= granted[("", "pods")] and {"create"} <= granted[("batch", "jobs")]
    assert {"create", "delete"} <= granted[("ray.io", "rayclusters")]
    assert granted[("", "secrets")] == {"get"}


def test_the_job_submitter_role_covers_every_job_kind_polya_submits(rendered_defaults: RenderedChart) -> None:
    """Every kind in JOB_KINDS can be created, followed and deleted, and its pods' logs read (a
    TrainJob or PyTorchJob submitted under the chart's service account used to get 403)."""
    from polya.pipeline.jobs import JOB_KINDS

    granted = _granted(rendered_defaults.get("Role", f"{RELEASE}-polya-job-submitter"))
    for kind in JOB_KINDS.values():
        assert {"create", "get", "list", "watch", "delete"} <= granted.get((kind.group, kind.plural), set()), kind.kind
    assert {"get", "list"} <= granted[("", "pods")] and "get" in granted[("", "pods/log")]
    assert ("ray.io", "rayjobs") not in _granted(rendered_defaults.get("Role", f"{RELEASE}-polya-pipeline-runner"))  # granted once


# ---------------------------------------------------------------- scheduling and resources


def test_gpu_values_put_vllm_on_the_gpu_pool_with_gpus(rendered_gpu: RenderedChart) -> None:
    deployment = rendered_gpu.get("Deployment", f"{RELEASE}-polya-vllm")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"polya.dev/pool": "gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert args[args.index("--model") + 1] == "meta-llama/Llama-3.2-3B-Instruct"
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_cpu_values_put_vllm_on_the_cpu_pool_without_gpus(rendered_kind: RenderedChart) -> None:
    pod = rendered_kind.get("Deployment", f"{RELEASE}-polya-vllm")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"polya.dev/pool": "cpu"}
    assert "tolerations" not in pod
    container = pod["containers"][0]
    assert not any("gpu" in k for k in container["resources"].get("limits", {}))
    assert "--tensor-parallel-size" not in container["args"]


def test_ray_worker_groups_follow_their_pools(rendered_gpu: RenderedChart) -> None:
    ray = rendered_gpu.get("RayCluster", f"{RELEASE}-polya-ray")["spec"]
    groups = {g["groupName"]: g for g in ray["workerGroupSpecs"]}
    gpu_pod = groups["gpu"]["template"]["spec"]
    assert gpu_pod["nodeSelector"] == {"polya.dev/pool": "gpu"}
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    cpu_pod = groups["cpu"]["template"]["spec"]
    assert cpu_pod["nodeSelector"] == {"polya.dev/pool": "cpu"}
    assert "nvidia.com/gpu" not in cpu_pod["containers"][0]["resources"]["limits"]
    assert ray["headGroupSpec"]["template"]["spec"]["nodeSelector"] == {"polya.dev/pool": "cpu"}
    assert ray["rayVersion"] == "2.60.0"
    env = {e["name"] for e in cpu_pod["containers"][0]["env"]}
    assert {"POLYA_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env


def test_services_have_health_probes(rendered_defaults: RenderedChart) -> None:
    for name in ("vllm", "verifier"):
        container = rendered_defaults.get("Deployment", f"{RELEASE}-polya-{name}")["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, (name, probe)
    vllm = rendered_defaults.get("Deployment", f"{RELEASE}-polya-vllm")["spec"]["template"]["spec"]["containers"][0]
    assert vllm["startupProbe"]["failureThreshold"] * vllm["startupProbe"]["periodSeconds"] == 1800


def test_verifier_autoscales_with_a_disruption_budget(rendered_defaults: RenderedChart) -> None:
    deployment = rendered_defaults.get("Deployment", f"{RELEASE}-polya-verifier")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    hpa = rendered_defaults.get("HorizontalPodAutoscaler", f"{RELEASE}-polya-verifier")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    pdb = rendered_defaults.get("PodDisruptionBudget", f"{RELEASE}-polya-verifier")["spec"]
    assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_verifier_config_is_a_valid_polya_verifier_config(rendered: RenderedChart) -> None:
    from polya.verify.config import VerifierConfig

    if not rendered.values.get("verifier", {}).get("enabled", True):
        pytest.skip("verifier disabled in this value set")
    config_map = rendered.get("ConfigMap", f"{RELEASE}-polya-verifier")
    config = VerifierConfig.model_validate(yaml.safe_load(config_map["data"]["verifier.yaml"]))
    assert config.host == "0.0.0.0" and config.port == 8080
    container = rendered.get("Deployment", f"{RELEASE}-polya-verifier")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["polya", "serve-verifier"]
    assert container["args"][:2] == ["--config", "/etc/polya/verifier.yaml"]


def test_verifier_auth_token_comes_from_a_secret(rendered_gpu: RenderedChart) -> None:
    container = rendered_gpu.get("Deployment", f"{RELEASE}-polya-verifier")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    ref = env["POLYA_VERIFIER_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = rendered_gpu.get("Secret", ref["name"])
    assert len(secret["data"][ref["key"]]) >= 40


# ---------------------------------------------------------------- storage


def test_minio_statefulset_secret_and_bucket_job(rendered_defaults: RenderedChart) -> None:
    sts = rendered_defaults.get("StatefulSet", f"{RELEASE}-polya-minio")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    secret = rendered_defaults.get("Secret", f"{RELEASE}-polya-minio")
    assert set(secret["data"]) == {"rootUser", "rootPassword"}
    job = rendered_defaults.get("Job", f"{RELEASE}-polya-minio-bootstrap")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "for bucket in polya; do" in script and "mc mb --ignore-existing" in script


def test_external_s3_replaces_minio() -> None:
    chart = render_chart(VALUE_SETS["external-s3"])
    assert not [o for o in chart.objects if "minio" in o.name]
    init = chart.get("Deployment", f"{RELEASE}-polya-vllm")["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e for e in init["env"]}
    assert env["POLYA_S3_ENDPOINT"]["value"] == "https://s3.eu-west-1.amazonaws.com"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "polya-s3", "key": "AWS_ACCESS_KEY_ID"}
    assert init["command"][-3:] == ["polya-runs", "runs/exp1/sft/checkpoint", "/cache/model"]
    endpoints = chart.get("ConfigMap", f"{RELEASE}-polya-endpoints")["data"]
    assert endpoints["POLYA_S3_BUCKET"] == "polya-runs"


def test_model_from_pvc_is_mounted_read_only() -> None:
    chart = render_chart(VALUE_SETS["pvc-model"])
    pod = chart.get("Deployment", f"{RELEASE}-polya-vllm")["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "/models/Llama-3.2-3B-Instruct"
    volume = next(v for v in pod["volumes"] if v["name"] == "model")
    assert volume["persistentVolumeClaim"] == {"claimName": "llama-weights", "readOnly": True}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"


def test_minio_password_is_random_unless_given() -> None:
    first = render_chart({}).get("Secret", f"{RELEASE}-polya-minio")["data"]["rootPassword"]
    second = render_chart({}).get("Secret", f"{RELEASE}-polya-minio")["data"]["rootPassword"]
    assert first != second
    kind = render_chart(VALUE_SETS["kind"]).get("Secret", f"{RELEASE}-polya-minio")["data"]["rootPassword"]
    import base64

    assert base64.b64decode(kind).decode() == "polya-kind-secret"


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"vllm": {"model": {"source": "ftp"}}}, r"/vllm/model/source.*one of 'hf', 'pvc', 's3'"),
        ({"verifier": {"replicas": -1}}, r"/verifier/replicas.*minimum"),
        ({"vllmm": {"enabled": True}}, r"additional properties 'vllmm' not allowed"),
        ({"vllm": {"service": {"nodePort": 80}}}, r"/vllm/service/nodePort"),
        ({"s3": {"bucket": "Bad_Bucket"}}, r"/s3/bucket"),
        ({"monitoring": {"alerts": {"for": "five minutes"}}}, r"/monitoring/alerts/for"),
        ({"minio": {"auth": {"rootPassword": "short"}}}, r"/minio/auth/rootPassword"),
        ({"verifier": {"sandbox": {"mode": "privileged"}}}, r"/verifier/sandbox/mode"),
        ({"vllm": {"model": {"source": "pvc"}}}, r"vllm.model.pvc.claimName is empty"),
        ({"vllm": {"model": {"source": "s3"}}}, r"vllm.model.s3.prefix is empty"),
        ({"vllm": {"hfToken": {"create": True}}}, r"vllm.hfToken.value is empty"),
        ({"s3": {"external": {"enabled": True, "endpoint": "https://s3.example", "existingSecret": "k"}}},
         r"minio.enabled and s3.external.enabled are both true"),
        ({"minio": {"enabled": False}, "s3": {"external": {"enabled": True, "existingSecret": "k"}}},
         r"s3.external.endpoint is empty"),
        ({"verifier": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, r"minReplicas \(5\) is greater than maxReplicas \(2\)"),
        ({"ray": {"enabled": True, "workerGroups": [{"name": "cpu", "pool": "tpu", "replicas": 1, "minReplicas": 0,
                                                     "maxReplicas": 1, "gpus": 0, "resources": {}}]}}, r"pool.*one of 'cpu', 'gpu'"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        render_chart(values)
    assert re.search(message, str(err.value)), str(err.value)


# ---------------------------------------------------------------- documentation


def _values_lines() -> list[str]:
    return (CHART_DIR / "values.yaml").read_text().splitlines()


def test_every_value_is_documented() -> None:
    """Each key of values.yaml has a comment above it, or is a group of documented keys; the content
    of a documented value (resources, selectors, config maps) needs no comments of its own."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    stack: list[tuple[int, str, dict | None, bool]] = []  # (indent, key, schema node, documented)
    undocumented = []
    lines = _values_lines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack and stack[-1][3]:
            stack.append((indent, key, None, True))
            continue  # inside a documented value
        parent = stack[-1][2] if stack else schema
        node = (parent or {}).get("properties", {}).get(key)
        documented = i > 0 and lines[i - 1].strip().startswith("#")
        stack.append((indent, key, node, documented))
        path = ".".join(k for _, k, _, _ in stack)
        if node is None:
            undocumented.append(f"line {i + 1}: {path} is not in values.schema.json")
        elif not documented and "properties" not in node:
            undocumented.append(f"line {i + 1}: {path} has no comment")
    assert not undocumented, "\n".join(undocumented)


def test_chart_metadata_and_notes(rendered_defaults: RenderedChart) -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["appVersion"] == "0.1.0"
    assert f"http://{RELEASE}-polya-verifier.{NAMESPACE}.svc:8080" in rendered_defaults.notes
    assert f"http://{RELEASE}-polya-vllm.{NAMESPACE}.svc:8000/v1" in rendered_defaults.notes


def test_images_default_to_the_app_version(rendered_defaults: RenderedChart) -> None:
    images = {c["image"] for _, pod in rendered_defaults.pod_specs() for c in pod["containers"]}
    assert {"polya/vllm-server:0.1.0", "polya/verifier:0.1.0"} <= images
    chart = render_chart({"image": {"registry": "registry.example.com/ml/", "tag": "sha-1234"}})
    images = {c["image"] for _, pod in chart.pod_specs() for c in pod["containers"]}
    assert "registry.example.com/ml/polya/verifier:sha-1234" in images


# ---------------------------------------------------------------- kind-config.yaml


def test_kind_config_matches_the_chart_pools_and_node_ports(rendered_kind: RenderedChart) -> None:
    from chart_render import REPO

    kind = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    nodes = kind["nodes"]
    assert [n["role"] for n in nodes].count("control-plane") == 1
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    pools = {name: values["scheduling"][f"{name}Pool"] for name in ("cpu", "gpu")}
    workers = [n for n in nodes if n["role"] == "worker"]
    for name, pool in pools.items():
        matching = [n for n in workers if pool["nodeSelector"].items() <= n.get("labels", {}).items()]
        assert matching, f"no kind worker carries the {name} pool's labels {pool['nodeSelector']}"
    gpu_node = next(n for n in workers if n["labels"].get("polya.dev/pool") == "gpu")
    taints = yaml.safe_load(gpu_node["kubeadmConfigPatches"][0])["nodeRegistration"]["taints"]
    tolerated = pools["gpu"]["tolerations"]
    assert all(any(t["key"] == tol["key"] and t["effect"] == tol["effect"] for tol in tolerated) for t in taints)
    mapped = {m["containerPort"] for n in nodes for m in n.get("extraPortMappings", [])}
    node_ports = {p["nodePort"] for s in rendered_kind.of_kind("Service") for p in s.body["spec"]["ports"] if "nodePort" in p}
    assert node_ports == mapped, (sorted(node_ports), sorted(mapped))
    # nothing in the kind values needs a GPU or the GPU pool
    for obj, pod in rendered_kind.pod_specs():
        assert pod.get("nodeSelector") == {"polya.dev/pool": "cpu"}, obj


# ---------------------------------------------------------------- cluster readiness


def _as_kuberay_completes_it(obj: RenderedObject, pod: dict) -> dict:
    """A RayCluster pod with what KubeRay adds: the wait-gcs-ready init container (the Ray container's
    security context) and, on the head with autoscaling, the autoscaler container (autoscalerOptions')."""
    pod = copy.deepcopy(pod)
    ray = pod["containers"][0]
    pod["initContainers"] = [{"name": "wait-gcs-ready", "image": ray["image"], "securityContext": ray["securityContext"]}]
    spec = obj.body["spec"]
    if spec.get("enableInTreeAutoscaling") and ray["name"] == "ray-head":
        pod["containers"].append({"name": "autoscaler", "image": ray["image"], "securityContext": spec["autoscalerOptions"]["securityContext"]})
    return pod


def test_every_pod_passes_pod_security_restricted(rendered: RenderedChart) -> None:
    """A namespace enforcing PodSecurity "restricted" admits every pod of the chart (KubeRay's
    additions included), except the verifier in sandbox mode namespaces, an explicit opt-in."""
    from support.pod_security import restricted_violations

    for obj, pod in rendered.pod_specs():
        if _is_namespaces_verifier(obj, rendered.values):
            assert restricted_violations(pod), obj  # privileged on purpose
            continue
        if obj.kind == "RayCluster":
            pod = _as_kuberay_completes_it(obj, pod)
        assert restricted_violations(pod) == [], obj


def test_pods_run_as_the_uid_of_the_polya_images(rendered_defaults: RenderedChart) -> None:
    from polya.pipeline.jobs import IMAGE_UID

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == values["podSecurityContext"]["fsGroup"] == IMAGE_UID


def test_ray_gpu_workers_can_get_pods() -> None:
    """The gpu worker group starts at 0 replicas: the autoscaler adds workers when Ray asks for GPUs.
    Without autoscaling a 0-replica group would never get a pod, so the chart refuses it."""
    chart = render_chart(VALUE_SETS["gpu"])
    ray = chart.get("RayCluster", f"{RELEASE}-polya-ray")["spec"]
    groups = {g["groupName"]: g for g in ray["workerGroupSpecs"]}
    assert ray["enableInTreeAutoscaling"] is True and groups["gpu"]["maxReplicas"] >= 1
    assert ray["autoscalerOptions"]["securityContext"]["allowPrivilegeEscalation"] is False
    assert ray["headGroupSpec"]["template"]["spec"]["automountServiceAccountToken"] is True
    api = chart.get("NetworkPolicy", f"{RELEASE}-polya-ray-autoscaler")["spec"]
    assert api["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ray-head"
    assert {"protocol": "TCP", "port": 443} in api["egress"][0]["ports"]

    without = copy.deepcopy(VALUE_SETS["gpu"])
    without["ray"]["autoscaling"] = {"enabled": False}
    with pytest.raises(helm.HelmError, match=r"ray.workerGroups\[gpu\]: replicas is 0 and ray.autoscaling.enabled is false"):
        render_chart(without)
    groups_values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["ray"]["workerGroups"]
    for group in groups_values:
        group.update(replicas=1, minReplicas=1)
    without["ray"]["workerGroups"] = groups_values
    chart = render_chart(without)
    ray = chart.get("RayCluster", f"{RELEASE}-polya-ray")["spec"]
    assert ray["enableInTreeAutoscaling"] is False and "autoscalerOptions" not in ray
    assert all(g["replicas"] == 1 for g in ray["workerGroupSpecs"])
    assert ray["headGroupSpec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert not [o for o in chart.of_kind("NetworkPolicy") if o.name.endswith("-autoscaler")]
    groups_values[0].update(replicas=9, maxReplicas=4)
    with pytest.raises(helm.HelmError, match=r"replicas \(9\) must lie between minReplicas \(1\) and maxReplicas \(4\)"):
        render_chart({**without, "ray": {**without["ray"], "workerGroups": groups_values}})


def test_long_release_names_fit_kuberay_and_kubernetes() -> None:
    """Helm allows release names of 53 characters; KubeRay refuses RayCluster names over 53 (it used
    to get 63), Services and label values stop at 63."""
    release = "polya-experiment-with-a-rather-long-release-name-0001"
    assert len(release) == 53
    chart = render_chart(VALUE_SETS["gpu"], release=release)
    (ray,) = chart.of_kind("RayCluster")
    assert len(ray.name) <= 53 and ray.name.endswith("-ray")
    for obj in chart.objects:
        validate_object(obj)
        if obj.kind == "Service":
            assert len(obj.name) <= 63, obj
        assert all(len(v) <= 63 for v in obj.body["metadata"].get("labels", {}).values()), obj
    (runtime,) = chart.of_kind("ClusterTrainingRuntime")
    assert len(runtime.name) <= 63


def test_ray_version_follows_the_trainer_image() -> None:
    """The chart cannot read docker/: its rayVersion is the one copy, kept equal to the image's pin."""
    from polya.pipeline.config import image_ray_version

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["ray"]["rayVersion"] == image_ray_version()


def test_a_polya_trainjob_on_the_charts_runtime_makes_a_valid_restricted_pod(rendered_gpu: RenderedChart) -> None:
    """The chart's ClusterTrainingRuntime merged with a TrainJob as polya submits it (sft.runtime
    naming it): one /dev/shm, the job's volumes, a valid Kubernetes pod, PodSecurity restricted."""
    import kubernetes_validate
    from support.crds import crd_problems
    from support.pod_security import restricted_violations
    from support.trainer import trainjob_pod

    from polya.pipeline.config import PipelineBuildConfig, cluster_target
    from polya.pipeline.jobs import JobSpec, job_manifest
    from polya.pipeline.launch import stage_command

    (runtime,) = rendered_gpu.of_kind("ClusterTrainingRuntime")
    assert runtime.name == f"{NAMESPACE}-{RELEASE}-polya-torch" and runtime.body["metadata"].get("namespace") is None
    jobset = runtime.body["spec"]["template"]["spec"]
    assert jobset["failurePolicy"] == {"maxRestarts": 0} and jobset["ttlSecondsAfterFinished"] == 60
    (node,) = jobset["replicatedJobs"]
    assert node["template"]["spec"]["backoffLimit"] == 0
    target = cluster_target(PipelineBuildConfig.model_validate({"sft": {"nodes": 2, "gpus": 4, "runtime": runtime.name}}), "sft")
    spec = JobSpec(name="polya-sft-polya-abc", namespace=NAMESPACE, image=target.image, gpus=target.gpus, gpu_pool=target.gpu,
                   command=stage_command(["torchrun", "-m", "polya.cli.main", "sft", "--config", "/tmp/c.yaml"], "/tmp/c.yaml"))
    trainjob = job_manifest(target, spec)
    assert trainjob["spec"]["runtimeRef"]["name"] == runtime.name and crd_problems(trainjob) == []
    pod = trainjob_pod(trainjob, node["template"]["spec"]["template"]["spec"])
    (container,) = pod["containers"]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert sorted(mounts) == ["/dev/shm", "/tmp"] and {v["name"] for v in pod["volumes"]} >= {m["name"] for m in container["volumeMounts"]}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4" and pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod}, "1.30", strict=True)
    assert restricted_violations(pod) == []


def test_the_kind_e2e_job_is_a_valid_restricted_job() -> None:
    """The Job scripts/kind-e2e.sh applies (a heredoc) is a valid Kubernetes object whose pod passes
    PodSecurity restricted and runs as the images' uid."""
    from chart_render import REPO
    from support.pod_security import restricted_violations

    from polya.pipeline.jobs import IMAGE_UID

    script = (REPO / "scripts" / "kind-e2e.sh").read_text()
    text = script.split("cat <<YAML", 1)[1].split("\nYAML\n", 1)[0].split("\n", 1)[1]
    text = re.sub(r"\$(\w+)", lambda m: {"TAG": "0.1.0"}.get(m.group(1), "polya"), text.replace("\\$", "$"))
    job = yaml.safe_load(text)
    validate_object(RenderedObject("scripts/kind-e2e.sh", job))
    pod = job["spec"]["template"]["spec"]
    assert restricted_violations(pod) == [] and pod["securityContext"]["runAsUser"] == IMAGE_UID
