"""The embedded defaults that make the product work offline on a CPU.

builtin.py          the plug-in trainer.spec.embedded loads by name: what "tiny" and "sample" are built from
model.py            the tiny Cosmos Predict 2.5 pipeline: real architecture, toy sizes, built deterministically
(pre-training of assets/tiny-base/ lives a floor above, in trainer/pretrain_tiny/)
drawing.py          what both sample worlds share: the clip-shape rule, a supersampled canvas, outlines
robot_world.py      the two-armed pick-and-place world (the sample fine-tuning dataset)
hand_scorer.py      which arm moved in a robot-world video (evaluate's instruction-following score)
shapes_world.py     bouncing shapes with captions (the tiny base's pre-training world)
sample_datasets.py  both worlds written as datasets, with a manifest and a README
"""
