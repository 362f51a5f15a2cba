"""How the embedded tiny base (trainer/tinyworld/assets/tiny-base/) was pre-trained: `python -m trainer
pretrain-tiny OUT_DIR`. A floor above both the tiny world (its worlds and model) and evaluation (its scores).

settings.py   PretrainSettings: every field a pretrain-tiny option, all kept in the record
data.py       the shapes and strokes worlds rendered in memory
pretrain.py   the run: data -> VAE -> latents -> DiT -> save
scoring.py    held-out scores (trainer.evaluate), prompt separation, the record and its PRETRAINING.md (report.py)
"""
