"""Questions through the Hugging Face ``datasets`` library: hub ids, or local files it can read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from polya.core.errors import DataError
from polya.data.config import HF_PREFIX, ColumnsConfig
from polya.data.sources.normalize import OnError, QuestionSet, RowNormalizer, stem_of

logger = logging.getLogger(__name__)

# Local file suffix -> datasets builder name.
LOCAL_BUILDERS = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            "reading an hf source needs the Hugging Face datasets library: pip install 'polya[data]' "
            "(or point data.source at a .jsonl/.parquet file, which needs no extra package)"
        ) from None
    return datasets


def load_hf(
    source: str,
    *,
    split: str = "train",
    subset: str | None = None,
    columns: ColumnsConfig | Mapping[str, str | None] | None = None,
    on_error: OnError = "raise",
    cache_dir: str | Path | None = None,
) -> QuestionSet:
    """Load ``hf:<hub_id>`` (or a bare hub id, or a local file) with ``datasets.load_dataset``.

    A hub id calls ``load_dataset(hub_id, name=subset, split=split)``; a local ``.jsonl``,
    ``.json``, ``.parquet`` or ``.csv`` file calls ``load_dataset("json"|"parquet"|"csv",
    data_files={split: path}, split=split)``. When the hub cannot be reached (offline, no such
    dataset or split) this raises :class:`DataError` saying so and suggesting a local file.
    Rows are 0-based in messages; ids without an id column are ``<name>-<split>-<row>``.
    """
    target = source[len(HF_PREFIX) :] if source.startswith(HF_PREFIX) else source
    target = target.strip()
    if not target:
        raise DataError("hf source needs a hub id or a local file after 'hf:', e.g. hf:openai/gsm8k")
    datasets = _import_datasets()
    local = Path(target).expanduser()
    kwargs: dict[str, Any] = {"split": split}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    if local.is_file():
        builder = LOCAL_BUILDERS.get(local.suffix.lower())
        if builder is None:
            raise DataError(
                f"{target}: the datasets library cannot read this suffix; valid suffixes: {', '.join(sorted(LOCAL_BUILDERS))}"
            )
        label, prefix = str(local), stem_of(str(local))
        try:
            dataset = datasets.load_dataset(builder, data_files={split: str(local)}, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the datasets library raises many kinds
            raise DataError(f"{label}: the datasets library could not read it as {builder} ({type(exc).__name__}: {exc})") from None
    else:
        if local.suffix.lower() in LOCAL_BUILDERS or target.startswith((".", "/", "~")):
            raise DataError(f"question file not found: {target}")
        label = f"{HF_PREFIX}{target}" + (f" (subset {subset})" if subset else "") + f" split {split}"
        prefix = f"{target.rstrip('/').split('/')[-1]}-{split}"
        try:
            dataset = datasets.load_dataset(target, name=subset, **kwargs)
        except Exception as exc:  # noqa: BLE001 - offline, missing dataset, bad subset/split
            raise DataError(
                f"could not load Hugging Face dataset {target!r} (subset={subset!r}, split={split!r}): the hub is "
                f"unreachable from here, or it has no such dataset, subset or split ({type(exc).__name__}: {exc}). "
                f"Pass local files instead: data.source=path/to/questions.jsonl (or .parquet)"
            ) from None
    norm = RowNormalizer(label, id_prefix=prefix, columns=columns, on_error=on_error, source_name=source if source.startswith(HF_PREFIX) else label)
    norm.resolve(dataset.column_names)
    for index, row in enumerate(dataset):
        norm.add(row, index, f"row {index}")
    result = norm.result()
    logger.info("read %d questions from %s (%d skipped)", len(result.records), label, result.skipped)
    return result
