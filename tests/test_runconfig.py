"""The run schema: defaults written back, every key used or rejected, values checked."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edkeras.core.schema import ConfigError, from_dict, save_json, to_dict
from edkeras.reco.augment import AugmentConfig
from edkeras.reco.config import DataConfig, ModelConfig, RunConfig, TrainingConfig, load_run_config


def test_defaults_complete_and_roundtrip(tmp_path):
    cfg = from_dict(RunConfig, {"name": "r1", "training": {"epochs": 3}, "augmentation": {"mirror": True}})
    d = to_dict(cfg)
    assert set(d) == {"name", "data", "model", "training", "augmentation", "tuning"}
    assert d["training"]["epochs"] == 3 and d["training"]["batch_size"] == 64  # default written back
    assert d["augmentation"]["mirror"] is True and d["augmentation"]["mirror_axes"] == ["x", "y", "z"]
    assert d["data"]["files"] == ["synthetic"]
    assert isinstance(cfg.augmentation, AugmentConfig)  # the simulator engineer's class, not a copy
    path = save_json(cfg, tmp_path / "c.json")
    assert load_run_config(path) == cfg
    assert json.loads(path.read_text()) == d


def test_sections_are_frozen():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.training.epochs = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data": {"file": ["x.h5"]}}, r"config.data: unknown key 'file' \(did you mean 'files'\?\); valid keys: files,"),
        ({"training": {"lr": 0.1}}, r"config.training: unknown key 'lr'; valid keys: loss, loss_options"),
        ({"model": {"option": {}}}, r"config.model: unknown key 'option' \(did you mean 'options'\?\)"),
        ({"augmentation": {"mirrror": True}}, r"config.augmentation: unknown key 'mirrror' \(did you mean 'mirror'\?\)"),
        ({"hyperopt": {}}, r"config: unknown key 'hyperopt'; valid keys: name, data, model, training, augmentation"),
        ({"training": {"epochs": "3"}}, r"config.training.epochs: must be an integer; received '3'"),
        ({"training": {"mixed_precision": "yes"}}, r"config.training.mixed_precision: must be bool \| 'auto'"),
        ({"training": {"mixed_precision": 1}}, r"config.training.mixed_precision: must be bool \| 'auto'"),
        ({"training": {"optimizer": "sgd"}}, r"config.training.optimizer: must be one of 'adam' \| 'adamw'"),
        ({"training": {"schedule": "step"}}, r"config.training.schedule: must be one of 'constant'"),
        ({"training": {"strategy": "tpu"}}, r"config.training.strategy: must be one of 'default' \| 'mirrored'"),
        ({"data": {"split_by": "run"}}, r"config.data.split_by: must be one of 'event' \| 'file'"),
        ({"data": {"interaction": "nc"}}, r"config.data.interaction: must be one of 'all' \| 'es' \| 'cc'"),
        ({"model": {"head": "kappa"}}, r"config.model.head: must be one of 'direction' \| 'vmf' \| 'axial' \| 'multitask'"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(RunConfig, data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data": {"val_fraction": 0.0}}, r"data.val_fraction: must be a number in \(0, 1\); received 0.0"),
        ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, r"must be < 1 \(events must be left for training\)"),
        ({"data": {"files": []}}, r"data.files: must be a non-empty list"),
        ({"data": {"energy_min": 30, "energy_max": 10}}, r"data.energy_max: must be > energy_min \(30.0\)"),
        ({"data": {"n_events": 2}}, r"data.n_events: must be null or an integer >= 3"),
        ({"training": {"batch_size": 0}}, r"training.batch_size: must be an integer >= 1; received 0"),
        ({"model": {"head": "vmf"}, "training": {"loss": "vmf_nll", "monitor": "val_interaction_loss"}},
         r"training.monitor: 'val_interaction_loss' needs model.head 'multitask'"),
        ({"training": {"learning_rate": -1}}, r"training.learning_rate: must be > 0"),
        ({"training": {"weight_decay": 0.01}}, r"training.weight_decay: 0.01 given with optimizer 'adam'; use optimizer 'adamw'"),
        ({"training": {"early_stopping_patience": 0}}, r"training.early_stopping_patience: must be null or an integer >= 1"),
        ({"training": {"min_learning_rate": 0.1}}, r"training.min_learning_rate: must be in \[0, learning_rate=0.001\)"),
        ({"model": {"head": "vmf"}}, r"training.loss: 'angular' does not fit model.head 'vmf'; use one of vmf_nll"),
        ({"training": {"loss": "vmf_nll"}}, r"training.loss: 'vmf_nll' does not fit model.head 'direction'"),
        ({"model": {"options": {"head": "vmf"}}}, r"model.options.head: set it with model.head"),
        ({"model": {"options": {"energy_conditioning": True}}}, r"model.options.energy_conditioning: set it with data.energy_input"),
        ({"name": "a/b"}, r"name: must be a plain folder name"),
        ({"augmentation": {"mirror_axes": ["w"]}}, r"augmentation.mirror_axes: expected distinct axes"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(RunConfig, data)


def test_valid_combinations():
    cfg = from_dict(
        RunConfig,
        {
            "model": {"head": "vmf", "options": {"filters": 8}},
            "training": {"loss": "vmf_nll", "optimizer": "adamw", "weight_decay": 1e-4, "mixed_precision": False,
                         "early_stopping_patience": None, "schedule": "cosine", "warmup_epochs": 2},
            "data": {"files": ["a.h5", "synthetic"], "energy_min": 5, "interaction": "es", "split_by": "file"},
        },
    )
    assert cfg.training.mixed_precision is False and cfg.training.early_stopping_patience is None
    assert cfg.data.files == ("a.h5", "synthetic") and cfg.data.energy_min == 5.0
    assert isinstance(cfg.model, ModelConfig) and isinstance(cfg.data, DataConfig)
    assert isinstance(cfg.training, TrainingConfig) and cfg.training.mixed_precision is not True


def test_load_with_overrides_and_name(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"name": "base", "training": {"epochs": 4}}))
    cfg = load_run_config(path, ["training.epochs=2", "model.head=multitask", "model.options.filters=8"], name="other")
    assert (cfg.name, cfg.training.epochs, cfg.model.head, cfg.model.options) == ("other", 2, "multitask", {"filters": 8})
    with pytest.raises(ConfigError, match=r"run.json: .*unknown key 'training.epoch' \(did you mean 'epochs'\?\)"):
        load_run_config(path, ["training.epoch=2"])
    with pytest.raises(ConfigError, match=r"run.json: training.batch_size: must be an integer >= 1"):
        load_run_config(path, ["training.batch_size=0"])
    path.write_text(json.dumps({"training": {"epochs": 4, "batch": 3}}))
    with pytest.raises(ConfigError, match=r"run.json.training: unknown key 'batch' \(did you mean 'batch_size'\?\)"):
        load_run_config(path)
    assert load_run_config(None) == RunConfig()
