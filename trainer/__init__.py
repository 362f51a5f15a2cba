"""Cosmos LoRA Studio's trainer: LoRA/DoRA fine-tuning of Cosmos Predict 2.5, driven by one config file."""

__version__ = "0.1.0"
