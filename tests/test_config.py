from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from edkeras.core.schema import ConfigError, apply_overrides, from_dict, load_json, save_json, to_dict


@dataclass(frozen=True)
class Optim:
    name: Literal["adam", "adamw"] = "adam"
    learning_rate: float = 1e-3
    clipnorm: float | None = None


@dataclass(frozen=True)
class Cfg:
    epochs: int = 10
    shape: tuple[int, int] = (128, 32)
    files: tuple[str, ...] = ()
    optimizer: Optim = field(default_factory=Optim)
    options: dict = field(default_factory=dict)
    use_energy: bool = False


def test_defaults_written_back_and_roundtrip(tmp_path):
    cfg = from_dict(Cfg, {"epochs": 3, "optimizer": {"learning_rate": 1}})
    assert cfg.optimizer.learning_rate == 1.0 and isinstance(cfg.optimizer.learning_rate, float)
    d = to_dict(cfg)
    assert d["optimizer"] == {"name": "adam", "learning_rate": 1.0, "clipnorm": None}
    assert d["shape"] == [128, 32]
    p = save_json(cfg, tmp_path / "c.json")
    assert load_json(Cfg, p) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"epoch": 3}, r"config: unknown key 'epoch' \(did you mean 'epochs'\?\); valid keys: epochs, shape"),
        ({"optimizer": {"lr": 1}}, r"config.optimizer: unknown key 'lr'.*valid keys: name, learning_rate, clipnorm"),
        ({"epochs": "3"}, r"config.epochs: must be an integer; received '3'"),
        ({"epochs": True}, r"config.epochs: must be an integer"),
        ({"use_energy": 1}, r"config.use_energy: must be true or false"),
        ({"shape": [128]}, r"config.shape: must be a list of 2"),
        ({"optimizer": {"name": "sgd"}}, r"config.optimizer.name: must be one of 'adam' \| 'adamw'; received 'sgd'"),
        ({"optimizer": {"clipnorm": "x"}}, r"config.optimizer.clipnorm: must be float \| null"),
        ([1, 2], r"config: must be an object"),
    ],
)
def test_strict_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Cfg, data)


def test_overrides_are_checked():
    cfg = Cfg()
    new = apply_overrides(cfg, ["epochs=5", "optimizer.name=adamw", "optimizer.clipnorm=0.5", "options.depth=3"])
    assert (new.epochs, new.optimizer.name, new.optimizer.clipnorm, new.options) == (5, "adamw", 0.5, {"depth": 3})
    with pytest.raises(ConfigError, match="unknown key 'optimizer.lr'"):
        apply_overrides(cfg, ["optimizer.lr=1"])
    with pytest.raises(ConfigError, match="unknown key 'optimiser'"):
        apply_overrides(cfg, ["optimiser.name=adam"])
    with pytest.raises(ConfigError, match="must be an integer; received 'five'"):
        apply_overrides(cfg, ["epochs=five"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(cfg, ["epochs"])


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\"epochs\": 3,}")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON \(line 1"):
        load_json(Cfg, bad)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"epochs": 3, "augmentaton": True}))
    with pytest.raises(ConfigError, match=r"typo.json: unknown key 'augmentaton'"):
        load_json(Cfg, typo)
    with pytest.raises(ConfigError, match="no such config file"):
        load_json(Cfg, tmp_path / "none.json")
