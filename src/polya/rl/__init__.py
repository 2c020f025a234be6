"""RL stage: GRPO with verifiable rewards (TRL GRPOTrainer inside Ray Train workers).

``polya.rl.config.RlConfig`` holds the settings, ``polya.rl.topology`` maps each role (learner,
rollout, reference, reward) to its Ray worker and resources, ``polya.rl.stage.run`` trains. Heavy
imports (torch, ray, transformers, trl) happen inside the stage, so importing the config stays cheap.
"""
