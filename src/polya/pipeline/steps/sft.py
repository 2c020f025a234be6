"""The ``sft`` step: mid-training on one select dataset; the final checkpoint becomes the model artifact."""

from __future__ import annotations

from typing import Any

from polya.core.digest import file_sha256
from polya.core.layout import RunLayout, TrainingLayout, join_uri
from polya.core.outputs import read_training_summary
from polya.core.store import copy_folder_in, open_store
from polya.pipeline.steps.cluster import require_s3, submit_and_wait, training_run
from polya.pipeline.steps.common import (
    given,
    stage_config,
    write_summary,
)
from polya.pipeline.steps.select import dataset_file


def sft_step(
    config_yaml: str, datasets_dir: str, model_dir: str, dataset: str = "polya", model: str | None = None, max_steps: int | None = None,
    learning_rate: float | None = None, checkpoint_root: str | None = None, cluster: str | None = None, api_client: Any | None = None,
) -> dict[str, Any]:
    """Fine-tune on ``dataset`` of a datasets artifact; the final checkpoint becomes ``model_dir``.

    In the pod: the SFT stage trains here. With a ``trainjob`` or ``pytorchjob`` cluster target:
    the dataset goes to MinIO, the job runs ``torchrun -m polya.cli.main sft`` on N GPU nodes, and
    the final checkpoint is downloaded from MinIO.
    """
    from polya.pipeline.jobs import job_name
    from polya.sft.config import SftConfig

    data = dataset_file(datasets_dir, dataset)
    digest, run_dir, target = training_run("sft", checkpoint_root, cluster, config=config_yaml, dataset=dataset, model=model,
                                           max_steps=max_steps, lr=learning_rate, data=file_sha256(data))
    forced = given({"run_dir": run_dir, "dataset": dataset}, model=model or None, max_steps=max_steps, learning_rate=learning_rate)
    if target is None:
        forced["data_file"] = str(data)
        from polya.sft.stage import run

        out = run(stage_config(SftConfig, config_yaml, forced))
        final_uri, summary = out.final_uri, dict(out.summary)
    else:
        require_s3(run_dir, target)
        layout = RunLayout(run_dir)
        open_store(run_dir).upload_file(data, f"{layout.select.dataset_dir(dataset)}/{data.name}")
        cfg = stage_config(SftConfig, config_yaml, forced)
        config_file = "/tmp/polya-sft.yaml"
        submit_and_wait(target, job_name("polya-sft", dataset, digest), "sft", ["torchrun", "-m", "polya.cli.main", "sft", "--config", config_file],
                        cfg, config_file, api_client=api_client)
        final_uri = join_uri(cfg.output_uri, TrainingLayout.FINAL)
        stored = read_training_summary(open_store(cfg.output_uri))
        summary = stored.dump() if stored else {}
    copy_folder_in(final_uri, model_dir)
    summary = {**summary, "dataset": dataset, "final": final_uri, "run_dir": run_dir}
    write_summary(model_dir, summary)
    return summary
