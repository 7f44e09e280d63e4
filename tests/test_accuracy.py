"""Accuracy next to cost: published top-1, measured top-1/top-5 (--data, --weights), the
frontier. Offline: images are generated, checkpoints saved from random-init models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import read_report
from PIL import Image

from archbench.accuracy.data import chosen, scan
from archbench.accuracy.evaluate import accuracy, topk_correct
from archbench.accuracy.weights import TIMM_TAGS, mismatch, read_checkpoint, unwrap
from archbench.core.accuracy import Published, published_for
from archbench.core.errors import UsageError
from archbench.report.frontier import Point, frontier_figures, frontier_rows, pareto
from archbench.report.report import Report

FAST = ("--warmup", "0", "--min-time", "0", "--repeat", "1")


def _image(path: Path, rgb=None, seed: int = 0, size=(40, 48)) -> None:
    """A PNG: one colour, or (by ``seed``) a random colour with a band of its complement."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if rgb is None:
        rgb = np.random.default_rng(seed).integers(0, 256, 3)
    pixels = np.full((*size, 3), rgb, dtype=np.uint8)
    pixels[:, : (4 * seed) % size[1]] = 255 - pixels[:, : (4 * seed) % size[1]]
    Image.fromarray(pixels).save(path)


def _image_folder(root: Path, classes: int = 4, per_class: int = 3) -> list[Path]:
    """An ImageFolder of images of different sizes; the paths in evaluation order."""
    paths = []
    for c in range(classes):
        for i in range(per_class):
            path = root / f"class{c}" / f"img{i}.png"
            _image(path, seed=per_class * c + i, size=(36 + 5 * i, 44 + 3 * c))
            paths.append(path)
    return paths


# -- published figures --

def test_published_figures_of_the_built_in_variants(plugin_manager):
    from archbench.core.registry import Registry

    registry = Registry.from_plugins(plugin_manager)
    variants = [(f"{a}:{n}", v) for a in ("vit", "swin", "hornet")
                for n, v in registry.get(a).variants.items()]
    assert {name: v.published.top1 for name, v in variants if v.published} == {
        "vit:tiny": 72.2, "vit:small": 79.8, "vit:base": 81.8, "vit:base_384": 83.1,
        "swin:tiny": 81.3, "swin:small": 83.0, "swin:base": 83.5, "swin:base_384": 84.5,
        "swin:large": 86.3, "swin:large_384": 87.3, "hornet:tiny": 82.8,
        "hornet:tiny_gf": 83.0, "hornet:small": 83.8, "hornet:small_gf": 84.0,
        "hornet:base": 84.2, "hornet:base_gf": 84.3}
    assert {name for name, v in variants if v.published is None} == {
        "vit:large", "vit:huge", "vit:base_patch32", "hornet:large", "hornet:large_gf",
        "hornet:large_gf_384"}
    assert {name for name, v in variants if v.published and
            v.published.pretrain == "ImageNet-22k"} == {"swin:large", "swin:large_384"}
    assert all(("Table" in v.published.source or "DeiT" in v.published.source)
               for _, v in variants if v.published)


def test_published_is_only_for_the_variant_as_registered(plugin_manager):
    from archbench.core.registry import Registry

    registry = Registry.from_plugins(plugin_manager)
    assert published_for(registry.resolve("swin:tiny")).top1 == 81.3
    assert published_for(registry.resolve("vit:small", overrides={"depth": "12"})).top1 == 79.8
    for target, extra in (("vit:small[depth=6]", {}), ("vit:small@384", {}),
                          ("swin:tiny+msa", {}), ("swin:tiny", {"img_size": 256})):
        assert published_for(registry.resolve(target, **extra)) is None, target
    for bad, message in (((101.0, "somewhere"), "percentage"), ((80.0, " "), "where")):
        with pytest.raises(ValueError, match=message):
            Published(*bad)


def test_list_json_and_compare_rows_carry_published(run_cli):
    listed = json.loads(run_cli("list", "swin:large*", "--json").stdout)
    published = listed[0]["published"]
    assert (published["top1"], published["pretrain"]) == (86.3, "ImageNet-22k")
    assert "Table 1(b)" in published["source"]
    result = run_cli("compare", "vit:tiny", "vit:tiny[depth=1]", "--no-latency")
    assert result.exit_code == 0, result.output
    rows = read_report(result.run_dir)["rows"]
    assert rows[0]["top1_published"] == 72.2
    assert "DeiT" in rows[0]["top1_source"] and rows[0]["top1_pretrain"] == "ImageNet-1k"
    assert rows[1].get("top1_published") is None  # depth 1 is not DeiT-Ti
    assert "top1_published" in result.stdout


@pytest.mark.slow
def test_compare_vit_swin_hornet_shows_published_with_sources(run_cli):
    result = run_cli("compare", "vit", "swin", "hornet", "--no-latency")
    assert result.exit_code == 0, result.output
    report = read_report(result.run_dir)
    assert [(r["model"], r["top1_published"]) for r in report["rows"]] == [
        ("vit:small", 79.8), ("swin:tiny", 81.3), ("hornet:tiny", 82.8)]
    assert all(r["top1_source"] for r in report["rows"])
    table = next(v for t, v in report["tables"].items() if t.startswith("Accuracy frontier"))
    assert {r["model"]: r["vs_gmacs"] for r in table} == {  # HorNet-T: fewest GMACs, best
        "vit:small": "dominated by hornet:tiny", "swin:tiny": "dominated by hornet:tiny",
        "hornet:tiny": "on the frontier"}


# -- top-k arithmetic --

def test_topk_counts_on_hand_made_logits():
    logits = torch.tensor([[9.0, 1, 2, 3, 4, 5, 0],   # target 0: top-1
                           [0.0, 9, 8, 7, 6, 5, 1],   # target 5: 5th highest → top-5 only
                           [0.0, 9, 8, 7, 6, 5, 1],   # target 6: 6th → neither
                           [1.0, 2, 3, 4, 5, 6, 7]])  # target 2: 5th highest → top-5
    found = topk_correct(logits, torch.tensor([0, 5, 6, 2]))
    assert found == {1: 1, 5: 3} and accuracy(found, 4) == {"top1": 25.0, "top5": 75.0}
    assert topk_correct(logits[:, :3], torch.tensor([0, 1, 2, 0])) == {1: 2, 5: None}


def test_limit_takes_evenly_spaced_images():
    samples = tuple((f"img{i}", i // 3) for i in range(12))
    assert chosen(samples, None) == samples and chosen(samples, 50) == samples
    assert [s[0] for s in chosen(samples, 4)] == ["img0", "img3", "img6", "img9"]
    assert {s[1] for s in chosen(samples, 4)} == {0, 1, 2, 3}  # every class, not the first


# -- a model whose outputs are known --------------------------------------------------------

#: Pure colours and the class folder each goes to: the toy model below scores red as
#: class 0, green as 1, blue as 2, then 3 > 4 > ... > 9 by its biases.
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
KNOWN = {"c0": [RED, RED], "c1": [GREEN], "c2": [BLUE], "c3": [RED], "c4": [GREEN],
         "c5": [RED], "c6": [RED], "c7": [RED], "c8": [RED], "c9": [RED]}


def _known_toy_checkpoint(path: Path) -> None:
    """The test plugin's toy model (conv 3→8, ReLU, mean pool, linear 8→10) with weights
    that pass each colour channel through and score channel c as class c."""
    conv = torch.zeros(8, 3, 3, 3)
    for c in range(3):
        conv[c, c, 1, 1] = 1.0
    linear = torch.zeros(10, 8)
    linear[0, 0] = linear[1, 1] = linear[2, 2] = 1.0
    bias = torch.tensor([0.0, 0, 0, -1, -2, -3, -4, -5, -6, -7])
    torch.save({"0.weight": conv, "0.bias": torch.zeros(8), "4.weight": linear,
                "4.bias": bias}, path)


def test_known_model_top1_top5_and_a_corrupt_image(run_cli, tmp_path):
    data = tmp_path / "data"
    for folder, colours in KNOWN.items():
        for i, rgb in enumerate(colours):
            _image(data / folder / f"img{i}.png", rgb)
    (data / "c9" / "broken.png").write_bytes(b"\x89PNG but not really")
    _known_toy_checkpoint(tmp_path / "toy.pt")
    result = run_cli("compare", "toy", "--data", str(data), "--weights",
                     str(tmp_path / "toy.pt"), *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    # top-1: c0 x2, c1, c2 → 4 of 11; top-5 adds c3 (red: 0,1,2,3,4) and c4 (green)
    assert row["eval_images"] == 11 and row["eval_skipped"] == 1
    assert (row["top1"], row["top5"]) == pytest.approx((100 * 4 / 11, 100 * 6 / 11))
    assert "could not be read" in row["eval_note"] and "broken.png" in row["eval_note"]
    assert row["details"]["eval_targets"] == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert row["details"]["eval_predictions"] == [0, 0, 1, 2, 0, 1, 0, 0, 0, 0, 0]
    assert row["eval_weights"].startswith(str(tmp_path / "toy.pt"))
    assert "timm's defaults" in row["details"]["eval_preprocess_config"]["source"]
    assert "ImageFolder, 10 class folders" in row["eval_labels"] and "top1" in result.stdout


def test_a_model_that_cannot_be_built_on_the_meta_device_is_checked_in_its_row(
        run_cli, tmp_path):
    """The plan's weights and class-count check builds on the meta device; a model that
    cannot be built there skips that check instead of stopping the run."""
    data = tmp_path / "data"
    for folder, colours in KNOWN.items():
        _image(data / folder / "img0.png", colours[0])
    _known_toy_checkpoint(tmp_path / "toy.pt")
    result = run_cli("compare", "toy:no-meta", "--data", str(data), "--weights",
                     str(tmp_path / "toy.pt"), *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["status"] == "ok" and row["eval_images"] == 10
    assert "toy:no-meta: 10/10 images" in result.stderr  # the run's progress lines


# -- archbench's predictions are timm's --

def _timm_checkpoint(path: Path, **kwargs) -> torch.nn.Module:
    """A randomly initialised timm DeiT-Ti (its head spread wide, so predictions differ
    from image to image), saved the way official releases wrap it."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False, **kwargs).eval()
    with torch.no_grad():
        model.head.weight.normal_(0, 1.0)
    torch.save({"model": model.state_dict(), "epoch": 3}, path)
    return model


def _timm_predictions(model: torch.nn.Module, paths: list[Path]) -> list[int]:
    import timm.data

    config = timm.data.resolve_model_data_config(model)
    transform = timm.data.create_transform(**config, is_training=False)
    with torch.no_grad():
        x = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
        return model(x).argmax(dim=1).tolist()


def test_predictions_equal_timms_image_by_image(run_cli, tmp_path):
    paths = _image_folder(tmp_path / "data")
    reference = _timm_checkpoint(tmp_path / "deit.pth", depth=1, num_classes=4)
    expected = _timm_predictions(reference, paths)
    assert len(set(expected)) > 1  # not a model that answers one class for everything
    result = run_cli("compare", "vit:tiny[depth=1,num_classes=4]", "--data",
                     str(tmp_path / "data"), "--weights", str(tmp_path / "deit.pth"), *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["details"]["eval_predictions"] == expected
    assert row["details"]["eval_targets"] == [i // 3 for i in range(12)]
    assert row["top1"] == pytest.approx(100 * sum(
        p == t for p, t in zip(expected, row["details"]["eval_targets"])) / 12)
    assert row["eval_preprocess"].startswith("resize 248 bicubic, center crop 224")
    assert row["details"]["eval_preprocess_config"]["source"] == (
        f"timm pretrained_cfg of {TIMM_TAGS['vit:tiny']}")


@pytest.mark.slow
def test_weights_timm_loads_through_timm_from_the_hub_cache(run_cli, tmp_path, monkeypatch):
    """``--weights timm`` with the weights in the Hugging Face cache and no network: timm's
    own machinery loads them; the predictions are those of the cached weights."""
    from huggingface_hub import constants
    from safetensors.torch import save_file

    tag = TIMM_TAGS["vit:tiny"]
    reference = _timm_checkpoint(tmp_path / "unused.pth")
    snapshot = tmp_path / "hub" / f"models--timm--{tag}" / "snapshots" / "0123abcd"
    (snapshot.parent.parent / "refs").mkdir(parents=True)
    (snapshot.parent.parent / "refs" / "main").write_text("0123abcd")
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
              snapshot / "model.safetensors")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    # ImageNet WordNet ids as folder names: each takes its ImageNet-1k index
    data = tmp_path / "data"
    paths = [data / wnid / f"{i}.png" for wnid in ("n01440764", "n01443537") for i in (0, 1)]
    for n, path in enumerate(paths):
        _image(path, seed=n)
    result = run_cli("compare", "vit:tiny", "--data", str(data), "--weights", "timm", *FAST)
    assert result.exit_code == 0, result.output
    row = read_report(result.run_dir)["rows"][0]
    assert row["eval_weights"] == f"timm:{tag}" and row["details"]["eval_targets"] == [0, 0, 1, 1]
    assert row["details"]["eval_predictions"] == _timm_predictions(reference, paths)
    assert row["top1_published"] == 72.2  # published and measured side by side


# -- folders and labels --

def test_flat_folder_with_a_labels_csv(tmp_path):
    for name in ("ILSVRC2012_val_00000001.JPEG", "b.png", "c.png"):
        _image(tmp_path / "val" / name)
    kaggle = tmp_path / "LOC_val_solution.csv"
    kaggle.write_text("ImageId,PredictionString\n"
                      "ILSVRC2012_val_00000001,n01443537 1 2 3 4\n"  # no extension: .JPEG
                      "b.png,n01440764\n")
    found = scan(tmp_path / "val", kaggle)
    assert [Path(p).name for p, _ in found.samples] == ["ILSVRC2012_val_00000001.JPEG", "b.png"]
    assert [label for _, label in found.samples] == [1, 0] and found.classes == 1000
    (tmp_path / "ints.csv").write_text("b.png,7\nc.png,3\n")
    found = scan(tmp_path / "val", tmp_path / "ints.csv")
    assert [label for _, label in found.samples] == [7, 3] and found.classes is None
    (tmp_path / "names.csv").write_text("filename,label\nb.png,zebra\nc.png,ant\n")
    found = scan(tmp_path / "val", tmp_path / "names.csv")
    assert [label for _, label in found.samples] == [1, 0] and found.classes == 2
    (tmp_path / "missing.csv").write_text("b.png,1\nnope.png,2\n")
    with pytest.raises(UsageError, match="1 listed image.*not found.*'nope.png' \\(line 2\\)"):
        scan(tmp_path / "val", tmp_path / "missing.csv")


def test_checkpoint_formats_and_key_mismatch(tmp_path):
    from safetensors.torch import save_file

    state = {"a.weight": torch.ones(2, 3), "b.bias": torch.zeros(2)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.ckpt")
    save_file(state, tmp_path / "w.safetensors")
    for name in ("w.ckpt", "w.safetensors"):
        loaded = read_checkpoint(tmp_path / name)
        assert set(loaded) == set(state) and torch.equal(loaded["a.weight"], state["a.weight"])
    with pytest.raises(ValueError, match="not a state_dict"):
        unwrap([1, 2], "x.pt")
    text = mismatch({"a.weight": (2, 3), "b.bias": (2,), "c": (1,)},
                    {"a.weight": (3, 3), "b.bias": (2,), "extra": (4,)})
    assert text == ("1 missing key(s), the first 'c'; 1 unexpected key(s), the first 'extra'; "
                    "1 shape mismatch(es), the first 'a.weight': checkpoint (3, 3) vs model "
                    "(2, 3)")


# -- bad input: one line, exit 2, nothing written --

@pytest.fixture
def bad_inputs(tmp_path, monkeypatch):
    """Folders and a checkpoint; timm's weights neither cached nor downloadable."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _image_folder(tmp_path / "data")
    (tmp_path / "nothing").mkdir()
    _image(tmp_path / "loose" / "a.png")
    _image_folder(tmp_path / "holey", classes=2)
    (tmp_path / "holey" / "class9").mkdir()
    _known_toy_checkpoint(tmp_path / "toy.pt")
    return tmp_path


GOOD = "--data {t}/data --weights {t}/toy.pt"


@pytest.mark.parametrize(("args", "message"), [
    ("toy --data {t}/missing --weights {t}/toy.pt", "missing: does not exist"),
    ("toy --data {t}/nothing --weights {t}/toy.pt", "no class folders"),
    ("toy --data {t}/loose --weights {t}/toy.pt", "1 images lie there"),
    ("toy --data {t}/holey --weights {t}/toy.pt", "'class9' holds no image"),
    ("toy " + GOOD, "4 classes .* but toy:tiny's head has 10"),
    ("vit:tiny[depth=1,num_classes=4] " + GOOD, r"does not fit vit:tiny\[depth=1,num_classes=4\]:"
     r" .*missing key.*'cls_token'.*unexpected key.*'0.weight'"),
    ("toy --data {t}/data --weights {t}/nope.pt", "nope.pt: no such file"),
    ("toy --data {t}/data", "--data needs --weights"),
    ("toy --weights timm", "--weights applies to --data"),
    ("toy --no-latency " + GOOD, "with --no-latency nothing is timed"),
    ("toy --mode train " + GOOD, "--mode train"),
    ("hornet:tiny --data {t}/data --weights timm", "timm has no hornet.*hornet:tiny=PATH"),
    ("vit:tiny --data {t}/data --weights timm", "HF_HUB_OFFLINE.*pass --weights PATH"),
    ("toy --data {t}/data --weights vit={t}/toy.pt", "vit is none of the models"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, bad_inputs, args, message):
    result = run_cli("compare", *args.format(t=bad_inputs).split(), *FAST)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("archbench: error: ") and re.search(message, lines[-1]), lines
    assert result.run_dir is None  # nothing written


# -- the frontier --

def test_pareto_on_hand_made_points():
    pts = [Point("a", 10, 80, True), Point("b", 20, 79, True), Point("c", 30, 85, False),
           Point("d", 10, 80, True), Point("e", 5, 70, True), Point("f", 40, 85, True)]
    assert pareto(pts) == [None, 0, None, None, None, 2]  # b by a (cheapest), f by c


def _row(model, device, latency, gmacs, top1=None, published=None, **extra):
    return {"model": model, "arch": model.partition(":")[0], "input": "224x224",
            "batch_size": 1, "device": "cpu", "dtype": "fp32", "mode": "infer",
            "status": "ok", "device_name": device, "latency_ms_median": latency,
            "gmacs": gmacs, "top1": top1, "top1_published": published, **extra}


def _report(rows):
    return Report(kind="compare", command="test", created="now", environment={},
                  settings={}, rows=rows, details=[{"group": 0} for _ in rows])


def test_frontier_per_device_measured_before_published():
    report = _report([
        _row("vit:small", "cpu A", 100.0, 4.6, top1=79.9, published=79.8),
        _row("swin:tiny", "cpu A", 150.0, 4.5, published=81.3),
        _row("hornet:tiny", "cpu A", 140.0, 4.0, published=82.8),
        _row("vit:small", "gpu B", 2.0, 4.6, published=79.8),
        _row("swin:tiny", "gpu B", 6.0, 4.5, published=86.3, top1_pretrain="ImageNet-22k"),
        _row("timm:resnet50", "gpu B", 3.0, 4.1),
    ])
    table = {(r["device"], r["model"]): (r["top1"], r["top1_from"], r["vs_latency"],
                                         r["vs_gmacs"]) for r in frontier_rows(report)}
    hornet = "dominated by hornet:tiny"
    assert table == {  # resnet50 has no top-1: not on the plane
        ("cpu A", "vit:small"): (79.9, "measured", "on the frontier", hornet),
        ("cpu A", "swin:tiny"): (81.3, "published", hornet, hornet),
        ("cpu A", "hornet:tiny"): (82.8, "published", "on the frontier", "on the frontier"),
        ("gpu B", "vit:small"): (79.8, "published", "on the frontier", "dominated by swin:tiny"),
        ("gpu B", "swin:tiny"): (86.3, "published (ImageNet-22k)", "on the frontier",
                                 "on the frontier")}
    figures = frontier_figures(report)
    assert [f.stem for f in figures] == ["frontier_1", "frontier_2"]
    assert all(f.files[f"{f.stem}.png"].startswith(b"\x89PNG") for f in figures)


def test_archbench_report_merges_a_frontier_per_device(tmp_path):
    from archbench.builtin.writers import render_json
    from archbench.report.frontier import FRONTIER_TITLE
    from archbench.report.merge import merge_runs

    for name, device, rows in (
        ("run-a", "cpu A", [_row("vit:small", None, 100.0, 4.6, top1=79.0),
                            _row("swin:tiny", None, 150.0, 4.5, top1=81.0)]),
        ("run-b", "gpu B", [_row("vit:small", None, 2.0, 4.6, top1=79.0),
                            _row("swin:tiny", None, 1.5, 4.5, top1=81.0)]),
    ):
        report = _report(rows)
        report.environment = {"device_name": device, "torch": "2"}
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(render_json(report))
    merged = merge_runs([tmp_path / "run-a", tmp_path / "run-b"], "archbench report", "now")
    verdicts = {(r["device"], r["model"]): r["vs_latency"] for r in merged.tables[FRONTIER_TITLE]}
    assert verdicts == {("cpu A", "vit:small"): "on the frontier",
                        ("cpu A", "swin:tiny"): "on the frontier",
                        ("gpu B", "vit:small"): "dominated by swin:tiny",
                        ("gpu B", "swin:tiny"): "on the frontier"}
