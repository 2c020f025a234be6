"""Answer judging. Math is judged in-process with math-verify (see ``math_judge``)."""

from polya.verify.math_judge import MathVerdict, extract_final_answer, judge_math

__all__ = ["MathVerdict", "extract_final_answer", "judge_math"]
