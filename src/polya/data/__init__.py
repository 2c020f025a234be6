"""Questions: the normalized record, answer extraction, sources, the synthetic generator and the loader.

>>> from polya.data import DataConfig, load_questions
>>> qs = load_questions(DataConfig(synthetic={"count": 3}))
>>> len(qs.records), qs.records[0].id
(3, 'synthetic-0-0')
"""

from polya.data.answers import extract_boxed, extract_gsm8k_answer, split_gsm8k_solution
from polya.data.config import ColumnsConfig, DataConfig, SyntheticConfig, resolve_format
from polya.data.loader import (
    load_questions,
    read_questions,
    read_source,
    write_questions,
)
from polya.data.records import QuestionRecord
from polya.data.sources import QuestionSet, load_hf, load_jsonl, load_parquet, load_s3
from polya.data.synthetic import generate_word_problems, template_names

__all__ = [
    "ColumnsConfig",
    "DataConfig",
    "QuestionRecord",
    "QuestionSet",
    "SyntheticConfig",
    "extract_boxed",
    "extract_gsm8k_answer",
    "generate_word_problems",
    "load_hf",
    "load_jsonl",
    "load_parquet",
    "load_questions",
    "load_s3",
    "read_questions",
    "read_source",
    "resolve_format",
    "split_gsm8k_solution",
    "template_names",
    "write_questions",
]
