"""polya's SFTTrainer: TRL's, with packed rows that stay rows when the attention kernel is not flash-attention.

TRL packs examples with best-fit decreasing into rows of at most ``max_length`` tokens and, being
padding-free, concatenates the *whole batch* into one sequence separated only by position ids.
With flash-attention's variable-length kernels that costs nothing; with SDPA or eager attention
(every CPU run, and GPUs without flash-attn) the model masks one ``(B*L) x (B*L)`` attention per
layer, ``B`` times the work and memory of ``B`` separate rows, and little of packing's gain is left.

:class:`PackedRowsCollator` keeps each packed row a row of a ``[B, L]`` batch, with position ids
that restart at every example and no attention mask; transformers then builds a block-diagonal
causal mask per row, so attention never crosses examples. ``benchmarks/sft_throughput.py``
measures the difference (on the 2-core CPU box: 1.06x to 1.20x TRL's packed tokens/s, see
docs/sft.md).
Because no attention mask exists, it also counts the real tokens of each batch, which
:class:`PolyaSFTTrainer` adds to ``state.num_input_tokens_seen`` (padding excluded).
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer

REAL_TOKENS_KEY = "polya_real_tokens"
"""Batch key holding the number of non-padding tokens of a packed-rows batch (removed before the forward)."""

FLASH_KERNELS = ("flash_attention_2", "flash_attention_3")


def uses_packed_rows(packing: bool, attn_implementation: str) -> bool:
    """True when packed examples should stay separate rows (every kernel but flash-attention's varlen ones)."""
    return packing and attn_implementation not in FLASH_KERNELS


class PackedRowsCollator:
    """Collate TRL's packed examples (``input_ids``, ``labels``, ``seq_lengths``) into ``[B, L]`` rows.

    Position ids restart at 0 at each example; the padding of short rows forms a segment of its
    own (so it attends only to itself) and has label -100, as has the first token of every
    example (it must not be predicted from the previous example's last token).
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        batch = len(examples)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, width), -100, dtype=torch.long)
        position_ids = torch.zeros((batch, width), dtype=torch.long)
        real = 0
        for row, example in enumerate(examples):
            ids = example["input_ids"]
            n = len(ids)
            real += n
            input_ids[row, :n] = torch.as_tensor(ids, dtype=torch.long)
            labels[row, :n] = torch.as_tensor(example.get("labels", ids), dtype=torch.long)
            lengths = list(example.get("seq_lengths") or [n])
            if n < width:
                lengths.append(width - n)  # the padding: a segment of its own
            position_ids[row] = torch.cat([torch.arange(length) for length in lengths])
        labels[position_ids == 0] = -100
        return {
            "input_ids": input_ids,
            "labels": labels,
            "position_ids": position_ids,
            REAL_TOKENS_KEY: torch.tensor([real], dtype=torch.long),
        }


class PolyaSFTTrainer(SFTTrainer):
    """``trl.SFTTrainer`` plus packed rows (see the module docstring) when ``packed_rows`` is set."""

    def __init__(self, *args: Any, packed_rows: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.packed_rows = packed_rows
        if packed_rows:
            # Replaces TRL's padding-free collator (which flattens the batch into one sequence).
            self.data_collator = PackedRowsCollator(self._tokenizer.pad_token_id)

    def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        real = inputs.pop(REAL_TOKENS_KEY, None)
        if real is not None:
            self.state.num_input_tokens_seen += int(self.accelerator.gather(real.to(self.args.device)).sum().item())
        return super().training_step(model, inputs, *args, **kwargs)
