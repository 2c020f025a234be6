"""The verifier's data: one item to judge and its verdict, shared by the library, the HTTP
service, the client and the CLI (``polya verify``)."""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["math", "code", "choice"]
Status = Literal["pass", "fail", "timeout", "error"]

DECIDED: frozenset[str] = frozenset({"pass", "fail"})
"""Statuses that are a judgement. ``timeout`` and ``error`` mean judging did not finish: such an
item is *undecided*, never wrong (callers re-judge it, leave it out, or follow a documented setting)."""


def record_decided(record: Mapping[str, Any]) -> bool:
    """Whether a stored sample's verdict (its ``status``) is a judgement; a record written before
    statuses were stored counts as decided."""
    return str(record.get("status") or "fail") in DECIDED


class VerifyItem(BaseModel):
    """One answer to judge.

    - ``math``: ``prediction`` is a full solution, ``reference`` the final answer.
    - ``code``: ``prediction`` is the program, or with ``prompt`` (HumanEval's) the model's answer
      to it, from which :func:`polya.verify.code_judge.assemble_program` builds the program (the
      prompt in front, an answer's code block taken out of the text around it); ``tests`` the test
      code (HumanEval's ``check`` function), ``entry_point`` the function ``check`` is called with.
    - ``choice``: ``prediction`` is free text, ``options`` the choices, ``reference`` the correct
      option (its text, its letter ``B`` or its 0-based index as a string).
    """

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Caller's id, echoed in the verdict.")
    kind: Kind = Field(description="What to judge: math, code or choice.")
    prediction: str = Field(description="The model's output.")
    reference: str | None = Field(default=None, description="Reference answer (math, choice).")
    options: list[str] | None = Field(default=None, description="Answer options (choice).")
    tests: str | None = Field(default=None, description="Test code run against the program (code).")
    entry_point: str | None = Field(default=None, description="Function under test (code, HumanEval style).")
    prompt: str | None = Field(
        default=None,
        description="Code prompt the prediction answers (code, HumanEval style): kept in front of the answer's code, whether the answer continues the body or redefines the function.",
    )
    timeout_s: float | None = Field(
        default=None, gt=0,
        description=(
            "Time this item may take: CPU seconds of parsing and comparing (math), seconds its program may run (code). "
            "Unset: the verifier's math_timeout_s / code_timeout_s; at most its max_item_timeout_s. Used to re-judge a timed-out item."
        ),
    )

    @model_validator(mode="after")
    def _fields_for_kind(self) -> "VerifyItem":
        if self.kind in ("math", "choice") and self.reference is None:
            raise ValueError(f"kind '{self.kind}' needs 'reference'")
        if self.kind == "choice" and not self.options:
            raise ValueError("kind 'choice' needs a non-empty 'options' list")
        if self.kind == "code" and not self.tests:
            raise ValueError("kind 'code' needs 'tests'")
        return self


class Verdict(BaseModel):
    """The judgement of one item."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="The item's id.")
    kind: Kind
    correct: bool = Field(description="True when the answer is judged right.")
    status: Status = Field(description="pass / fail, or timeout / error when judging could not finish.")
    extracted: str | None = Field(default=None, description="The answer found in the prediction (math, choice).")
    reason: str = Field(description="Why: 'equivalent', 'no final answer found', 'AssertionError', 'deadline exceeded', ...")
    latency_s: float = Field(default=0.0, description="Seconds spent judging this item.")

    @property
    def decided(self) -> bool:
        """True for ``pass`` / ``fail``; a ``timeout`` or ``error`` verdict is undecided (not wrong)."""
        return self.status in DECIDED
