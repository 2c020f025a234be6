"""polya's GRPOTrainer: TRL's, with the rollout (generation + reward) timed apart from the learner update.

TRL already logs ``step_time`` (forward + backward of a step); :class:`PolyaGRPOTrainer` adds
``timing/rollout_s`` (generating the group's completions and scoring them, inside the step) and
``timing/reward_s`` (the verifier's share of it), so metrics can show rollout vs learner time.
"""

from __future__ import annotations

import time
from typing import Any

from trl import GRPOTrainer

ROLLOUT_KEY = "timing/rollout_s"
REWARD_KEY = "timing/reward_s"


class PolyaGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` that records how long each rollout and each reward computation took."""

    def _generate_and_score_completions(self, inputs: Any) -> Any:
        started = time.perf_counter()
        out = super()._generate_and_score_completions(inputs)
        if self.model.training:
            self._metrics["train"][ROLLOUT_KEY].append(time.perf_counter() - started)
        return out

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
        started = time.perf_counter()
        out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training:
            self._metrics["train"][REWARD_KEY].append(time.perf_counter() - started)
        return out
