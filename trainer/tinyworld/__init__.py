"""The embedded defaults that make the product work offline on a CPU.

    builtin.py       the names "tiny" and "sample" and where they resolve (torch-free)
    model.py         the tiny Cosmos Predict 2.5 pipeline: real architecture, toy sizes, built deterministically
    pretrain.py      how assets/tiny-base/ was pre-trained (python -m trainer.tinyworld.pretrain)
    sample_world.py  the procedural robot and shapes worlds, the which-arm scorer and the dataset writers
"""
