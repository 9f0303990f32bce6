"""Strict config loading: unknown keys and wrong types are refused with the key named."""

import pytest

from facelab.config import ConfigError, RunConfig, apply_override, dump_yaml, from_dict, load_config


def test_defaults_and_overrides(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("model:\n  kind: vae\n  params: {latent_dim: 32}\ntrain:\n  max_steps: 7\n")
    cfg = load_config(preset, ["train.learning_rate=1e-3", "data.background=grey", "data.attributes=[Male, Young]"])
    assert isinstance(cfg, RunConfig)
    assert cfg.train.max_steps == 7
    assert cfg.train.learning_rate == pytest.approx(1e-3)
    assert cfg.data.background == "grey"
    assert cfg.data.attributes == ["Male", "Young"]
    assert cfg.model.params == {"latent_dim": 32}
    assert "max_steps: 7" in dump_yaml(cfg)


def test_int_is_accepted_where_float_expected():
    cfg = from_dict(RunConfig, {"train": {"learning_rate": 1}})
    assert isinstance(cfg.train.learning_rate, float)


@pytest.mark.parametrize("override, needle", [
    ("train.max_stepz=3", "train.max_stepz"),
    ("train.max_steps=abc", "train.max_steps"),
    ("data.background=purple", "data.background"),
    ("train.batch_size=1.5", "train.batch_size"),
    ("bogus.x=1", "bogus"),
])
def test_bad_keys_and_types_are_named(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(None, [override])


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "train.max_steps")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config("nope.yaml")


def test_yaml_no_means_no_mixed_precision():
    assert load_config(None, ["train.mixed_precision=no"]).train.mixed_precision == "no"
