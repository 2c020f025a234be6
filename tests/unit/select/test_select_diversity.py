"""Vendi score properties and the TF-IDF n-gram similarity; near-duplicate detection."""

from __future__ import annotations

import numpy as np
import pytest

from polya.metrics.diversity import TfidfSimilarity, summarize_diversity, vendi_score
from polya.metrics.similarity import jaccard, normalize_text, word_ngrams
from polya.select.dedup import NearDuplicateFilter


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_identical_items_score_one(n: int) -> None:
    assert vendi_score(np.ones((n, n))) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 64])
def test_k_orthogonal_items_score_k(k: int) -> None:
    assert vendi_score(np.eye(k)) == pytest.approx(k)


def test_vendi_is_between_one_and_n_and_grows_with_dissimilarity() -> None:
    scores = []
    for s in (0.9, 0.5, 0.1):
        k = np.full((4, 4), s)
        np.fill_diagonal(k, 1.0)
        v = vendi_score(k)
        assert 1.0 <= v <= 4.0
        scores.append(v)
    assert scores == sorted(scores)
    assert vendi_score(np.zeros((0, 0))) == 0.0
    with pytest.raises(ValueError, match="square"):
        vendi_score(np.ones((2, 3)))


def test_tfidf_similarity_of_identical_and_disjoint_texts() -> None:
    texts = ["add the two numbers", "add the two numbers", "multiply seven by three"]
    sim = TfidfSimilarity(texts)
    k = sim.matrix(texts)
    assert k.shape == (3, 3)
    assert np.allclose(np.diag(k), 1.0)
    assert k[0, 1] == pytest.approx(1.0)
    assert k[0, 2] == pytest.approx(0.0)
    assert np.allclose(k, k.T)
    assert np.linalg.eigvalsh(k).min() > -1e-9  # PSD
    assert vendi_score(sim.matrix(["same words here"] * 4)) == pytest.approx(1.0)
    disjoint = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"]
    assert vendi_score(TfidfSimilarity(disjoint).matrix(disjoint)) == pytest.approx(4.0)


def test_overlapping_texts_score_between() -> None:
    texts = ["first add two and two to get four", "first add two and two to get four apples", "count backward from ten"]
    k = TfidfSimilarity(texts).matrix(texts)
    assert 0.5 < k[0, 1] < 1.0
    assert 1.0 < vendi_score(k) < 3.0


def test_empty_text_is_only_similar_to_itself() -> None:
    texts = ["", "some words"]
    k = TfidfSimilarity(texts).matrix(texts)
    assert np.allclose(k, np.eye(2))


def test_summary_per_question_and_overall() -> None:
    groups = {"q1": ["a b c", "a b c"], "q2": ["d e f", "g h i"], "q3": ["j k l"]}
    summary = summarize_diversity(groups)
    assert summary.vendi_per_question_mean == pytest.approx((1.0 + 2.0) / 2)
    assert summary.vendi_per_question_mean_all == pytest.approx((1.0 + 2.0 + 1.0) / 3)
    # 5 items, two identical: eigenvalues of K/n are 2/5 and 1/5 three times.
    assert summary.vendi_overall == pytest.approx(np.exp(-(0.4 * np.log(0.4) + 3 * 0.2 * np.log(0.2))))
    assert summary.questions_with_2_or_more == 2 and summary.overall_sample == 5
    sampled = summarize_diversity({"q": [f"word{i}" for i in range(10)]}, max_overall=4)
    assert sampled.overall_sample == 4 and sampled.vendi_overall == pytest.approx(4.0)
    empty = summarize_diversity({})
    assert empty.vendi_overall is None and empty.as_dict()["vendi_per_question_mean"] is None


# ----- dedup ------------------------------------------------------------------------------------


def test_normalized_duplicates_ignore_case_and_whitespace_but_keep_numbers() -> None:
    assert normalize_text("  The  Answer\n is 4. ") == "the answer is 4."
    f = NearDuplicateFilter("normalized")
    assert f.offer("Add 2 and 2:\n  the answer is 4.")
    assert not f.offer("add 2 AND 2: the   answer is 4.")
    assert f.offer("add 2 and 3: the answer is 5.")


def test_ngram_duplicates_by_jaccard_threshold() -> None:
    a = "first we add two and two to get four then we check the result carefully"
    b = a + " again"
    c = "count the apples in each basket and multiply by the number of baskets"
    assert jaccard(word_ngrams(a), word_ngrams(a)) == 1.0
    similarity = jaccard(word_ngrams(a), word_ngrams(b))
    assert 0.8 < similarity < 1.0
    assert jaccard(word_ngrams(a), word_ngrams(c)) == 0.0
    strict = NearDuplicateFilter("ngram", threshold=0.8)
    assert strict.offer(a) and not strict.offer(b) and strict.offer(c)
    loose = NearDuplicateFilter("ngram", threshold=0.99)
    assert loose.offer(a) and loose.offer(b)
    none = NearDuplicateFilter("none")
    assert none.offer(a) and none.offer(a)
    with pytest.raises(ValueError, match="normalized, ngram, none"):
        NearDuplicateFilter("exact")  # type: ignore[arg-type]


def test_short_texts_have_one_ngram() -> None:
    assert word_ngrams("4", 3) == frozenset([("4",)])
    assert word_ngrams("", 3) == frozenset()
    assert word_ngrams("costs 3.50 dollars", 3) == frozenset([("costs", "3.50", "dollars")])
