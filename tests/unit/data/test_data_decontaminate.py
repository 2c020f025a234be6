"""Decontamination matching on planted questions: exact copies, whitespace and case changes, near-copies
with other numbers, a paraphrase sharing one 13-gram, and clean questions that share only short or
stock phrases (which must not match)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from polya.data.decontaminate import (
    NUMBER,
    BenchmarkIndex,
    DecontaminationSettings,
    contaminated_ids,
    exact_key,
    find_contamination,
    ngram_tokens,
    tokens,
)

DUCKS = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends "
    "every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in "
    "dollars does she make every day at the farmers' market?"
)
TRAIN_SPEED = "A train travels 270 miles in 3 hours. At the same rate, how many additional hours would it take to travel an additional 180 miles?"
PENS = ("Tom buys 3 pens at $2 each, 4 books at $5 each and 6 bags at $7 each, then pays with a $100 bill and uses 2 "
        "coupons worth $1 each. How much change does he get?")
POLAR = r"Convert the point $(0,3)$ in rectangular coordinates to polar coordinates. Enter your answer in the form $\left(r,\theta\right)$."
BENCHMARKS = {
    "gsm8k": [("gsm8k-0", DUCKS), ("gsm8k-1", PENS)],
    "math500": [("math500-0", POLAR), ("math500-1", "What is $1+1$?")],
}

PLANTED = {
    "exact": DUCKS,
    "spacing": "  JANET'S ducks   lay 16 eggs per day.\nShe eats three for breakfast every morning and bakes muffins for her "
               "friends every day with four.  She sells the remainder at the farmers market daily for $2 per fresh duck egg. "
               "How much in dollars does she make every day at the farmers' market ?",
    "numbers": "Tom buys 5 pens at $3 each, 2 books at $8 each and 4 bags at $6 each, then pays with a $50 bill and uses 3 "
               "coupons worth $2 each.  How much change does he get?",
    "renamed": DUCKS.replace("16", "21").replace("$2", "$3").replace("Janet", "Maria"),
    "paraphrase": "On her farm there are a dozen chickens and one goat. Every morning she sells the remainder at the farmers' market "
                  "daily for $5 per fresh duck egg, then walks home through the woods, feeds the goat, writes in her diary and goes to sleep "
                  "early. How many eggs are left after a week of this routine if she started with ninety eggs in the barn?",
    "latex": r"Convert the point $(0, 3)$ in rectangular coordinates to polar coordinates.  Enter your answer in the form $(r,\theta)$.",
    "short": "what is 1 + 1?",
    "clean": "Tom sells apples for $3 each every day. How much in dollars does he earn in a week?",
    "stock": "A cyclist rides at a speed of 12 miles per hour through the valley for most of the long summer afternoon with two "
             "friends, stopping twice for water and once for lunch at a small cafe near the river. How far does she ride in 4 hours?",
}
STOCK_BENCHMARK = ("gsm8k-2", "A car drives at a speed of 60 miles per hour. How far does it go in 2 hours?")


def matches_of(question_id: str, settings: DecontaminationSettings | None = None, extra: tuple[str, str] | None = None):
    benchmarks = {name: list(items) for name, items in BENCHMARKS.items()}
    if extra:
        benchmarks["gsm8k"].append(extra)
    return find_contamination([(question_id, PLANTED[question_id])], benchmarks, settings or DecontaminationSettings())


def test_normalisation_ignores_case_whitespace_punctuation_and_latex_layout() -> None:
    assert tokens("  Janet's DUCKS\n\tlay 16 eggs!") == ["janet", "s", "ducks", "lay", "16", "eggs"]
    assert tokens(r"$\left(\dfrac{1}{2}\right)$") == tokens(r"(\frac{1}{2})") == ["frac", "1", "2"]
    assert tokens("1,000 apples cost $3.50") == tokens("1000 apples cost $3.50") == ["1000", "apples", "cost", "3.50"]
    assert tokens("(0,3)") == tokens("( 0, 3 )") == ["0", "3"]
    assert ngram_tokens("Sells 16 eggs for $2.50", mask_numbers=True) == ["sells", NUMBER, "eggs", "for", NUMBER]
    assert exact_key(PLANTED["spacing"]) == exact_key(DUCKS) != exact_key(PLANTED["numbers"])


@pytest.mark.parametrize("planted, benchmark_id, exact, sizes", [
    ("exact", "gsm8k-0", True, [8, 13]),
    ("spacing", "gsm8k-0", True, [8, 13]),
    ("numbers", "gsm8k-1", False, [8, 13]),
    ("renamed", "gsm8k-0", False, [8, 13]),
    ("paraphrase", "gsm8k-0", False, [13]),
    ("latex", "math500-0", True, [8, 13]),
    ("short", "math500-1", True, []),
])
def test_planted_contaminated_questions_match(planted, benchmark_id, exact, sizes) -> None:
    found = matches_of(planted)
    assert [m.benchmark_id for m in found] == [benchmark_id]
    match = found[0]
    assert (match.exact, match.sizes) == (exact, sizes)
    if sizes:
        assert match.spans and len(match.spans[0].split()) >= min(sizes)


def test_the_paraphrase_shares_exactly_one_thirteen_word_stretch() -> None:
    match = matches_of("paraphrase")[0]
    assert match.spans == [f"she sells the remainder at the farmers market daily for {NUMBER} per fresh duck egg"]
    assert match.shared == {8: 8, 13: 3} and match.share[8] < 0.25  # the 8-grams alone are too few


def test_a_near_copy_with_other_numbers_needs_number_masking() -> None:
    assert matches_of("numbers", DecontaminationSettings(mask_numbers=False)) == []
    assert matches_of("renamed", DecontaminationSettings(mask_numbers=False))  # long stretches without numbers still agree
    assert not matches_of("numbers", DecontaminationSettings(mask_numbers=False, ngrams=[8, 13]))  # every stretch holds a number


def test_clean_questions_do_not_match() -> None:
    assert matches_of("clean") == []
    assert matches_of("clean", DecontaminationSettings(ngrams=[5])) != []  # it does share "how much in dollars does"
    # A stock phrase of 8 words ("at a speed of <num> miles per hour ...") is no copy: too small a share.
    assert matches_of("stock", extra=STOCK_BENCHMARK) == []
    loose = matches_of("stock", DecontaminationSettings(ngrams=[8, 13]), extra=STOCK_BENCHMARK)  # open-r1's any shared 8-gram
    assert [(m.benchmark_id, m.sizes) for m in loose] == [("gsm8k-2", [8])]


def test_exact_match_can_be_switched_off_and_numbers_only_ngrams_are_ignored() -> None:
    assert matches_of("short", DecontaminationSettings(exact=False)) == []
    numbers = " ".join(str(i) for i in range(40))
    assert find_contamination([("q", "list: " + numbers)], {"b": [("b-0", "sequence " + numbers)]}, DecontaminationSettings(exact=False)) == []


def test_every_planted_question_is_found_in_one_pass_with_an_index() -> None:
    questions = list(PLANTED.items())
    settings = DecontaminationSettings()
    index = BenchmarkIndex(BENCHMARKS, settings)
    found = find_contamination(questions, index)
    assert contaminated_ids(found) == ["exact", "spacing", "numbers", "renamed", "paraphrase", "latex", "short"]
    assert index.counts == {"gsm8k": 2, "math500": 2} and len(index) == 4
    assert index.text("math500", "math500-0") == POLAR


def test_settings_are_checked_and_a_list_means_one_shared_ngram() -> None:
    assert DecontaminationSettings().ngrams == {8: 0.25, 13: 0.0} and DecontaminationSettings().action == "drop"
    assert DecontaminationSettings(ngrams=[13, 8]).ngrams == {8: 0.0, 13: 0.0}
    assert DecontaminationSettings(ngrams={"13": 0.5}).ngrams == {13: 0.5}  # JSON keys are text
    for bad, message in (([], "at least one"), ([2], "outside 3..64"), ({8: 1.5}, "outside 0..1")):
        with pytest.raises(ValidationError, match=message):
            DecontaminationSettings(ngrams=bad)
    with pytest.raises(ValidationError, match="'drop' or 'flag'"):
        DecontaminationSettings(action="remove")
