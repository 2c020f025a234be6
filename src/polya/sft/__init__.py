"""Mid-training: supervised fine-tuning on the selected solutions (TRL SFTTrainer, DeepSpeed on GPUs).

``polya.sft.config.SftConfig`` holds the settings, ``polya.sft.stage.run`` trains; heavy imports
(torch, transformers, trl) happen inside the stage, so importing the config stays cheap.
"""
