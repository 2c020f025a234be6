"""The Pólya heuristic catalog: which problem-solving heuristics exist and how to prompt for each.

A catalog is a YAML file (the packaged default is ``catalog.yaml`` next to this module) holding a
system prompt, an answer-format sentence and an ordered list of heuristics. Each heuristic is one
prompt condition for self-generated solutions: an instruction plus worked few-shot exemplars.

>>> catalog = HeuristicCatalog.load()            # the packaged default
>>> [h.id for h in catalog.select(["working_backward", "analogy"])]
['analogy', 'working_backward']

Everything a user can get wrong in a catalog file (bad YAML, an unknown key, a duplicate id, an
exemplar without a ``\\boxed{}`` answer) raises :class:`~polya.core.errors.ConfigError` naming the file,
the heuristic (index and id) and the field.
"""

from __future__ import annotations

import difflib
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Iterator

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from polya.core.config import not_empty
from polya.core.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_CATALOG_FILE = "catalog.yaml"
"""File name of the packaged default catalog, next to this module."""

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
_ID_RE = re.compile(ID_PATTERN)
_BOXED = "\\boxed{"
ALL = "all"
"""The selection keyword meaning every heuristic in catalog order."""
NONE = "none"
"""The selection keyword meaning no heuristic (``heuristics: [none]``: generate with the plain prompt only)."""
PLAIN = "plain"
"""The condition id of the plain step-by-step prompt (no heuristic), stored as ``heuristic`` in its
records; reserved: no heuristic of a catalog may use it."""
DEFAULT_RATIONALIZATION_HINT = (
    "Hint: the correct final answer is {answer}. Write a complete step-by-step solution that reaches this answer "
    "on its own, without mentioning the hint."
)


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (nested braces respected), else ``None``.

    An unclosed ``\\boxed{`` counts as no answer. Kept private and minimal: it only has to check
    the catalog's own exemplars; answer checking of model output lives in ``polya.data.answers``.
    """
    start = text.rfind(_BOXED)
    while start != -1:
        depth = 0
        begin = start + len(_BOXED)
        for pos in range(begin, len(text)):
            ch = text[pos]
            if ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0:
                    return text[begin:pos].strip()
                depth -= 1
        # Unclosed: look at an earlier \boxed{ instead.
        start = text.rfind(_BOXED, 0, start)
    return None


def _non_blank(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


class Exemplar(BaseModel):
    """One worked few-shot example: a question and a solution that follows the heuristic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(description="The example problem, shown as a user turn.")
    solution: str = Field(
        description="The worked solution, shown as the assistant turn; must end with a \\boxed{} answer."
    )

    @field_validator("question")
    @classmethod
    def _question_non_blank(cls, v: str) -> str:
        return _non_blank(v, "question")

    @field_validator("solution")
    @classmethod
    def _solution_has_boxed_answer(cls, v: str) -> str:
        _non_blank(v, "solution")
        answer = _last_boxed(v)
        if not answer:
            raise ValueError("solution must contain a final answer written as \\boxed{...} (none found, or empty)")
        return v

    @property
    def answer(self) -> str:
        """The final answer inside the solution's last ``\\boxed{}``."""
        return exemplar_answer(self)


class Heuristic(BaseModel):
    """One Pólya heuristic: a prompt condition with its instruction and few-shot exemplars."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description=f"Stable snake_case identifier stored in every record (pattern {ID_PATTERN}).")
    name: str = Field(description="Human-readable name.")
    description: str = Field(description="What the heuristic is, with Pólya's source idea.")
    instruction: str = Field(description="Prompt text telling the model to solve the problem with this heuristic.")
    exemplars: Annotated[list[Exemplar], not_empty("at least one exemplar is required")] = Field(description="Worked few-shot examples (at least one).")
    tags: list[str] = Field(default_factory=list, description="Optional free-form labels.")

    @field_validator("id")
    @classmethod
    def _id_pattern(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"id {v!r} must match {ID_PATTERN} (lower-case snake_case, starting with a letter)")
        return v

    @field_validator("name", "description", "instruction")
    @classmethod
    def _text_non_blank(cls, v: str, info: ValidationInfo) -> str:
        return _non_blank(v, info.field_name)


class PlainPrompt(BaseModel):
    """The plain condition: the standard step-by-step prompt with no heuristic instruction, with its own exemplars."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exemplars: list[Exemplar] = Field(
        default_factory=list, description="Worked step-by-step examples without a heuristic: the few-shot turns of the plain condition."
    )
    rationalization_hint: str = Field(
        default=DEFAULT_RATIONALIZATION_HINT,
        description="Sentence put after the problem when rationalizing (STaR): '{answer}' is replaced by the reference answer.",
    )

    @field_validator("rationalization_hint")
    @classmethod
    def _hint_names_the_answer(cls, v: str) -> str:
        _non_blank(v, "rationalization_hint")
        if "{answer}" not in v:
            raise ValueError("rationalization_hint must contain '{answer}' (replaced by the reference answer)")
        return v

    def hint(self, answer: str) -> str:
        """The hint sentence for ``answer``."""
        return self.rationalization_hint.strip().replace("{answer}", str(answer).strip())


class HeuristicCatalog(BaseModel):
    """An ordered, validated set of heuristics plus the shared system prompt and answer format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=1, description="Catalog file format version (only 1 exists).")
    system_prompt: str = Field(description="System message used for every prompt unless overridden.")
    answer_format: str = Field(
        description="Sentence appended to every user turn asking for the final answer in \\boxed{}."
    )
    heuristics: Annotated[list[Heuristic], not_empty("the catalog must define at least one heuristic")] = Field(
        description="The heuristics, in catalog order."
    )
    plain: PlainPrompt = Field(
        default_factory=PlainPrompt,
        description=f"The plain condition (recorded as heuristic '{PLAIN}'): its exemplars and the rationalization hint.",
    )
    _source: str = PrivateAttr(default="<memory>")

    @field_validator("version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != 1:
            raise ValueError(f"unsupported catalog version {v}; valid versions: 1")
        return v

    @field_validator("system_prompt", "answer_format")
    @classmethod
    def _text_non_blank(cls, v: str, info: ValidationInfo) -> str:
        return _non_blank(v, info.field_name)

    @field_validator("answer_format")
    @classmethod
    def _answer_format_mentions_boxed(cls, v: str) -> str:
        if "\\boxed" not in v:
            raise ValueError("answer_format must ask for the final answer in \\boxed{}")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> HeuristicCatalog:
        seen: dict[str, int] = {}
        for index, heuristic in enumerate(self.heuristics):
            if heuristic.id in (PLAIN, ALL, NONE):
                raise ValueError(
                    f"heuristics[{index}]: id '{heuristic.id}' is reserved ({PLAIN}: the plain condition; {ALL}, {NONE}: selection "
                    "keywords); use another id"
                )
            if heuristic.id in seen:
                raise ValueError(
                    f"heuristics[{index}] (id '{heuristic.id}'): duplicate id, "
                    f"already used by heuristics[{seen[heuristic.id]}]"
                )
            seen[heuristic.id] = index
        return self

    # ----------------------------------------------------------------------------------------
    # Loading

    @classmethod
    def load(cls, path: str | Path | None = None) -> HeuristicCatalog:
        """Load and validate a catalog: the packaged default when ``path`` is None, else a YAML file."""
        if path is None:
            ref = resources.files("polya.heuristics").joinpath(DEFAULT_CATALOG_FILE)
            source = f"packaged {DEFAULT_CATALOG_FILE} ({ref})"
            text = ref.read_text(encoding="utf-8")
        else:
            p = Path(path)
            source = str(p)
            if not p.is_file():
                raise ConfigError(f"heuristic catalog file not found: {p}")
            text = p.read_text(encoding="utf-8")
        catalog = cls.from_yaml(text, source=source)
        logger.debug("loaded %d heuristics from %s", len(catalog), source)
        return catalog

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<string>") -> HeuristicCatalog:
        """Parse and validate catalog YAML text; ``source`` names the origin in error messages."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"heuristic catalog {source} is not valid YAML: {exc}") from exc
        if data is None:
            raise ConfigError(f"heuristic catalog {source} is empty; it must define at least one heuristic")
        if not isinstance(data, dict):
            raise ConfigError(
                f"heuristic catalog {source} must be a mapping with keys "
                f"version, system_prompt, answer_format, heuristics (optionally plain); got {type(data).__name__}"
            )
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> HeuristicCatalog:
        """Validate an already-parsed catalog mapping."""
        try:
            catalog = cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(source, data, exc.errors())) from None
        catalog._source = source
        return catalog

    # ----------------------------------------------------------------------------------------
    # Access

    @property
    def source(self) -> str:
        """Where the catalog was loaded from (a path, or the packaged default)."""
        return self._source

    @property
    def ids(self) -> list[str]:
        """Heuristic ids in catalog order."""
        return [h.id for h in self.heuristics]

    def get(self, heuristic_id: str) -> Heuristic:
        """The heuristic with this id; ConfigError listing the valid ids when unknown."""
        for heuristic in self.heuristics:
            if heuristic.id == heuristic_id:
                return heuristic
        raise ConfigError(
            f"unknown heuristic '{heuristic_id}' in catalog {self.source}; valid ids: {', '.join(self.ids)}"
        )

    def select(self, ids: list[str] | tuple[str, ...] | None = None) -> list[Heuristic]:
        """Heuristics named in ``ids``, in catalog order; None, [] or ["all"] selects all, ["none"] none.

        Unknown ids raise ConfigError listing every unknown one and the valid ids. Duplicates in
        ``ids`` are ignored.
        """
        if isinstance(ids, str):
            ids = [ids]
        if not ids or list(ids) == [ALL]:
            return list(self.heuristics)
        if list(ids) == [NONE]:
            return []
        wanted = set(ids)
        unknown = [i for i in dict.fromkeys(ids) if i not in set(self.ids)]
        if unknown:
            hint = f" ('{ALL}' selects every heuristic and cannot be combined with ids)" if ALL in unknown else ""
            raise ConfigError(
                f"unknown heuristic id(s) {', '.join(repr(u) for u in unknown)} in catalog {self.source}{hint}; "
                f"valid ids: {', '.join(self.ids)}"
            )
        return [h for h in self.heuristics if h.id in wanted]

    def digest(self) -> str:
        """A short fingerprint of the catalog's content: an edited catalog means other prompts, so
        stages that build prompts from it (generate, select, eval) put this in their identity."""
        from polya.core.digest import short_digest

        return short_digest(self.model_dump(mode="json"))

    def __len__(self) -> int:
        return len(self.heuristics)

    def __iter__(self) -> Iterator[Heuristic]:  # type: ignore[override]
        return iter(self.heuristics)

    def __contains__(self, heuristic_id: object) -> bool:
        return heuristic_id in self.ids


def exemplar_answer(exemplar: Exemplar) -> str:
    """The final answer of an exemplar: the content of the last ``\\boxed{...}`` in its solution."""
    answer = _last_boxed(exemplar.solution)
    assert answer, "validated exemplars always contain a non-empty \\boxed{} answer"
    return answer


# --------------------------------------------------------------------------------------------
# Error messages that name the file, the heuristic (index and id) and the field.


_VALID_KEYS: dict[str, list[str]] = {
    "catalog": list(HeuristicCatalog.model_fields),
    "heuristic": list(Heuristic.model_fields),
    "exemplar": list(Exemplar.model_fields),
    "plain": list(PlainPrompt.model_fields),
}


def _describe_loc(loc: tuple[Any, ...], data: Any) -> tuple[str, str]:
    """Render a pydantic location as ``heuristics[3] (id 'x').exemplars[0].solution``; also its level."""
    parts: list[str] = []
    level = "catalog"
    node: Any = data
    i = 0
    while i < len(loc):
        key = loc[i]
        if key == "heuristics" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            index = loc[i + 1]
            node = node.get("heuristics") if isinstance(node, dict) else None
            item = node[index] if isinstance(node, list) and index < len(node) else None
            hid = item.get("id") if isinstance(item, dict) else None
            parts.append(f"heuristics[{index}]" + (f" (id '{hid}')" if hid is not None else ""))
            node, level = item, "heuristic"
            i += 2
        elif key == "plain" and level == "catalog":
            parts.append("plain")
            node = node.get("plain") if isinstance(node, dict) else None
            level = "plain"
            i += 1
        elif key == "exemplars" and i + 1 < len(loc) and isinstance(loc[i + 1], int):
            index = loc[i + 1]
            node = node.get("exemplars") if isinstance(node, dict) else None
            item = node[index] if isinstance(node, list) and index < len(node) else None
            parts.append(f"exemplars[{index}]")
            node, level = item, "exemplar"
            i += 2
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
            i += 1
    return ".".join(parts), level


def _format_errors(source: str, data: Any, errors: list[Any]) -> str:
    lines = [f"invalid heuristic catalog {source}:"]
    for err in errors:
        loc = tuple(err.get("loc", ()))
        kind = err.get("type")
        if kind == "extra_forbidden" and loc:
            where, level = _describe_loc(loc[:-1], data)
            prefix = f"{where}." if where else ""
            valid = _VALID_KEYS[level]
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append(f"  {prefix}{loc[-1]}: unknown key{hint}; valid keys here: {', '.join(valid)}")
            continue
        where, _ = _describe_loc(loc, data)
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if kind == "missing":
            lines.append(f"  {where}: required field is missing")
        elif where and not msg.startswith("heuristics["):
            lines.append(f"  {where}: {msg}")
        else:
            lines.append(f"  {msg}")
    return "\n".join(lines)


HeuristicIds = Annotated[list[str], not_empty("heuristics must name at least one heuristic id, or [all]")]
"""A setting that picks heuristics from a catalog by id (``[all]``: every one)."""
