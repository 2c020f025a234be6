"""pipelines/rbac.yaml is the chart's job-submitter Role rendered for a KFP runner: one definition of
the rights polya's cluster jobs need, covering every kind it submits."""

from __future__ import annotations

import kubernetes_validate
import yaml
from chart_render import KUBE_VERSION, REPO
from support.scripts import load_script

from polya.pipeline.jobs import JOB_KINDS


def _script():
    return load_script("pipeline_rbac")


def test_pipelines_rbac_yaml_is_rendered_from_the_chart() -> None:
    script = _script()
    assert (REPO / "pipelines" / "rbac.yaml").read_text(encoding="utf-8") == script.rendered(), \
        "pipelines/rbac.yaml is out of step with the chart: run python scripts/pipeline_rbac.py"


def test_it_grants_every_job_kind_to_the_kfp_runner_and_is_valid() -> None:
    role, binding = yaml.safe_load_all((REPO / "pipelines" / "rbac.yaml").read_text(encoding="utf-8"))
    for obj in (role, binding):
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    for kind in JOB_KINDS.values():
        assert {"create", "get", "watch", "delete"} <= granted[(kind.group, kind.plural)], kind.kind
    assert "get" in granted[("", "pods/log")] and "list" in granted[("", "pods")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "polya-job-submitter"


def test_it_renders_for_a_multi_user_install() -> None:
    text = _script().rendered(namespace="team-a", service_account="default-editor")
    _, binding = yaml.safe_load_all(text)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default-editor", "namespace": "team-a"}]
