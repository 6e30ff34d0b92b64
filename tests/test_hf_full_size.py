"""The published configs in tests/data/hf_configs build each advertised model at its released size.

bench/bench_learned_models.py times random-weight copies built from these files at full size; they
stand for the released models only if they have the released parameter counts (the model list's
``parameters_m``, from the model cards). Counted on the meta device: nothing is allocated.
"""

from __future__ import annotations

import importlib
import json

import pytest
from conftest import MODULE

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

from hf_fixtures import HF_CONFIGS, fixture_info

models = importlib.import_module(MODULE + ".inference.models")
FIXTURES = {fixture_info(p.name)["id"]: p.name for p in HF_CONFIGS.iterdir() if (p / "fixture.json").is_file()}
ADVERTISED = [m for m in models.known_models() if not models.is_moge_model(m.id)]


@pytest.mark.parametrize("known", ADVERTISED, ids=[m.id.split("/")[1] for m in ADVERTISED])
def test_full_size_config_has_the_released_parameter_count(known):
    values = json.loads((HF_CONFIGS / FIXTURES[known.id] / "config.json").read_text())
    model_type = values.pop("model_type")
    config = tf.AutoConfig.for_model(model_type, **values)
    with torch.device("meta"):
        model = getattr(tf, values["architectures"][0])(config)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(millions - known.parameters_m) <= 0.01 * known.parameters_m, (known.id, millions)
