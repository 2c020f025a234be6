"""Answer judging: math (math-verify), code and multiple choice, one item or a batch.

- :func:`judge_item` judges one :class:`VerifyItem` of any kind in this process (main thread).
- :class:`JudgePool` judges batches in worker processes, each item under a hard deadline.
- :class:`LocalVerifier` (in-process pool) and :class:`VerifierClient` (the HTTP service started
  by ``polya serve-verifier``) share one ``verify`` / ``averify`` API.
"""

from polya.verify.client import LocalVerifier, Verifier, VerifierClient, open_verifier
from polya.verify.config import VerifierConfig
from polya.verify.judge import judge_item
from polya.verify.math_judge import MathVerdict, extract_final_answer, judge_math
from polya.verify.pool import JudgePool, JudgePoolError
from polya.verify.protocol import Verdict, VerifyItem
from polya.verify.stage import verify_jsonl

__all__ = [
    "JudgePool",
    "JudgePoolError",
    "LocalVerifier",
    "MathVerdict",
    "Verdict",
    "Verifier",
    "VerifierClient",
    "VerifierConfig",
    "VerifyItem",
    "extract_final_answer",
    "judge_item",
    "judge_math",
    "open_verifier",
    "verify_jsonl",
]
