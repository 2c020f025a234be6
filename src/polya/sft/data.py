"""The SFT dataset: chat rows read from JSONL or Parquet (local or ``s3://``), checked, converted for TRL.

A row is ``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}], ...}``
(what ``polya select`` writes); other columns are ignored. Roles are ``system``, ``user`` and
``assistant``; the last message must be a non-empty assistant turn.

The loss covers the assistant's tokens only, in one of two ways (``loss_mask``):

* ``generation_markers``: rows stay conversational and TRL's ``assistant_only_loss`` masks every
  token outside ``{% generation %}`` blocks of the chat template (the tokenizer's own template,
  or the training version TRL ships for known templates). Every assistant turn is trained.
* ``prompt_completion``: each row becomes ``{"prompt": <turns before the last assistant turn>,
  "completion": [<last assistant turn>]}``; TRL renders the prompt with the generation prompt
  and trains only on what follows it, i.e. the assistant text and its end-of-turn token. This is
  what templates without generation markers (SmolLM2's) get.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Literal

from polya.core.errors import ConfigError, DataError, PolyaError

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
LossMask = Literal["generation_markers", "prompt_completion"]
MAX_REPORTED_PROBLEMS = 5


@dataclass
class ChatDataset:
    """Validated chat rows and where they came from."""

    uri: str
    messages: list[list[dict[str, str]]]
    sha256: str

    def __len__(self) -> int:
        return len(self.messages)


def file_format(uri: str, fmt: str) -> Literal["jsonl", "parquet"]:
    """The format of ``uri``: ``fmt`` when given, else from the extension."""
    if fmt in ("jsonl", "parquet"):
        return fmt  # type: ignore[return-value]
    if uri.endswith((".jsonl", ".json")):
        return "jsonl"
    if uri.endswith(".parquet"):
        return "parquet"
    raise ConfigError(f"dataset {uri!r}: cannot tell the format from the extension; set data_file_format to jsonl or parquet")


def exists(uri: str) -> bool:
    """True when the dataset file exists (locally or in S3)."""
    if uri.startswith("s3://"):
        store, name = _s3_parent(uri)
        return store.exists(name)
    return Path(uri).expanduser().is_file()


def _s3_parent(uri: str) -> tuple[Any, str]:
    from polya.core.store import open_store

    rest = uri[len("s3://") :].strip("/")
    if "/" not in rest:
        raise ConfigError(f"dataset {uri!r} must name a bucket and a file, e.g. s3://bucket/select/polya/train.jsonl")
    parent, name = rest.rsplit("/", 1)
    return open_store(f"s3://{parent}"), name


def _local_copy(uri: str, tmp: Path) -> Path:
    if not uri.startswith("s3://"):
        path = Path(uri).expanduser()
        if not path.is_file():
            raise DataError(f"dataset not found: {path}")
        return path
    store, name = _s3_parent(uri)
    local = tmp / PurePosixPath(name).name
    try:
        store.download_file(name, local)
    except PolyaError as exc:
        raise DataError(f"cannot download dataset {uri}: {exc}") from None
    return local


def _read_rows(path: Path, fmt: str, uri: str) -> Iterable[tuple[str, Any]]:
    if fmt == "jsonl":
        from polya.core.jsonl import jsonl_lines

        with path.open("rb") as handle:
            for line_no, row in jsonl_lines(handle, require_object=False):
                yield f"line {line_no}", row
        return
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise DataError(f"dataset {uri} is not a readable Parquet file: {exc}") from None
    if "messages" not in table.column_names:
        raise DataError(f"dataset {uri} has no 'messages' column (columns: {', '.join(table.column_names)})")
    for index, messages in enumerate(table.column("messages").to_pylist()):
        yield f"row {index}", {"messages": messages}


def check_messages(row: Any) -> list[dict[str, str]]:
    """The row's messages as ``[{role, content}]``; raises ``ValueError`` saying what is wrong."""
    if not isinstance(row, dict):
        raise ValueError(f"must be a JSON object with a 'messages' list, got {type(row).__name__}")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("needs a non-empty 'messages' list of {role, content} objects")
    out: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role is {role!r}; valid roles: {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}].content must be text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant" or not out[-1]["content"].strip():
        raise ValueError("the last message must be a non-empty assistant turn (the solution to learn)")
    if not any(m["role"] == "user" for m in out[:-1]):
        raise ValueError("needs a user turn before the assistant turn")
    return out


def load_chat_dataset(uri: str, fmt: str = "auto") -> ChatDataset:
    """Read and check every row of ``uri``; any malformed row raises :class:`DataError` naming it."""
    from polya.core.digest import file_sha256

    kind = file_format(uri, fmt)
    with tempfile.TemporaryDirectory(prefix="polya-sft-data-") as tmp:
        path = _local_copy(uri, Path(tmp))
        digest = file_sha256(path)
        messages: list[list[dict[str, str]]] = []
        problems: list[str] = []
        try:
            for where, row in _read_rows(path, kind, uri):
                try:
                    if isinstance(row, Exception):
                        raise ValueError(str(row))
                    messages.append(check_messages(row))
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
        except UnicodeDecodeError as exc:
            raise DataError(f"dataset {uri} is not UTF-8 text ({exc.reason}); is data_file_format right?") from None
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED_PROBLEMS])
        more = f" (and {len(problems) - MAX_REPORTED_PROBLEMS} more)" if len(problems) > MAX_REPORTED_PROBLEMS else ""
        raise DataError(
            f"dataset {uri}: {len(problems)} of {len(problems) + len(messages)} rows are not chat rows "
            f"{{messages: [{{role, content}}, ...]}} ending in an assistant turn: {shown}{more}"
        )
    if not messages:
        raise DataError(f"dataset {uri} holds no rows; run `polya select` first or point data_file at a file of chat rows")
    return ChatDataset(uri=uri, messages=messages, sha256=digest)


def to_prompt_completion(messages: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Split a conversation into TRL's conversational prompt/completion form (the last turn is the completion)."""
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def supports_generation_markers(tokenizer: Any) -> bool:
    """True when TRL can mask assistant tokens with this tokenizer's chat template (as is, or patched)."""
    from trl.chat_template_utils import get_training_chat_template

    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return False
    try:
        get_training_chat_template(tokenizer)  # None: already fine; a template: TRL patches it
    except ValueError:
        return False
    return True


def resolve_loss_mask(setting: str, tokenizer: Any) -> LossMask:
    """The loss mask to use for ``setting`` (auto / generation_markers / prompt_completion) with this tokenizer."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "model: the tokenizer has no chat template, so chat rows cannot be rendered; use an instruct model "
            "(its tokenizer_config.json must define chat_template)"
        )
    if setting == "prompt_completion":
        return "prompt_completion"
    supported = supports_generation_markers(tokenizer)
    if setting == "generation_markers":
        if not supported:
            raise ConfigError(
                "loss_mask: generation_markers needs a chat template with {% generation %} markers, and TRL has no "
                "training version of this model's template; use loss_mask auto or prompt_completion"
            )
        return "generation_markers"
    return "generation_markers" if supported else "prompt_completion"


def build_train_dataset(data: ChatDataset, loss_mask: LossMask) -> Any:
    """A ``datasets.Dataset`` in the form TRL expects for ``loss_mask``."""
    from datasets import Dataset

    if loss_mask == "prompt_completion":
        return Dataset.from_list([to_prompt_completion(m) for m in data.messages])
    return Dataset.from_list([{"messages": m} for m in data.messages])


def longest_example_tokens(dataset: ChatDataset, tokenizer: Any, candidates: int = 64) -> int:
    """Tokens of the dataset's longest example as the chat template renders it (what an unpacked row holds at most).

    The ``candidates`` examples with the most characters are tokenized (all of them for a small
    dataset): the longest in tokens is, in practice, among the longest in characters, and the whole
    set is not tokenized twice (training tokenizes it again).
    """
    ranked = sorted(dataset.messages, key=lambda messages: sum(len(m["content"]) for m in messages), reverse=True)
    longest = 0
    for messages in ranked[:candidates]:
        ids = tokenizer.apply_chat_template(messages, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers may return a BatchEncoding
            ids = ids["input_ids"]
        longest = max(longest, len(ids))
    return longest
