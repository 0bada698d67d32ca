"""Run configuration: YAML loading, overrides and clear errors for bad settings."""
import pytest

from llmhni_ext import config as C


def write(tmp_path, text):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return str(p)


def test_defaults_validate():
    cfg = C.RunConfig().validate()
    assert cfg.method.name == "llmhni" and cfg.method.predict_graph == "denoised"


def test_yaml_loads_and_coerces(tmp_path):
    cfg = C.load_yaml(write(tmp_path, "train:\n  lr: 1\n  epochs: 3\nmethod:\n  name: sgl\n"
                                      "signals:\n  judge: embedding\n"))
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 3 and cfg.method.name == "sgl"
    assert cfg.signals.judge == "embedding"


@pytest.mark.parametrize("text, match", [
    ("train:\n  lrr: 0.1\n", r"train\.lrr: unknown key"),
    ("trian:\n  lr: 0.1\n", r"trian: unknown key"),
    ("train:\n  lr: fast\n", r"train\.lr: must be a number"),
    ("train:\n  epochs: 2.5\n", r"train\.epochs: must be an integer"),
    ("train:\n  lr: -1\n", r"train\.lr: must be > 0"),
    ("method:\n  name: magic\n", r"method\.name: must be one of"),
    ("method:\n  keep_prob: 0\n", r"method\.keep_prob: must be in \(0, 1\]"),
    ("method:\n  predict_graph: both\n", r"method\.predict_graph"),
    ("method:\n  hard_per_item: -1\n", r"method\.hard_per_item: must be >= 0"),
    ("method:\n  semantic_sampling: 1\n", r"method\.semantic_sampling: must be true or false"),
    ("model:\n  backbone: gcn\n", r"model\.backbone: must be one of mf, lightgcn, ngcf"),
    ("method:\n  top_k: 100\n", r"method\.top_k"),
    ("train: 3\n", r"train: must be a mapping"),
    ("train: [\n", r"not valid YAML"),
    ("backbones: 3\n", r"backbones: must be a mapping"),
    ("backbones:\n  gcn: {}\n", r"backbones\.gcn: not a backbone"),
    ("backbones:\n  ngcf: 4\n", r"backbones\.ngcf: must be a mapping of sections"),
    ("backbones:\n  mf:\n    method:\n      lamda_de: 1\n", r"backbones\.mf: method\.lamda_de: unknown key"),
    ("backbones:\n  ngcf:\n    model:\n      backbone: mf\n", r"backbones\.ngcf\.model\.backbone: cannot be set"),
])
def test_bad_files_name_the_key(tmp_path, text, match):
    with pytest.raises(C.ConfigError, match=match):
        C.load_yaml(write(tmp_path, text))


def test_missing_file():
    with pytest.raises(C.ConfigError, match="does not exist"):
        C.load_yaml("/nonexistent/run.yaml")


def test_overrides_are_typed_and_checked():
    cfg = C.apply_overrides(C.RunConfig(), {"train.lr": "0.05", "method.name": "dns", "data.noise": 0.2,
                                            "signals.judge": "embedding"})
    assert cfg.train.lr == 0.05 and cfg.method.name == "dns" and cfg.data.noise == 0.2
    assert cfg.signals.judge == "embedding"
    with pytest.raises(C.ConfigError, match="train.nope: unknown key"):
        C.apply_overrides(C.RunConfig(), {"train.nope": 1})
    with pytest.raises(C.ConfigError, match="train.batch_size: must be > 0"):
        C.apply_overrides(C.RunConfig(), {"train.batch_size": "0"})
    with pytest.raises(C.ConfigError, match="expected key=value"):
        C.parse_set(["train.lr"])


def test_roundtrip(tmp_path):
    cfg = C.apply_overrides(C.RunConfig(), {"method.lambda_de": 0.3})
    p = str(tmp_path / "out.yaml")
    C.dump_yaml(cfg, p)
    assert C.load_yaml(p) == cfg


def test_bundled_presets_load():
    import os
    d = os.path.join(os.path.dirname(C.__file__), "configs")
    names = [f for f in os.listdir(d) if f.endswith(".yaml")]
    assert "ml100k.yaml" in names
    for f in names:
        C.load_yaml(os.path.join(d, f))


def test_sgl_has_settings_of_its_own():
    """SGL reads sgl_*; SimGCL's ssl_lambda and LLMHNI's keep_prob no longer reach it."""
    base = C.apply_overrides(C.RunConfig(), {"method.name": "sgl"}).to_dict()
    other = C.apply_overrides(C.RunConfig(), {"method.name": "sgl", "method.ssl_lambda": 0.5,
                                              "method.keep_prob": 0.5}).to_dict()
    assert C.trajectory_settings(base) == C.trajectory_settings(other)
    own = C.apply_overrides(C.RunConfig(), {"method.name": "sgl", "method.sgl_keep_prob": 0.9}).to_dict()
    assert C.trajectory_settings(own)["method.sgl_keep_prob"] == 0.9 != C.trajectory_settings(base)["method.sgl_keep_prob"]
    with pytest.raises(C.ConfigError, match=r"method\.sgl_keep_prob: must be in \(0, 1\]"):
        C.apply_overrides(C.RunConfig(), {"method.sgl_keep_prob": 0})
    with pytest.raises(C.ConfigError, match=r"method\.sgl_tau: must be > 0"):
        C.apply_overrides(C.RunConfig(), {"method.sgl_tau": 0})


def test_configs_written_before_sgl_had_its_own_settings_read_as_they_trained(tmp_path):
    old = C.RunConfig().to_dict()
    old["method"] = {k: v for k, v in old["method"].items() if not k.startswith("sgl_")}
    old["method"].update(name="sgl", ssl_lambda=0.1, ssl_tau=0.3, keep_prob=0.9)
    cfg = C.from_dict(old)                                         # a checkpoint's or results.json's config
    assert (cfg.method.sgl_lambda, cfg.method.sgl_tau, cfg.method.sgl_keep_prob) == (0.1, 0.3, 0.9)
    now = C.apply_overrides(C.RunConfig(), {"method.name": "sgl", "method.sgl_lambda": 0.1,
                                            "method.sgl_tau": 0.3, "method.sgl_keep_prob": 0.9}).to_dict()
    assert C.trajectory_settings(old) == C.trajectory_settings(now)  # compare reuses it, resume accepts it
    yaml_cfg = C.load_yaml(write(tmp_path, "method:\n  name: sgl\n  ssl_lambda: 0.05\n"))
    assert yaml_cfg.method.sgl_lambda == 0.05                      # an old YAML file keeps its meaning
    new = C.load_yaml(write(tmp_path, "method:\n  name: sgl\n  ssl_lambda: 0.05\n  sgl_tau: 0.5\n"))
    assert new.method.sgl_lambda == 0.01 and new.method.sgl_tau == 0.5    # one sgl_* key: read as written
    for raw in ({"method": {"name": "simgcl", "ssl_lambda": 0.5}}, {"method": "x"}, []):
        assert C.migrate(raw) is raw


def test_a_files_backbone_block_applies_to_the_backbone_the_run_trains(tmp_path):
    from llmhni_ext import cli
    path = write(tmp_path, "model:\n  backbone: lightgcn\nmethod:\n  lambda_de: 0.1\n  lambda_hal: 0.1\n"
                           "backbones:\n  ngcf:\n    method:\n      lambda_de: 0.003\n")
    assert C.load_yaml(path).method.lambda_de == 0.1
    ngcf = C.load_yaml(path, "ngcf")
    assert (ngcf.model.backbone, ngcf.method.lambda_de, ngcf.method.lambda_hal) == ("lightgcn", 0.003, 0.1)

    def resolved(*argv):
        return cli.resolve_config(cli.build_parser().parse_args(["train", "--config", path, *argv]))
    assert resolved().method.lambda_de == 0.1
    assert resolved("--backbone", "ngcf").method.lambda_de == 0.003          # the flag chooses the block
    assert resolved("--set", "model.backbone=ngcf").method.lambda_de == 0.003
    assert resolved("--backbone", "ngcf", "--set", "method.lambda_de=0.5").method.lambda_de == 0.5   # --set wins
    # a file whose own backbone is ngcf takes its block without a flag
    own = write(tmp_path, "model:\n  backbone: ngcf\nbackbones:\n  ngcf:\n    train:\n      lr: 0.002\n")
    assert C.load_yaml(own).train.lr == 0.002
