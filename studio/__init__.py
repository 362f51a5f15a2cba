"""Cosmos LoRA Studio: the Gradio app that starts trainer runs as child processes and watches their run folders."""
