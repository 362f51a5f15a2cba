"""The model-family seam: the one backend provides every name the seam lists, and every config's model is
served by it."""

from __future__ import annotations

from trainer import cosmos
from trainer.model_family import SEAM, ModelFamily, family, missing
from trainer.spec.config import TrainConfig


def test_cosmos_predict_provides_the_whole_seam():
    assert missing(cosmos) == [] and isinstance(cosmos, ModelFamily)
    assert set(SEAM) == {"load", "encode", "loss", "sample", "adapter"}
    assert list(cosmos.ADAPTER_TARGETS) == TrainConfig(data="d").target_modules  # the recipe's default targets
    assert family("tiny") is cosmos and family("nvidia/Cosmos-Predict2.5-2B") is cosmos
