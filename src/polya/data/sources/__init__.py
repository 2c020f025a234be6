"""Question sources: local JSONL/Parquet files, Hugging Face datasets and S3 objects.

Every reader returns a :class:`QuestionSet` of normalized
:class:`~polya.data.records.QuestionRecord` s and shares one error policy: a malformed row
raises :class:`~polya.core.errors.DataError` naming the file and the line or row, or, with
``on_error="skip"``, is counted in ``skipped`` with its reason kept in ``errors``.
"""

from polya.data.sources.files import load_jsonl, load_parquet
from polya.data.sources.huggingface import load_hf
from polya.data.sources.normalize import (
    MAX_KEPT_ERRORS,
    QuestionSet,
    RowNormalizer,
    normalize_answer,
)
from polya.data.sources.s3 import load_s3, split_s3_uri

__all__ = [
    "MAX_KEPT_ERRORS",
    "QuestionSet",
    "RowNormalizer",
    "load_hf",
    "load_jsonl",
    "load_parquet",
    "load_s3",
    "normalize_answer",
    "split_s3_uri",
]
