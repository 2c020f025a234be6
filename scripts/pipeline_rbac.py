"""Render pipelines/rbac.yaml from the Helm chart's job-submitter Role: the one definition of the
rights polya's cluster jobs need (create, follow and delete TrainJobs, PyTorchJobs and RayJobs; read
their pods and logs), bound to the service account a Kubeflow Pipelines install runs steps as.

    .venv/bin/python scripts/pipeline_rbac.py                  # rewrite pipelines/rbac.yaml (kubeflow / pipeline-runner)
    .venv/bin/python scripts/pipeline_rbac.py --namespace team-a --service-account default-editor --output -   # multi-user KFP

tests/unit/chart/test_pipeline_rbac.py fails when pipelines/rbac.yaml is out of step with the chart.
Needs helm-python-sdk (the dev extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "polya"
OUTPUT = ROOT / "pipelines" / "rbac.yaml"
TEMPLATE = "polya/templates/pipeline/rbac.yaml"
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")

HEADER = """\
# Lets the Kubeflow Pipelines runner's pods (multi-node sft / rl tasks) submit and follow polya's
# cluster jobs: TrainJobs, PyTorchJobs, RayJobs, their pods and logs. Rendered from the Helm chart's
# job-submitter Role (charts/polya/templates/pipeline/rbac.yaml) by scripts/pipeline_rbac.py; do not
# edit. Apply in the namespace the jobs run in; for another KFP install render it for its service
# account (standalone KFP: pipeline-runner in kubeflow; multi-user: default-editor in the profile):
#   kubectl apply -n {namespace} -f pipelines/rbac.yaml
#   .venv/bin/python scripts/pipeline_rbac.py --namespace team-a --service-account default-editor --output - | kubectl apply -f -
"""


def rendered(namespace: str = "kubeflow", service_account: str = "pipeline-runner", release: str = "polya") -> str:
    """The job-submitter Role and RoleBinding of the chart, rendered for ``service_account`` in ``namespace``."""
    import helm_python as helm

    values = {"pipelineRunner": {"serviceAccount": {"create": False, "name": service_account}, "rbac": {"create": True}}}
    raw = helm.Chart.load(str(CHART)).render(values=values, name=release, namespace=namespace, is_install=True)
    docs = []
    for doc in yaml.safe_load_all(raw[TEMPLATE]):
        if doc and doc["metadata"]["name"].endswith("-job-submitter"):
            labels = doc["metadata"].get("labels", {})
            doc["metadata"]["labels"] = {k: v for k, v in labels.items() if k not in HELM_ONLY_LABELS}
            docs.append(doc)
    if [d["kind"] for d in docs] != ["Role", "RoleBinding"]:
        raise SystemExit(f"{TEMPLATE} rendered {[d['kind'] for d in docs]}, not the job-submitter Role and RoleBinding")
    return HEADER.format(namespace=namespace) + yaml.safe_dump_all(docs, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default="kubeflow", help="Namespace of the service account (and of the jobs).")
    parser.add_argument("--service-account", default="pipeline-runner", help="Service account the KFP steps run as.")
    parser.add_argument("--output", default=str(OUTPUT), help="Where to write; - for stdout.")
    args = parser.parse_args(argv)
    text = rendered(args.namespace, args.service_account)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
