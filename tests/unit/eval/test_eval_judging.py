"""Eval answers are judged by the verifier library (LocalVerifier: math-verify, the code sandbox, the choice judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from polya.eval.benchmarks import load_benchmark
from polya.eval.stage import verify_item
from polya.verify.client import LocalVerifier

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eval"


@pytest.fixture(scope="module")
def verifier() -> Iterator[LocalVerifier]:
    with LocalVerifier(workers=1, code_timeout_s=10.0) as v:
        yield v


def test_math_choice_and_code_answers(verifier: LocalVerifier) -> None:
    gsm = load_benchmark("gsm8k", path=str(FIXTURES / "gsm8k.jsonl"))[2]  # reference 1325
    olympiad = load_benchmark("olympiadbench", path=str(FIXTURES / "olympiadbench.jsonl"))[0]  # \frac{1}{4}
    murder = load_benchmark("musr_murder_mysteries", path=str(FIXTURES / "musr_murder_mysteries.jsonl"))[0]  # Mara
    evens, words = load_benchmark("humaneval", path=str(FIXTURES / "humaneval.jsonl"))
    cases = [
        (gsm, "1,250 + 75 = 1,325 dollars, so the answer is \\boxed{1325}.", True),
        (gsm, "The total is \\boxed{1300}.", False),
        (olympiad, "By AM-GM the maximum is \\boxed{0.25}.", True),
        (murder, "Mara had the keys and a motive.\nAnswer: (A)", True),
        (murder, "Felix left early, but the answer is Felix.", False),
        (evens, "```python\nfrom typing import List\n\ndef sum_of_evens(numbers: List[int]) -> int:\n"
                "    return sum(n for n in numbers if n % 2 == 0)\n```", True),
        (evens, "```python\ndef sum_of_evens(numbers):\n    return sum(numbers)\n```", False),
        (words, "    return ' '.join(text.split(' ')[::-1])\n", True),  # completion-style body
        (words, "```python\ndef reverse_words(text):\n    return text[::-1]\n```", False),
    ]
    verdicts = verifier.verify([verify_item(item, text) for item, text, _ok in cases])
    for (item, text, ok), verdict in zip(cases, verdicts):
        assert verdict.correct is ok, (item.id, text, verdict)
    assert [v.kind for v in verdicts[:5]] == ["math", "math", "math", "choice", "choice"]
    assert verdicts[5].kind == "code" and verdicts[5].status == "pass" and verdicts[6].status == "fail"
