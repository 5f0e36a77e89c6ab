"""Detection and grounding end to end: bad box cells through the CLI, a detection run
predicted, served and reported, the detection head overfitting a few scenes, and the
grounding head following the phrase. Scenes: digits on a canvas (bench/scenes.py)."""

from __future__ import annotations

import base64
import io
import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from bench.scenes import write_scenes
from fastapi.testclient import TestClient

import plait
from plait.config import parse_config
from plait.data.schema import resolve_config
from plait.encoders import EncoderOutput
from plait.errors import PlaitWarning
from plait.fusion.base import FusedOutput
from plait.heads import HEADS
from plait.heads.detection import Detections
from plait.predictor import Predictor
from plait.serve import ServeOptions, create_app
from tests.test_cli import plait_in

SIZE = 64
IMAGE = {
    "name": "image",
    "type": "image",
    "encoder": {"name": "cnn", "channels": [8, 16, 32], "out_dim": 16},
    "preprocessing": {"size": SIZE},
}
DETECTION = {"name": "detection", "channels": 32, "levels": 2, "convs": 1}


def config(epochs: int, head: dict, inputs: list | None = None, lr: float = 0.01) -> dict:
    return {
        "preset": "fast",
        "inputs": inputs or [IMAGE],
        "outputs": [
            {"name": "boxes", "type": "boxes", "head": head}
            if head["name"] == "detection"
            else {"name": "box", "type": "box", "head": head}  # a single box is never inferred
        ],
        "trainer": {
            "epochs": epochs,
            "batch_size": 4,
            "progress": False,
            "learning_rate": lr,
            "scheduler": "constant",
        },
    }


def scenes(
    folder: Path, n: int, seed: int = 0, counts: tuple[int, int] = (1, 2)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return write_scenes(folder, n, seed=seed, canvas=SIZE, sizes=(14, 20), counts=counts)


def box_colours(png: bytes) -> dict[str, int]:
    """Pixels of a report's box figure in the true boxes' green and the predicted ones'
    red (plait.report.plots.boxes); the scenes themselves are grey."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    colours = {"true": (44, 160, 44), "predicted": (214, 39, 40)}
    return {k: int((np.abs(pixels - c).max(axis=-1) <= 30).sum()) for k, c in colours.items()}


def report_figure(run_dir: Path, target: str) -> bytes:
    html = (run_dir / "report.html").read_text()
    alt = f"{target}: true and predicted boxes"
    found = re.search(f'<img src="data:image/png;base64,([^"]+)" alt="{alt}">', html)
    assert found, "no box figure in the report"
    return base64.b64decode(found.group(1))


def assert_predicted_boxes_drawn(run_dir: Path, target: str) -> None:
    """The report's figure shows predicted boxes (red) beside the true ones (green), and
    the red is theirs: the same samples drawn without predictions have none."""
    from plait.report import plots

    samples = json.loads((run_dir / "summary.json").read_text())["evaluation"][target]["samples"]
    assert samples and all(s["predicted"] for s in samples)
    drawn = box_colours(report_figure(run_dir, target))
    assert drawn["true"] > 0 and drawn["predicted"] > 0
    assert box_colours(plots.boxes([{**s, "predicted": []} for s in samples]))["predicted"] == 0


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ([[50, 10, 70, 30, 3]], "box [50, 10, 70, 30] lies outside the 64×64 image"),
        (
            [[30, 10, 20, 30, 3]],
            "box [30, 10, 20, 30] is inverted or empty; write [x0, y0, x1, y1] with x0 < x1 and y0 < y1",
        ),
        ([[1, 2, 3, "x", 3]], 'expected 4 finite numbers, got [1, 2, 3, "x"]'),
    ],
)
def test_bad_box_cells_stop_training_with_one_line_naming_column_row_and_value(
    tmp_path: Path, cell: list, problem: str
):
    detect, _ = scenes(tmp_path, 6)
    detect.loc[3, "boxes"] = json.dumps(cell)
    detect.to_csv(tmp_path / "bad.csv", index=False)
    result = plait_in(
        "train", tmp_path / "bad.csv", "-l", "boxes", "--preset", "fast", "--out", tmp_path / "run"
    )
    assert result.returncode == 2
    assert result.stderr == f"error: label column 'boxes', row 4, object 1: {problem}\n"
    assert not (tmp_path / "run").exists()


def test_a_box_target_on_a_table_with_two_image_columns_must_name_its_image(tmp_path: Path):
    detect, _ = scenes(tmp_path, 6)
    detect.assign(other=detect["image"]).to_csv(tmp_path / "two.csv", index=False)
    result = plait_in("train", tmp_path / "two.csv", "-l", "boxes", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "needs the image column its boxes are drawn on; the inputs hold image, other" in result.stderr


@pytest.mark.parametrize("conditioning", ["film", "cross_attention"])
def test_the_grounding_head_follows_the_phrase_and_falls_back_to_the_image(conditioning: str):
    torch.manual_seed(0)
    head = HEADS.build(
        "grounding",
        {"channels": 16, "levels": 2, "conditioning": conditioning},
        image_key="image",
        feature_channels={"image": (8, 16, 32), "phrase": ()},
        token_dims={"image": 16, "phrase": 12},
    )
    maps = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate((8, 16, 32))]
    image = EncoderOutput(
        torch.randn(2, 4, 16), torch.ones(2, 4, dtype=torch.bool), torch.randn(2, 16), maps, (32, 32)
    )

    def boxes(phrase: torch.Tensor, present: bool) -> torch.Tensor:
        words = EncoderOutput(phrase[:, None], torch.ones(2, 1, dtype=torch.bool), phrase)
        present_ = {"image": torch.ones(2, dtype=torch.bool), "phrase": torch.full((2,), present)}
        return head(
            FusedOutput(torch.zeros(2, 1), inputs={"image": image, "phrase": words}, present=present_)
        )

    a, b = torch.randn(2, 12), torch.randn(2, 12)
    assert not torch.allclose(boxes(a, True), boxes(b, True))  # only the phrase changed
    assert torch.equal(boxes(a, False), boxes(b, False))  # absent: whatever its placeholder holds
    assert torch.equal(boxes(torch.full((2, 12), float("nan")), False), boxes(a, False))


def tiny_timm_image(folder: Path, **params) -> dict:
    """The image input on timm's tiny `test_efficientnet`, randomly initialised and
    saved locally: the pretrained path (weights read from a file), offline."""
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=10)
    save_file(model.state_dict(), str(folder / "effnet.safetensors"))
    encoder = {"name": "timm", "model": "test_efficientnet", "path": str(folder / "effnet.safetensors")}
    return {**IMAGE, "encoder": {**encoder, "out_dim": 16, **params}}


def test_a_pretrained_backbone_runs_on_every_batch_and_its_stage_maps_reach_the_box_head(tmp_path: Path):
    detect, _ = scenes(tmp_path, 8)
    predictor = plait.fit(
        detect,
        label="boxes",
        config=config(1, DETECTION, [tiny_timm_image(tmp_path)]),
        base_dir=tmp_path,
        out=tmp_path / "run",
        verbose=False,
    )
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["inputs"][0]["encoder"]["params"]["cache"] is False  # set for the box target
    encoder, head = predictor.model.encoders["image"], predictor.model.heads["boxes"]
    assert encoder.backbone is not None and len(encoder.feature_channels) >= DETECTION["levels"]
    # The pyramid is built on the backbone's last stages ...
    fpn_in = [block[0].in_channels for block in head.pyramid.fpn.inner_blocks]
    assert fpn_in == list(encoder.feature_channels[-DETECTION["levels"] :])
    # ... and is fed, batch by batch, the very maps the backbone computed.
    seen: dict[str, list[torch.Tensor]] = {}

    def keep(name: str, maps: list[torch.Tensor]) -> None:
        seen.setdefault(name, maps)  # the first batch's

    hooks = [
        encoder.backbone.register_forward_hook(lambda m, a, out: keep("backbone", out.feature_maps)),
        head.pyramid.register_forward_hook(lambda m, a, out: keep("head", a[0]["image"].feature_maps)),
    ]
    predicted = predictor.predict(detect.iloc[:2], base_dir=tmp_path)
    for hook in hooks:
        hook.remove()
    assert [m.shape[1] for m in seen["head"]] == list(encoder.feature_channels)
    assert all(torch.equal(a, b) for a, b in zip(seen["backbone"], seen["head"], strict=True))
    reloaded = plait.load(tmp_path / "run").predict(detect.iloc[:2], base_dir=tmp_path)
    pd.testing.assert_frame_equal(predicted, reloaded)  # the backbone read again from its file


def test_cached_pretrained_features_under_a_box_target_are_refused_in_one_line(tmp_path: Path):
    detect, _ = scenes(tmp_path, 6)
    detect.to_csv(tmp_path / "detect.csv", index=False)
    image = tiny_timm_image(tmp_path, cache=True)  # one vector per image: no map to draw boxes on
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config(1, DETECTION, [image])))
    result = plait_in(
        "train", tmp_path / "detect.csv", "-l", "boxes", "-c", tmp_path / "c.yaml", "--out", tmp_path / "run"
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: image column 'image' carries boxes, whose head reads its encoder's feature maps; "
        "cache: true keeps one vector per image: leave cache out or set cache: false\n"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_detection_head_overfits_four_scenes(tmp_path: Path):
    detect, _ = scenes(tmp_path, 4, seed=1)
    table = pd.concat([detect.assign(split="train"), detect.assign(split="val")], ignore_index=True)
    predictor = plait.fit(
        table,
        label="boxes",
        config=config(60, DETECTION),
        base_dir=tmp_path,
        out=tmp_path / "run",
        verbose=False,
    )
    assert predictor.evaluate(detect, base_dir=tmp_path)["map_50"] >= 0.9
    assert_predicted_boxes_drawn(tmp_path / "run", "boxes")  # detections scoring ≥ 0.3 on every scene


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Path]:
    """A detection run (two epochs) on 16 scenes of 0-2 digits, some with no digit (`[]`)."""
    folder = tmp_path_factory.mktemp("scenes")
    detect, _ = scenes(folder, 16, counts=(0, 2))
    assert (detect["boxes"] == "[]").any()  # an image without objects: a label, not a missing one
    predictor = plait.fit(
        folder / "detect.csv", label="boxes", config=config(2, DETECTION), out=folder / "run", verbose=False
    )
    return predictor, folder


def test_predict_evaluate_and_the_report_of_a_detection_run(detection_run, tmp_path: Path):
    predictor, folder = detection_run
    out = tmp_path / "pred.csv"
    result = plait_in("predict", predictor.run_dir, folder / "detect.csv", "--output", out)
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(out)
    for cell in rows["boxes"]:
        for x0, y0, x1, y1, label, score in json.loads(cell):
            assert 0 <= x0 <= x1 <= SIZE and 0 <= y0 <= y1 <= SIZE and label in [str(d) for d in range(10)]
            assert 0.05 <= score <= 1  # the head's score threshold
    metrics = predictor.evaluate(folder / "detect.csv")
    assert set(metrics) == {"map", "map_50"} and 0 <= metrics["map"] <= metrics["map_50"] <= 1
    summary = json.loads((predictor.run_dir / "summary.json").read_text())
    samples = summary["evaluation"]["boxes"]["samples"]
    assert samples and all(s["image"] and "true" in s for s in samples)
    report = (predictor.run_dir / "report.html").read_text()
    assert "true and predicted boxes" in report
    # An unknown label in a table to evaluate: one line, exit 2.
    table = pd.read_csv(folder / "detect.csv")
    table.loc[2, "boxes"] = json.dumps([[1, 1, 9, 9, "eleven"]])
    table.to_csv(folder / "unknown.csv", index=False)
    result = plait_in("evaluate", predictor.run_dir, folder / "unknown.csv")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: label column 'boxes', row 3, object 1: unknown label 'eleven'; known: '0'"
    )


def test_serving_a_detection_run_returns_boxes(detection_run):
    predictor, folder = detection_run
    with TestClient(create_app(plait.load(predictor.run_dir), ServeOptions(allow_dir=folder))) as client:
        schema = client.get("/schema").json()
        assert schema["outputs"][0]["type"] == "boxes" and schema["outputs"][0]["fields"] == ["boxes"]
        response = client.post("/predict", json={"rows": [{"image": str(folder / "scenes/00000.png")}]})
    assert response.status_code == 200, response.text
    (found,) = response.json()["predictions"]
    expected = json.loads(
        predictor.predict(pd.DataFrame({"image": ["scenes/00000.png"]}), base_dir=folder)["boxes"][0]
    )
    assert found["boxes"] == expected  # JSON arrays, as predict writes them


PHRASE = {"name": "phrase", "type": "text", "encoder": {"name": "gru", "embed_dim": 8, "hidden_dim": 8}}


@pytest.fixture(scope="module")
def grounding_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Path, pd.DataFrame]:
    """A grounding run (two epochs) on 24 scenes of 2-3 digits, each row a phrase and its box."""
    folder = tmp_path_factory.mktemp("grounding")
    _, ground = scenes(folder, 24, counts=(2, 3))
    head = {"name": "grounding", "channels": 16, "levels": 2}
    predictor = plait.fit(
        ground,
        label="box",
        config=config(2, head, [IMAGE, PHRASE]),
        base_dir=folder,
        out=folder / "run",
        verbose=False,
    )
    return predictor, folder, ground


@pytest.mark.parametrize(
    ("flip", "with_phrase", "warned"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_flipping_a_box_targets_image_beside_a_text_input_warns_once_at_schema_time(
    tmp_path: Path, flip: bool, with_phrase: bool, warned: bool
):
    """horizontal_flip moves the boxes with the pixels but cannot rewrite "the 2nd from
    the left": a one-line warning when the model also reads a text input."""
    _, ground = scenes(tmp_path, 4, counts=(2, 3))
    image = {**IMAGE, "preprocessing": {**IMAGE["preprocessing"], "horizontal_flip": flip}}
    head = {"name": "grounding", "channels": 16, "levels": 2}
    cfg = parse_config(config(1, head, [image, PHRASE] if with_phrase else [image]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resolve_config(ground if with_phrase else ground.drop(columns="phrase"), cfg, ["box"])
    flips = [
        str(w.message) for w in caught if issubclass(w.category, PlaitWarning) and "flip" in str(w.message)
    ]
    expected = (
        "box target 'box': horizontal_flip mirrors image 'image' and its boxes but not the words of "
        "phrase, so a phrase such as 'the 2nd from the left' then points at another object; leave "
        "horizontal_flip out if the text names sides"
    )
    assert flips == ([expected] if warned else [])


def test_a_trained_grounding_run_changes_its_box_when_only_the_phrase_changes(grounding_run):
    predictor, folder, ground = grounding_run
    rows = ground[["image"]].iloc[:8]
    first = predictor.predict(rows.assign(phrase="the 1st from the left"), base_dir=folder)
    last = predictor.predict(rows.assign(phrase="the 3rd from the left"), base_dir=folder)
    assert (first["box"] != last["box"]).any() or not first["box_score"].equals(last["box_score"])
    alone = predictor.predict(rows.assign(phrase=""), base_dir=folder)  # no phrase: the image alone
    assert alone["box"].notna().all()
    metrics = predictor.evaluate(ground, base_dir=folder)
    assert set(metrics) == {"iou_accuracy", "mean_iou"}


def test_the_report_of_a_grounding_run_draws_the_predicted_boxes(grounding_run):
    predictor, _, _ = grounding_run
    assert_predicted_boxes_drawn(predictor.run_dir, "box")  # one box per row, whatever its score


def test_a_grounding_box_is_clipped_to_its_image(grounding_run):
    """A location's distances to the sides may reach past the image's edge; the box
    written (and scored) is the part inside it, as the true boxes are."""
    predictor, folder, ground = grounding_run
    predicted = predictor.predict(ground, base_dir=folder)
    for cell in predicted["box"]:
        x0, y0, x1, y1 = json.loads(cell)
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE, cell
    head = predictor.model.heads["box"]
    raw = torch.tensor([[[5.0, -0.2, 0.3, 0.5, 1.4], [0.0, 0.1, 0.1, 0.2, 0.2]]])  # (1, 2 locations, 5)
    assert head.activate(raw)[0, :4].tolist() == pytest.approx([0.0, 0.3, 0.5, 1.0])


def test_serving_a_grounding_run_returns_the_phrases_box(grounding_run):
    predictor, folder, ground = grounding_run
    row = {"image": str(folder / ground["image"][0]), "phrase": "the 2nd from the left"}
    with TestClient(create_app(plait.load(predictor.run_dir), ServeOptions(allow_dir=folder))) as client:
        schema = client.get("/schema").json()
        assert [(i["name"], i["type"]) for i in schema["inputs"]] == [("image", "image"), ("phrase", "text")]
        (output,) = schema["outputs"]
        assert output["type"] == "box" and output["fields"] == ["box", "box_score"]
        response = client.post("/predict", json={"rows": [row]})
    assert response.status_code == 200, response.text
    (found,) = response.json()["predictions"]
    expected = predictor.predict(pd.DataFrame([{**row, "image": ground["image"][0]}]), base_dir=folder)
    assert found["box"] == json.loads(expected["box"][0])  # a JSON array [x0, y0, x1, y1], as predict writes
    x0, y0, x1, y1 = found["box"]
    assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
    assert found["box_score"] == pytest.approx(expected["box_score"][0])


def test_explain_and_robustness_score_a_grounding_run_by_iou(grounding_run):
    predictor, folder, ground = grounding_run
    ground.to_csv(folder / "ground.csv", index=False)
    clean = predictor.evaluate(folder / "ground.csv")["iou_accuracy"]
    importance = predictor.explain(folder / "ground.csv", bootstrap=2)
    assert importance.metric == "iou_accuracy" and importance.clean == pytest.approx(clean)
    removed = importance.inputs.query("method == 'remove'").set_index("input")["score"]
    assert set(removed.index) == {"image", "phrase"} and removed.between(0, 1).all()
    robustness = predictor.robustness(folder / "ground.csv", levels=(0.5,))
    assert robustness.metric == "iou_accuracy" and robustness.clean == pytest.approx(clean)
    assert "iou_accuracy" in robustness.noise.columns and "iou_accuracy" in robustness.missing.columns


def test_a_row_without_its_image_gets_no_detection_whatever_its_placeholder():
    torch.manual_seed(0)
    head = HEADS.build(
        "detection",
        {"channels": 32, "levels": 2, "score_threshold": 0.0},
        num_classes=3,
        image_key="image",
        feature_channels={"image": (8, 16, 32)},
        token_dims={"image": 16},
    ).eval()

    def detections(fill: float) -> torch.Tensor:
        maps = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate((8, 16, 32))]
        maps = [torch.cat([m[:1], torch.full_like(m[1:], fill)]) for m in maps]  # row 2: a placeholder
        image = EncoderOutput(
            torch.zeros(2, 1, 16), torch.ones(2, 1, dtype=torch.bool), torch.zeros(2, 16), maps, (32, 32)
        )
        present = {"image": torch.tensor([True, False])}
        return head.activate(head(FusedOutput(torch.zeros(2, 1), inputs={"image": image}, present=present)))

    torch.manual_seed(1)
    zeros = detections(0.0)
    torch.manual_seed(1)
    nans = detections(float("nan"))
    assert (zeros[0, :, 4] >= 0).any()  # the row with its image: detections (no score threshold)
    assert (zeros[1, :, 4] == -1).all() and torch.equal(zeros, nans)


# Candidate boxes of one 64×64 image, as FCOS's locations would propose them: (centre,
# class, logit). Every box is 16×16 (an 8-pixel anchor, distances 1 anchor to each side).
CANDIDATES = [
    ((20, 20), 0, 4.0),  # the best
    ((21, 20), 0, 3.0),  # a near copy of it, same class (IoU 0.88): a duplicate
    ((44, 44), 1, 2.0),
    ((44, 12), 1, 1.0),
    ((12, 44), 1, 0.0),  # score sqrt(sigmoid(0)) ≈ 0.71
]


def detect_candidates(**settings: float) -> list[tuple[list[float], int]]:
    """The detection head's output, through its own post-processing, on CANDIDATES:
    [(box in pixels, class)] in the order it ranks them."""
    head = HEADS.build(
        "detection",
        {"channels": 32, "levels": 1, **settings},
        num_classes=2,
        image_key="image",
        feature_channels={"image": (8,)},
        token_dims={"image": 16},
    )
    n = len(CANDIDATES) + 3  # three locations that find nothing
    logits = torch.full((1, n, 2), -20.0)
    centres = [(c, c) for c in (4.0, 36.0, 60.0)]
    for i, ((x, y), label, logit) in enumerate(CANDIDATES):
        logits[0, i, label] = logit
        centres.insert(i, (x, y))
    anchors = torch.tensor([[x - 4, y - 4, x + 4, y + 4] for x, y in centres], dtype=torch.float32)
    outputs = {
        "cls_logits": logits,
        "bbox_regression": torch.ones(1, n, 4),  # in anchor sizes: 8 pixels to each side
        "bbox_ctrness": torch.full((1, n, 1), 20.0),  # centredness ≈ 1
    }
    raw = Detections(outputs, [anchors], [n], (SIZE, SIZE), torch.tensor([True]))
    found = head.activate(raw)[0]  # (detections_per_image, 6)
    assert found.shape == (settings.get("detections_per_image", 100), 6)
    kept = found[found[:, 4] >= 0]
    assert (found[len(kept) :, 4] == -1).all()  # rows past the detections: none
    return [([round(v * SIZE, 3) for v in row[:4].tolist()], int(row[4])) for row in kept]


def box_at(x: int, y: int) -> list[float]:
    return [x - 8.0, y - 8.0, x + 8.0, y + 8.0]


def test_the_detection_heads_nms_and_detections_per_image_settings_apply():
    best, duplicate, *others = [(box_at(*centre), label) for centre, label, _ in CANDIDATES]
    assert detect_candidates() == [best, *others]  # NMS (IoU 0.6) drops the duplicate
    assert detect_candidates(nms_threshold=0.95) == [best, duplicate, *others]  # 0.88 < 0.95: both kept
    assert detect_candidates(detections_per_image=2) == [best, others[0]]  # the two best, in order
    assert detect_candidates(score_threshold=0.8) == [best, *others[:2]]  # 0.71 falls below


def test_export_refuses_a_detection_run_in_one_line(detection_run, tmp_path: Path):
    predictor, _ = detection_run
    result = plait_in("export", predictor.run_dir, "--format", "onnx", "--output", tmp_path / "m.onnx")
    assert result.returncode == 2
    assert result.stderr == (
        "error: cannot export: target 'boxes' draws boxes in pixels of each row's image, which the "
        "exported file's runtime cannot size; serve it with plait serve\n"
    )


def test_coco_annotations_convert_to_a_boxes_table(tmp_path: Path):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30)).save(tmp_path / "imgs" / name)
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png"},
        ],
        "categories": [{"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}],
        "annotations": [
            {"image_id": 1, "bbox": [2, 3, 10, 5], "category_id": 3},
            {"image_id": 1, "bbox": [30, 20, 12.5, 10], "category_id": 5},  # overruns: clipped to 40×30
            {"image_id": 1, "bbox": [0, 0, 4, 4], "category_id": 5, "iscrowd": 1},  # a crowd: left out
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    out = tmp_path / "tables" / "coco.parquet"
    result = plait_in("convert", "coco", tmp_path / "ann.json", "--images", tmp_path / "imgs", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"wrote 2 images with 2 boxes to {out}; 1 crowd or empty box(es) left out\n"
    table = pd.read_parquet(out)
    assert table["image"].tolist() == ["../imgs/a.png", "../imgs/b.png"]  # relative to the table
    assert json.loads(table["boxes"][0]) == [[2, 3, 12, 8, "cat"], [30, 20, 40, 30, "dog"]]
    assert json.loads(table["boxes"][1]) == []
    from plait.data.processors import BoxesTarget

    proc = BoxesTarget(image="image")
    proc.base_dir = out.parent
    assert proc.fit(table, "boxes").transform(table, "boxes").shape == (2, 2, 5)
    bad = plait_in(
        "convert", "coco", tmp_path / "imgs" / "a.png", "--images", tmp_path, "-o", tmp_path / "x.csv"
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_explain_and_robustness_score_a_detection_run_by_map(detection_run):
    predictor, folder = detection_run
    importance = predictor.explain(folder / "detect.csv", bootstrap=2)
    assert importance.metric == "map"
    removed = importance.inputs.query("method == 'remove'")["score"].item()
    assert removed == 0.0  # without its image, nothing is found
    robustness = predictor.robustness(folder / "detect.csv", levels=(0.5,))
    assert robustness.metric == "map" and "map" in robustness.noise.columns
