"""The heuristic catalog: the packaged default, its exemplars' answers, and validation errors."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from polya.core.errors import ConfigError
from polya.heuristics import Exemplar, Heuristic, HeuristicCatalog
from polya.heuristics.catalog import exemplar_answer

REQUIRED_IDS = {
    "analogy",
    "working_backward",
    "decomposition",
    "auxiliary_element",
    "specialization",
    "draw_figure_or_table",
    "look_for_pattern",
    "step_by_step_justification",
    "bright_idea",
}

# (heuristic id, exemplar index) -> (the answer written in \boxed{}, the same answer recomputed
# here from the problem statement, independently of the solution text).
EXPECTED_ANSWERS: dict[tuple[str, int], tuple[str, float]] = {
    # perimeter 64, length = 3 x width: width = 64 / 2 / 4, area = width x 3 width
    ("analogy", 0): ("192", (64 / 2 / 4) * (3 * 64 / 2 / 4)),
    # games between 10 players, every pair once
    ("analogy", 1): ("45", math.comb(10, 2)),
    # x / 2 - 6 = 14
    ("working_backward", 0): ("40", (14 + 6) * 2),
    # (3x - 7) / 2 = 10
    ("working_backward", 1): ("9", (10 * 2 + 7) / 3),
    ("decomposition", 0): ("120", 12 * 24 * 0.25 + 8 * 15 * 0.40),
    ("decomposition", 1): ("67.5", (150 + 120) / (150 / 75 + 120 / 60)),
    # 8a + 5(30 - a) = 195
    ("auxiliary_element", 0): ("15", next(a for a in range(31) if 8 * a + 5 * (30 - a) == 195)),
    # square with diagonal 10: side = 10 / sqrt(2)
    ("auxiliary_element", 1): ("50", (10 / math.sqrt(2)) ** 2),
    # k x k squares in a 4 x 4 grid: (5 - k)^2 positions
    ("specialization", 0): ("30", sum((4 - k + 1) ** 2 for k in range(1, 5))),
    ("specialization", 1): ("12", 2 * 6),
    # 3m + 2c = 13, m >= 1, c >= 1
    ("draw_figure_or_table", 0): ("2", sum(1 for m in range(1, 5) for c in range(1, 7) if 3 * m + 2 * c == 13)),
    ("draw_figure_or_table", 1): ("13", len(range(0, 61, 5))),
    ("look_for_pattern", 0): ("9", pow(7, 2026, 10)),
    # one table seats 4, each shared edge removes 2 seats
    ("look_for_pattern", 1): ("32", 4 * 15 - 2 * 14),
    ("step_by_step_justification", 0): ("33", 40 * 0.75 * 1.10),
    # 3(x - 4) + 5 = 2x + 7
    ("step_by_step_justification", 1): ("14", next(x for x in range(-100, 100) if 3 * (x - 4) + 5 == 2 * x + 7)),
    ("bright_idea", 0): ("930", sum(range(2, 61, 2))),
    # simulate the rounds of a 64-player knockout
    ("bright_idea", 1): ("63", 32 + 16 + 8 + 4 + 2 + 1),
    # T = 2S + 4, T + S = 31
    ("restate_problem", 0): ("22", next(2 * s + 4 for s in range(31) if (2 * s + 4) + s == 31)),
    ("restate_problem", 1): ("90", 240 * (3 / 4 - 3 / 8)),
    # 2(w + w + 5) = 38
    ("check_and_look_back", 0): ("84", next(w * (w + 5) for w in range(20) if 2 * (2 * w + 5) == 38)),
    ("check_and_look_back", 1): ("31.5", 350 / 100 * 6 * 1.50),
}


@pytest.fixture(scope="module")
def catalog() -> HeuristicCatalog:
    return HeuristicCatalog.load()


def _valid_catalog_data() -> dict[str, Any]:
    return {
        "version": 1,
        "system_prompt": "Solve the problem.",
        "answer_format": "Put the final answer in \\boxed{}.",
        "heuristics": [
            {
                "id": "first_one",
                "name": "First",
                "description": "The first heuristic.",
                "instruction": "Use the first heuristic.",
                "exemplars": [{"question": "What is 1 + 1?", "solution": "1 + 1 = 2. The final answer is \\boxed{2}."}],
            },
            {
                "id": "second_one",
                "name": "Second",
                "description": "The second heuristic.",
                "instruction": "Use the second heuristic.",
                "tags": ["x"],
                "exemplars": [{"question": "What is 2 + 2?", "solution": "2 + 2 = 4. The final answer is \\boxed{4}."}],
            },
        ],
    }


def _write(tmp_path: Path, data: Any, name: str = "my_catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _load_error(tmp_path: Path, data: Any) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        HeuristicCatalog.load(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


# ----------------------------------------------------------------------------------------------
# The packaged default


def test_default_catalog_loads_with_required_heuristics(catalog: HeuristicCatalog) -> None:
    assert catalog.version == 1
    assert len(catalog) >= 9
    assert REQUIRED_IDS <= set(catalog.ids)
    assert len(set(catalog.ids)) == len(catalog.ids)
    assert "\\boxed" in catalog.system_prompt
    assert "\\boxed" in catalog.answer_format
    assert "catalog.yaml" in catalog.source


def test_default_heuristics_have_all_fields(catalog: HeuristicCatalog) -> None:
    for h in catalog:
        assert isinstance(h, Heuristic)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", h.id)
        for text in (h.name, h.description, h.instruction):
            assert text.strip()
        assert len(h.exemplars) >= 2, h.id


def test_default_exemplars_are_short_original_and_end_with_boxed_sentence(catalog: HeuristicCatalog) -> None:
    questions = [e.question for h in catalog for e in h.exemplars]
    assert len(questions) == len(set(questions)), "an exemplar question is used twice"
    for h in catalog:
        for e in h.exemplars:
            words = len(e.solution.split())
            assert 40 <= words <= 180, f"{h.id}: exemplar solution has {words} words"
            assert re.search(r"The final answer is \\boxed\{[^{}]+\}\.$", e.solution.strip()), h.id


def test_every_exemplar_has_a_boxed_answer(catalog: HeuristicCatalog) -> None:
    for h in catalog:
        for e in h.exemplars:
            assert exemplar_answer(e)
            assert e.answer == exemplar_answer(e)


def test_expected_answer_table_covers_the_default_catalog(catalog: HeuristicCatalog) -> None:
    keys = {(h.id, i) for h in catalog for i in range(len(h.exemplars))}
    assert keys == set(EXPECTED_ANSWERS)


@pytest.mark.parametrize("key", sorted(EXPECTED_ANSWERS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_exemplar_answer_is_correct(catalog: HeuristicCatalog, key: tuple[str, int]) -> None:
    written, recomputed = EXPECTED_ANSWERS[key]
    assert math.isclose(float(written), recomputed, rel_tol=1e-9), f"table entry {key} is inconsistent"
    heuristic_id, index = key
    exemplar = catalog.get(heuristic_id).exemplars[index]
    assert exemplar_answer(exemplar) == written


# ----------------------------------------------------------------------------------------------
# Boxed-answer extraction


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("so \\boxed{5}.", "5"),
        ("first \\boxed{1}, then \\boxed{2}.", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{ 7 }", "7"),
        ("good \\boxed{3} then broken \\boxed{4", "3"),
    ],
)
def test_exemplar_answer_extraction(solution: str, answer: str) -> None:
    assert exemplar_answer(Exemplar(question="q", solution=solution)) == answer


# ----------------------------------------------------------------------------------------------
# Loading user files and validation errors


def test_user_catalog_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid_catalog_data())
    catalog = HeuristicCatalog.load(path)
    assert catalog.ids == ["first_one", "second_one"]
    assert catalog.get("second_one").tags == ["x"]
    assert catalog.source == str(path)
    assert HeuristicCatalog.load(str(path)).ids == catalog.ids


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        HeuristicCatalog.load(missing)


def test_duplicate_id_names_file_and_heuristic(tmp_path: Path) -> None:
    data = _valid_catalog_data()
    data["heuristics"][1]["id"] = "first_one"
    message = _load_error(tmp_path, data)
    assert "heuristics[1]" in message and "first_one" in message and "duplicate" in message
    assert "heuristics[0]" in message


def test_unknown_heuristic_key_names_file_heuristic_and_key(tmp_path: Path) -> None:
    data = _valid_catalog_data()
    data["heuristics"][1]["instructions"] = "typo"
    message = _load_error(tmp_path, data)
    assert "heuristics[1] (id 'second_one').instructions" in message
    assert "unknown key" in message and "instruction" in message


def test_unknown_top_level_and_exemplar_keys(tmp_path: Path) -> None:
    data = _valid_catalog_data()
    data["colour"] = "blue"
    data["heuristics"][0]["exemplars"][0]["answer"] = "2"
    message = _load_error(tmp_path, data)
    assert "colour: unknown key" in message
    assert "heuristics[0] (id 'first_one').exemplars[0].answer: unknown key" in message


@pytest.mark.parametrize("index, solution, where", [
    (1, "2 + 2 = 4.", "heuristics[1] (id 'second_one').exemplars[0].solution"),  # no \\boxed at all
    (0, "The final answer is \\boxed{}.", "heuristics[0] (id 'first_one').exemplars[0].solution"),  # an empty one
])
def test_an_exemplar_without_a_boxed_answer_names_file_heuristic_and_field(tmp_path: Path, index: int, solution: str, where: str) -> None:
    data = _valid_catalog_data()
    data["heuristics"][index]["exemplars"][0]["solution"] = solution
    message = _load_error(tmp_path, data)
    assert where in message and "\\boxed" in message


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "version: 1\nheuristics: [\n  - id: x\n")
    assert "not valid YAML" in message


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_rejected(tmp_path: Path, text: str) -> None:
    message = _load_error(tmp_path, text)
    assert "empty" in message


def test_catalog_without_heuristics_is_rejected(tmp_path: Path) -> None:
    data = _valid_catalog_data()
    data["heuristics"] = []
    message = _load_error(tmp_path, data)
    assert "heuristics" in message and "at least one heuristic" in message


def test_non_mapping_file_is_rejected(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "- just\n- a list\n")
    assert "mapping" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("id", "Working-Backward", "must match"),
        ("instruction", "   ", "instruction must not be empty"),
        ("exemplars", [], "at least one exemplar"),
    ],
)
def test_invalid_heuristic_fields_name_heuristic_and_field(
    tmp_path: Path, field: str, value: Any, expected: str
) -> None:
    data = _valid_catalog_data()
    data["heuristics"][0][field] = value
    message = _load_error(tmp_path, data)
    assert f"heuristics[0] (id '{data['heuristics'][0]['id']}').{field}" in message
    assert expected in message


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    data = _valid_catalog_data()
    del data["heuristics"][1]["instruction"]
    message = _load_error(tmp_path, data)
    assert "heuristics[1] (id 'second_one').instruction: required field is missing" in message


# The plain condition's exemplars: (index) -> (the answer in \boxed{}, recomputed from the problem).
PLAIN_ANSWERS: dict[int, tuple[str, float]] = {
    0: ("279", 48 * 3 + 90 * 1.50),
    1: ("40", 360 / (12 - 3)),  # fill 12 per minute, leak 3 per minute
}


def test_default_plain_condition_has_its_own_checked_exemplars(catalog: HeuristicCatalog) -> None:
    assert len(catalog.plain.exemplars) == len(PLAIN_ANSWERS)
    heuristic_questions = {e.question for h in catalog for e in h.exemplars}
    for index, exemplar in enumerate(catalog.plain.exemplars):
        written, recomputed = PLAIN_ANSWERS[index]
        assert math.isclose(float(written), recomputed) and exemplar_answer(exemplar) == written
        assert exemplar.question not in heuristic_questions
        assert 40 <= len(exemplar.solution.split()) <= 180
        assert exemplar.solution.rstrip().endswith(f"The final answer is \\boxed{{{written}}}.")
    assert "{answer}" in catalog.plain.rationalization_hint
    assert catalog.plain.hint(" 42 ") == catalog.plain.rationalization_hint.strip().replace("{answer}", "42")


def test_plain_is_optional_and_reserved(tmp_path: Path) -> None:
    minimal = HeuristicCatalog.from_dict(_valid_catalog_data())
    assert minimal.plain.exemplars == [] and "{answer}" in minimal.plain.rationalization_hint
    data = _valid_catalog_data()
    for reserved in ("plain", "all", "none"):
        data["heuristics"][1]["id"] = reserved
        assert f"id '{reserved}' is reserved (plain: the plain condition" in _load_error(tmp_path, data)


def test_none_selects_no_heuristic() -> None:
    catalog = HeuristicCatalog.from_dict(_valid_catalog_data())
    assert catalog.select(["none"]) == []
    assert len(catalog.select(["all"])) == len(catalog.heuristics) == len(catalog.select([]))


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        ({"rationalization_hint": "The answer is known."}, "plain.rationalization_hint: rationalization_hint must contain '{answer}'"),
        ({"exemplars": [{"question": "q", "solution": "no answer"}]}, "plain.exemplars[0].solution"),
        ({"exemplar": []}, "plain.exemplar: unknown key (did you mean 'exemplars'?)"),
    ],
)
def test_invalid_plain_section_is_named(tmp_path: Path, plain: dict[str, Any], expected: str) -> None:
    data = _valid_catalog_data()
    data["plain"] = plain
    assert expected in _load_error(tmp_path, data)


def test_unsupported_version_is_rejected(tmp_path: Path) -> None:
    data = _valid_catalog_data()
    data["version"] = 2
    assert "version" in _load_error(tmp_path, data)


# ----------------------------------------------------------------------------------------------
# get / select / container behaviour


def test_get_returns_heuristic_and_lists_valid_ids_when_unknown(catalog: HeuristicCatalog) -> None:
    assert catalog.get("analogy").id == "analogy"
    with pytest.raises(ConfigError) as info:
        catalog.get("wishful_thinking")
    message = str(info.value)
    assert "wishful_thinking" in message
    for heuristic_id in catalog.ids:
        assert heuristic_id in message


@pytest.mark.parametrize("ids", [None, [], ["all"], ("all",)])
def test_select_all(catalog: HeuristicCatalog, ids: Any) -> None:
    assert [h.id for h in catalog.select(ids)] == catalog.ids


def test_select_keeps_catalog_order_and_drops_duplicates(catalog: HeuristicCatalog) -> None:
    chosen = catalog.select(["bright_idea", "analogy", "bright_idea"])
    assert [h.id for h in chosen] == ["analogy", "bright_idea"]


def test_select_unknown_lists_unknown_and_valid_ids(catalog: HeuristicCatalog) -> None:
    with pytest.raises(ConfigError) as info:
        catalog.select(["analogy", "guessing", "all"])
    message = str(info.value)
    assert "'guessing'" in message and "'all'" in message and "working_backward" in message


def test_container_protocol(catalog: HeuristicCatalog) -> None:
    assert len(catalog) == len(catalog.ids)
    assert [h.id for h in catalog] == catalog.ids
    assert "analogy" in catalog and "nope" not in catalog


def test_models_are_immutable(catalog: HeuristicCatalog) -> None:
    with pytest.raises(Exception):
        catalog.get("analogy").instruction = "changed"  # type: ignore[misc]
