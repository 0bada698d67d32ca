"""The places a contributor extends: per-method settings, typed signals, the sampler spec,
and a training step that reads the same in one process and in many."""
import dataclasses
import inspect
import warnings

import pytest
import torch

from llmhni_ext import config as C
from llmhni_ext import methods
from llmhni_ext.methods.settings import MethodSettings, merged_config_class, setting
from llmhni_ext.sampling import NegativeSampler, SamplerSpec
from llmhni_ext.signals.config import SignalsConfig
from llmhni_ext.train import Trainer


def test_each_method_declares_the_settings_it_reads_and_the_section_is_their_union():
    merged = {f.name for f in dataclasses.fields(C.MethodConfig)}
    union = {"name"} | {k for m in methods.REGISTRY.values() for k in m.Settings.keys()}
    assert merged == union
    for name, m in methods.REGISTRY.items():
        assert issubclass(m.Settings, MethodSettings)
        assert set(m.implies) <= set(m.Settings.keys()), name
        assert methods.relevant_method_keys(name) == ("name",) + m.Settings.keys()
        for f in dataclasses.fields(m.Settings):
            assert f.metadata.get("help"), f"{name}: method.{f.name} has no help text"
    # a method reads its own typed settings, not the whole section
    tr = Trainer(_cfg("sgl"), _tiny())
    assert type(tr.method.cfg).__name__ == "SGLSettings" and not hasattr(tr.method.cfg, "lambda_de")


def test_two_methods_cannot_declare_one_key_differently():
    @dataclasses.dataclass
    class A(MethodSettings):
        shared: float = setting(0.1, "a")

    @dataclasses.dataclass
    class B(MethodSettings):
        shared: float = setting(0.2, "b")
    merged_config_class([A, A], "x")                        # the same declaration twice is one key
    with pytest.raises(TypeError, match="declared twice"):
        merged_config_class([A, B], "x")


def test_bounds_and_cross_setting_rules_come_from_the_method_modules():
    with pytest.raises(C.ConfigError, match=r"method\.sgl_keep_prob: must be in \(0, 1\]"):
        C.from_dict({"method": {"name": "sgl", "sgl_keep_prob": 0}})
    with pytest.raises(C.ConfigError, match=r"method\.top_k: must be in \[1, num_candidates\]"):
        C.from_dict({"method": {"name": "llmhni", "top_k": 9}})
    # the rule across settings is the chosen method's: DNS with one candidate is fine
    assert C.from_dict({"method": {"name": "dns", "num_candidates": 1}}).method.num_candidates == 1
    with pytest.raises(C.ConfigError, match=r"method\.predict_graph: must be 'denoised' or 'original'"):
        C.from_dict({"method": {"predict_graph": "both"}})


def test_old_configs_results_and_checkpoint_configs_still_load():
    # as results.json and checkpoints stored them: flat method keys, a partial signals mapping
    old = {"data": {"dataset": "ml-100k"}, "method": {"name": "sgl", "ssl_lambda": 0.05, "keep_prob": 0.7},
           "signals": {"judge": "embedding"}}
    cfg = C.from_dict(old)
    assert (cfg.method.sgl_lambda, cfg.method.sgl_keep_prob) == (0.05, 0.7)     # legacy keys, migrated
    assert isinstance(cfg.signals, SignalsConfig) and cfg.signals.judge == "embedding"
    # the resume check compares trajectories: the old mapping equals its full, typed re-reading
    assert C.trajectory_settings(old) == C.trajectory_settings(cfg.to_dict())
    # code that assigned a mapping to cfg.signals keeps working
    c2 = C.RunConfig()
    c2.signals = {"judge": "oracle"}
    assert c2.validate().signals.judge == "oracle"
    with pytest.raises(C.ConfigError, match=r"signals\.jduge: unknown key"):
        C.from_dict({"signals": {"jduge": "x"}})
    with pytest.raises(C.ConfigError, match="signals: judge must be one of"):
        C.from_dict({"signals": {"judge": "x"}})


def test_run_context_and_settings_are_typed():
    hints = inspect.get_annotations(methods.RunContext)
    assert "RunSettings" in str(hints["cfg"]) and "Signals" in str(hints["signals"])
    assert inspect.get_annotations(C.RunConfig)["signals"] in ("SignalsConfig", SignalsConfig)


def test_the_training_step_has_no_distributed_branches():
    src = inspect.getsource(Trainer.train_step)
    assert "self.dist" not in src and "world" not in src
    assert "strategy" in src


def test_sampler_spec_and_the_deprecated_keyword_form_agree():
    g = torch.Generator().manual_seed(0)
    u, i = torch.randint(0, 30, (400,), generator=g), torch.randint(0, 50, (400,), generator=g)
    s = NegativeSampler(u, i, 30, 50, seed=3)
    eu, ei = torch.randn(30, 8, generator=g), torch.randn(50, 8, generator=g)
    su, si = torch.randn(30, 4, generator=g), torch.randn(50, 4, generator=g)
    users = torch.arange(30)
    spec = SamplerSpec.llmhni(su, si, num_candidates=16, top_k=4, num_negatives=2)
    new = s.sample(users, spec=spec, user_emb=eu, item_emb=ei, offset=7)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        old = s.sample(users, mode="llmhni", num_candidates=16, top_k=4, num_negatives=2, user_emb=eu,
                       item_emb=ei, user_sem=su, item_sem=si, offset=7)
    assert torch.equal(new, old)
    assert any(issubclass(x.category, FutureWarning) and "SamplerSpec" in str(x.message) for x in w)
    assert [str(x.filename) for x in w if issubclass(x.category, FutureWarning)] == [__file__]  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # the spec form never warns
        s.sample(users, spec=SamplerSpec.dns(8), user_emb=eu, item_emb=ei)
        s.sample(users)
    with pytest.raises(TypeError, match="either spec or the keyword form"):
        s.sample(users, spec=spec, mode="dns")
    with pytest.raises(TypeError, match="unexpected keyword argument 'topk'"):
        s.sample(users, topk=3)
    with pytest.raises(ValueError, match="mode must be one of"):
        SamplerSpec("hard")
    with pytest.raises(ValueError, match="NegativeSampler.sample: mode must be one of"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s.sample(users, mode="hard")


def _tiny():
    from test_train_support import tiny_dataset
    return tiny_dataset()


def _cfg(name):
    cfg = C.RunConfig()
    cfg.method.name, cfg.model.dim, cfg.model.layers, cfg.train.progress = name, 8, 1, False
    return cfg.validate()
