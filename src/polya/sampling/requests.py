"""Chat requests and what comes back: the request body, per-choice texts and token counts, and the
bounded async fan-out that keeps a server busy. Used by generation and evaluation alike."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

from polya.core.errors import ServerError
from polya.sampling.config import SamplingParams
from polya.serving.vllm_server import Endpoint

T = TypeVar("T")


def chat_body(
    endpoint: Endpoint, messages: Sequence[dict[str, str]], params: SamplingParams, n: int, seed: int | None,
    vllm_extensions: bool,
) -> dict[str, Any]:
    """The JSON body of one ``/chat/completions`` request for ``n`` samples.

    ``seed`` is sent when ``params`` says the endpoint takes one; ``vllm_extensions`` asks vLLM for
    each choice's token ids (exact completion token counts); ``params.extra`` is added as it is.
    """
    body: dict[str, Any] = {
        "model": endpoint.model,
        "messages": list(messages),
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
    }
    if seed is not None and params.sends_seed(endpoint):
        body["seed"] = seed
    if vllm_extensions:
        body["return_token_ids"] = True
    body.update(params.extra)
    return body


@dataclass(frozen=True)
class Choice:
    """One sampled completion of a response."""

    index: int
    text: str
    finish_reason: str | None
    completion_tokens: int
    """Exact (vLLM's token ids) or, without them, the response's completion tokens split evenly over its choices."""


def parse_choices(resp: dict[str, Any]) -> list[Choice]:
    """The choices of a chat completion response, in index order."""
    choices = sorted(resp.get("choices", []), key=lambda c: c.get("index", 0))
    usage = resp.get("usage") or {}
    fallback = int(usage.get("completion_tokens") or 0) // max(1, len(choices))
    out = []
    for choice in choices:
        token_ids = choice.get("token_ids")
        out.append(Choice(
            index=int(choice.get("index", 0)),
            text=(choice.get("message") or {}).get("content") or "",
            finish_reason=choice.get("finish_reason"),
            completion_tokens=len(token_ids) if token_ids is not None else fallback,
        ))
    return out


def worker_count(concurrency: int, samples_per_request: int, requests: int) -> int:
    """Requests in flight so that about ``concurrency`` sequences are sampled at once."""
    return max(1, min(requests, concurrency // samples_per_request or 1))


async def fan_out(items: Iterable[T], workers: int, handle: Callable[[T], Awaitable[bool | None]]) -> None:
    """Run ``handle`` on every item with ``workers`` coroutines pulling from one iterator.

    A worker stops early when ``handle`` returns False (a budget is spent). The first
    :class:`ServerError` of any worker cancels the others and is raised as it is (not inside an
    exception group), so the caller's message names the server.
    """
    work = iter(items)

    async def worker() -> None:
        for item in work:
            if await handle(item) is False:
                return

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, workers)):
                group.create_task(worker())
    except* ServerError as eg:
        raise eg.exceptions[0] from None
