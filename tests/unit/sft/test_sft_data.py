"""The SFT dataset: reading chat rows (JSONL, Parquet), rejecting bad ones, the prompt/completion form,
and the preflight checks that run before any model weights load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sft_samples import MARKED_TEMPLATE

from polya.core.errors import ConfigError, DataError
from polya.sft.config import SftConfig
from polya.sft.data import (
    build_train_dataset,
    load_chat_dataset,
    resolve_loss_mask,
    supports_generation_markers,
    to_prompt_completion,
)
from polya.sft.stage import preflight


def test_reads_select_rows_from_jsonl(chat_jsonl: Path) -> None:
    data = load_chat_dataset(str(chat_jsonl))
    assert len(data) == 16
    assert data.messages[0][0]["role"] == "user" and data.messages[0][-1]["role"] == "assistant"
    assert len(data.sha256) == 64


def test_reads_parquet_as_select_writes_it(tmp_path: Path, sft_chat_rows: Any, write_chat_dataset: Any) -> None:
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([("messages", pa.list_(message)), ("question_id", pa.string()), ("score", pa.float64())])
    rows = [{"messages": r["messages"], "question_id": r["question_id"], "score": r["score"]} for r in sft_chat_rows(4)]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    data = load_chat_dataset(str(path))
    assert [m[-1]["content"] for m in data.messages] == [r["messages"][-1]["content"] for r in rows]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"prompt": "x"}, "non-empty 'messages' list"),
        ({"messages": []}, "non-empty 'messages' list"),
        ({"messages": [{"role": "user", "content": "q"}]}, "last message must be a non-empty assistant turn"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}, "non-empty assistant turn"),
        ({"messages": [{"role": "assistant", "content": "a"}]}, "needs a user turn"),
        ({"messages": [{"role": "human", "content": "q"}, {"role": "assistant", "content": "a"}]}, "valid roles: system, user, assistant"),
        ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}, "content must be text"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_bad_rows_are_named_with_their_line(tmp_path: Path, row: object, problem: str, sft_chat_rows: Any, write_chat_dataset: Any) -> None:
    path = write_chat_dataset(tmp_path / "bad.jsonl", rows=sft_chat_rows(2) + [row])
    with pytest.raises(DataError) as info:
        load_chat_dataset(str(path))
    message = str(info.value)
    assert str(path) in message and "line 3" in message and problem in message


def test_invalid_json_and_empty_and_missing_files(tmp_path: Path, sft_chat_rows: Any, write_chat_dataset: Any) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(sft_chat_rows(1)[0]) + "\n{not json\n")
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_chat_dataset(str(broken))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="holds no rows"):
        load_chat_dataset(str(empty))
    with pytest.raises(DataError, match="dataset not found"):
        load_chat_dataset(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="data_file_format"):
        load_chat_dataset(str(tmp_path / "data.csv"))


def test_prompt_completion_form_keeps_every_turn_before_the_answer() -> None:
    messages = [
        {"role": "system", "content": "Solve."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "\\boxed{2}"},
    ]
    assert to_prompt_completion(messages) == {"prompt": messages[:2], "completion": messages[2:]}


def test_loss_mask_choice_follows_the_chat_template(embedded_checkpoint: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint)
    # SmolLM2's template has no {% generation %} markers and TRL ships no training version of it.
    assert not supports_generation_markers(tokenizer)
    assert resolve_loss_mask("auto", tokenizer) == "prompt_completion"
    with pytest.raises(ConfigError, match="loss_mask: generation_markers needs"):
        resolve_loss_mask("generation_markers", tokenizer)
    tokenizer.chat_template = MARKED_TEMPLATE
    assert supports_generation_markers(tokenizer)
    assert resolve_loss_mask("auto", tokenizer) == "generation_markers"
    assert resolve_loss_mask("prompt_completion", tokenizer) == "prompt_completion"
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        resolve_loss_mask("auto", tokenizer)




def test_train_dataset_shapes(chat_jsonl: Path) -> None:
    data = load_chat_dataset(str(chat_jsonl))
    pc = build_train_dataset(data, "prompt_completion")
    assert set(pc.column_names) == {"prompt", "completion"} and len(pc) == 16
    conv = build_train_dataset(data, "generation_markers")
    assert conv.column_names == ["messages"]


# ----- preflight: user mistakes fail before any model weights load -----------------------------------------


@pytest.fixture()
def no_weight_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any model weight load fail loudly: preflight must not need one."""
    import transformers

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("preflight loaded model weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def test_preflight_resolves_everything_without_loading_weights(chat_jsonl: Path, no_weight_loading: None) -> None:
    run_dir = chat_jsonl.parents[2]
    plan = preflight(SftConfig(run_dir=str(run_dir)))
    assert plan.dataset.uri == str(chat_jsonl) and len(plan.dataset) == 16
    assert plan.loss_mask == "prompt_completion"
    assert plan.work_dir == run_dir / "sft" / "polya" and not plan.remote
    assert plan.deepspeed_path is None and plan.bf16 is False and plan.cuda is False


def test_preflight_finds_a_parquet_default(tmp_path: Path, no_weight_loading: None, sft_chat_rows: Any) -> None:
    path = tmp_path / "run" / "select" / "star" / "train.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"messages": r["messages"]} for r in sft_chat_rows(3)]), path)
    plan = preflight(SftConfig(run_dir=str(tmp_path / "run"), arm="star"))
    assert plan.dataset.uri == str(path) and len(plan.dataset) == 3


def test_preflight_names_the_missing_select_output(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        preflight(SftConfig(run_dir=str(tmp_path / "run"), arm="breadth"))
    assert "select/breadth/train.jsonl" in str(info.value) and "polya select" in str(info.value)


def test_preflight_rejects_deepspeed_without_gpus(chat_jsonl: Path) -> None:
    with pytest.raises(ConfigError, match="deepspeed .*zero2.* CUDA GPUs"):
        preflight(SftConfig(run_dir=str(chat_jsonl.parents[2]), deepspeed="zero2"))
    with pytest.raises(ConfigError, match="does not exist"):
        preflight(SftConfig(run_dir=str(chat_jsonl.parents[2]), deepspeed=str(chat_jsonl.parent / "ds.json")))


def test_preflight_rejects_lora_without_peft(chat_jsonl: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match="lora.enabled needs the peft package"):
        preflight(SftConfig(run_dir=str(chat_jsonl.parents[2]), lora={"enabled": True}))


def test_preflight_rejects_a_model_without_checkpoint(chat_jsonl: Path, tmp_path: Path) -> None:
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        preflight(SftConfig(run_dir=str(chat_jsonl.parents[2]), model=str(tmp_path / "empty-model")))
