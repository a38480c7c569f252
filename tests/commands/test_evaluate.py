"""`mvd test / extract / linear-probe / knn / predict`: merge logic, probes, commands end to end."""
import argparse
import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mvd
from mvd.cli import main
from mvd.commands import evaluate
from mvd.data import MultiViewDataset, load_annotations
from mvd.engine.config import load_config
from mvd.eval.features import FeatureSet, frozen_features, merge_shards, save_shard
from mvd.eval.merge import ViewPrediction, iter_view_files, merge_views, video_accuracy
from mvd.eval.multiview import write_views
from mvd.eval.probes import knn_scores, linear_probe

from .conftest import FRAMES, data_args


def view(video, chunk, split, label, probs, shift=0.0):
    """A view whose logits are log(probs) + shift, so its softmax is exactly ``probs``."""
    return ViewPrediction(video, chunk, split, label, tuple(math.log(p) + shift for p in probs))


HAND_VIEWS = [
    view("a", 0, 0, 0, [0.5, 0.25, 0.25], shift=5.0),
    view("a", 0, 1, 0, [0.1, 0.6, 0.3]),
    view("b", 0, 0, 2, [0.2, 0.3, 0.5]),
    view("v", 1, 11, 1, [0.1, 0.2, 0.7]),
    view("v", 11, 1, 1, [0.3, 0.4, 0.3], shift=-2.0),  # "v"+"1"+"11" == "v"+"11"+"1" in the reference
    view("a", 0, 1, 0, [0.1, 0.6, 0.3]),                # sampler padding repeat: dropped
]


def test_merge_softmax_average_dedupe_and_topk_by_hand():
    videos = {v.video_id: v for v in merge_views(HAND_VIEWS)}
    assert [v.num_views for v in videos.values()] == [2, 1, 2]
    torch.testing.assert_close(videos["a"].probs, torch.tensor([0.3, 0.425, 0.275], dtype=torch.float64))
    torch.testing.assert_close(videos["v"].probs, torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))
    # a: predicts 1 (label 0 second); b: right; v: predicts 2 (label 1 second).
    result = video_accuracy(list(videos.values()), ks=(1, 2))
    assert result["top1"] == pytest.approx(100 / 3) and result["top2"] == pytest.approx(100.0)
    assert (result["num_videos"], result["num_views"]) == (3, 5)


def test_merge_rejects_inconsistent_labels_and_malformed_lines(tmp_path):
    with pytest.raises(ValueError, match="different labels"):
        merge_views([view("a", 0, 0, 0, [0.5, 0.5]), view("a", 1, 0, 1, [0.5, 0.5])])
    bad = tmp_path / "rank0.jsonl"
    bad.write_text(HAND_VIEWS[0].to_json() + "\n{not json\n")
    with pytest.raises(ValueError, match="rank0.jsonl:2"):
        list(iter_view_files([bad]))


def test_merge_only_combines_two_rank_files(tmp_path, capsys):
    # Rank 1 ends with rank 0's first view, as DistributedSampler pads.
    write_views(HAND_VIEWS[:3], tmp_path / "predictions" / "rank0.jsonl")
    write_views(HAND_VIEWS[3:], tmp_path / "predictions" / "rank1.jsonl")
    assert main(["test", "--output-dir", str(tmp_path), "--merge-only"]) == 0
    results = json.loads((tmp_path / "test_results.json").read_text())
    assert results["top1"] == pytest.approx(100 / 3) and results["top5"] == 100.0
    assert (results["num_videos"], results["num_views"]) == (3, 5)
    rows = list(csv.DictReader(open(tmp_path / "test_predictions.csv")))
    assert [(r["video_id"], r["prediction"]) for r in rows] == [("a", "1"), ("b", "2"), ("v", "2")]
    assert "top-1 33.33" in capsys.readouterr().out


def direct_video_probs(model_path, synth, clips, crops, size, short_side=None, stride=2):
    """Expected per-video probabilities, computed without the command."""
    model = mvd.load_model(model_path).eval()
    samples = load_annotations(str(synth / "appearance"), str(synth), split="test", labelled=True)
    dataset = MultiViewDataset(samples, num_clips=clips, num_crops=crops, num_frames=FRAMES,
                               stride=stride, input_size=size, short_side_size=short_side)
    with torch.no_grad():
        return {s.key: model(dataset.load(s, None)[0]).softmax(-1).mean(0) for s in samples}


def read_rows(path):
    return {r["video_id"]: r for r in csv.DictReader(open(path))}


def check_against_direct(out, expected, views_per_video):
    rows = read_rows(out / "test_predictions.csv")
    assert set(rows) == set(expected)
    for key, probs in expected.items():
        assert int(rows[key]["prediction"]) == int(probs.argmax())
        assert float(rows[key]["probability"]) == pytest.approx(float(probs.max()), abs=1e-5)
        assert int(rows[key]["num_views"]) == views_per_video
    results = json.loads((out / "test_results.json").read_text())
    labels = {r["video_id"]: int(r["label"]) for r in rows.values()}
    top1 = 100 * sum(int(p.argmax()) == labels[k] for k, p in expected.items()) / len(expected)
    assert results["top1"] == pytest.approx(top1)
    assert results["num_views"] == views_per_video * len(expected)


def test_one_view_per_video(synth, ckpt, tmp_path):
    out = tmp_path / "out"
    assert main(["test", "--output-dir", str(out), "--checkpoint", str(ckpt.classifier),
                 "--num-clips", "1", "--num-crops", "1", *data_args(synth)]) == 0
    check_against_direct(out, direct_video_probs(ckpt.classifier, synth, 1, 1, 64), 1)


@pytest.fixture(scope="module")
def six_views(synth, ckpt, tmp_path_factory):
    """2 clips (frames 0-7 and 8-15) x 3 crops of 48 px from 64 px frames: six different views."""
    out = tmp_path_factory.mktemp("six_views")
    args = ["test", "--checkpoint", str(ckpt.classifier48), "--num-clips", "2", "--num-crops", "3",
            "--short-side-size", "64", "--batch-size", "1", *data_args(synth, size=48, stride=1)]
    assert main([args[0], "--output-dir", str(out), *args[1:]]) == 0
    return out, args


def test_two_clips_three_crops(synth, ckpt, six_views):
    out, _ = six_views
    check_against_direct(out, direct_video_probs(ckpt.classifier48, synth, 2, 3, 48, 64, stride=1), 6)
    views = list(iter_view_files([out / "predictions" / "rank0.jsonl"]))
    by_video = {}
    for v in views:
        by_video.setdefault(v.video_id, []).append(v)
    for group in by_video.values():
        assert sorted((v.chunk, v.split) for v in group) == [(c, s) for c in range(2) for s in range(3)]
        assert len({v.logits for v in group}) == 6  # crops and clips really differ


def test_torchrun_two_ranks_matches_single_process(synth, six_views, tmp_path):
    single, args = six_views
    out = tmp_path / "dist"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "mvd.cli", args[0], "--output-dir", str(out),
                           *args[1:]], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [len(open(out / "predictions" / f"rank{r}.jsonl").readlines()) for r in range(2)]
    assert lines == [12, 12]  # 3 videos on 2 ranks: one padded repeat of 6 views
    assert json.loads((out / "test_results.json").read_text()) == \
        json.loads((single / "test_results.json").read_text())
    dist_rows, single_rows = read_rows(out / "test_predictions.csv"), read_rows(single / "test_predictions.csv")
    assert {k: r["prediction"] for k, r in dist_rows.items()} == {k: r["prediction"] for k, r in single_rows.items()}
    for key, row in dist_rows.items():
        assert float(row["probability"]) == pytest.approx(float(single_rows[key]["probability"]), abs=1e-5)


def test_extract_writes_features_labels_and_keys_in_list_order(synth, ckpt, tmp_path):
    out = tmp_path / "out"
    assert main(["extract", "--output-dir", str(out), "--checkpoint", str(ckpt.student),
                 "--splits", "train", "test", *data_args(synth)]) == 0
    student = mvd.load_model(ckpt.student).eval()
    for split in ("train", "test"):
        samples = load_annotations(str(synth / "appearance"), str(synth), split=split, labelled=True)
        feats = FeatureSet.load(out / f"features_{split}.safetensors")
        assert feats.keys == [s.key for s in samples]
        assert feats.labels.tolist() == [s.label for s in samples]
        assert feats.features.shape == (len(samples), 192)
    centre = MultiViewDataset(samples, num_clips=1, num_crops=1, num_frames=FRAMES, stride=2, input_size=64)
    with torch.no_grad():
        expected = student.encoder(centre.load(samples[0], None)[0]).mean(1)[0]
    torch.testing.assert_close(feats.features[0], expected, atol=1e-5, rtol=1e-5)
    assert not (out / "features").exists()  # per-rank shards are cleaned up


def test_feature_shards_merge_in_list_order_without_padding_repeats(tmp_path):
    # 5 videos on 2 ranks: rank 0 gets indices 0, 2, 4; rank 1 gets 1, 3 and the padding 0.
    rows = lambda idx: FeatureSet(torch.tensor([[float(i), -i] for i in idx]),  # noqa: E731
                                  torch.tensor(idx) % 2, [f"v{i}" for i in idx])
    save_shard(rows([0, 2, 4]), [0, 2, 4], tmp_path / "r0.safetensors")
    save_shard(rows([1, 3, 0]), [1, 3, 0], tmp_path / "r1.safetensors")
    merged = merge_shards([tmp_path / "r0.safetensors", tmp_path / "r1.safetensors"])
    assert merged.keys == [f"v{i}" for i in range(5)]
    assert merged.features[:, 0].tolist() == [0, 1, 2, 3, 4] and merged.labels.tolist() == [0, 1, 0, 1, 0]
    merged.save(tmp_path / "features_all.safetensors")
    loaded = FeatureSet.load(tmp_path / "features_all.safetensors")
    assert loaded.keys == merged.keys and torch.equal(loaded.features, merged.features)


def test_frozen_features_per_family(ckpt):
    video = torch.randn(2, 3, FRAMES, 64, 64)
    classifier = mvd.load_model(ckpt.classifier).eval()
    with torch.no_grad():
        torch.testing.assert_close(frozen_features(classifier, video), classifier.features(video))
    mae = mvd.load_model(ckpt.mae).eval()  # an image model: every frame, cls token left out
    small = video[..., :32, :32]
    with torch.no_grad():
        frames = small.transpose(1, 2).reshape(-1, 3, 32, 32)
        expected = mae.encoder(frames)[:, 1:].reshape(2, -1, 192).mean(1)
        torch.testing.assert_close(frozen_features(mae, small), expected)
    with pytest.raises(TypeError, match="not a video model"):
        frozen_features(torch.nn.Linear(2, 2), video)


def test_linear_probe_command_on_a_student(synth, ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["linear-probe", "--output-dir", str(out), "--checkpoint", str(ckpt.student),
                 "--weight-decays", "0.001", "0.1", "--max-iters", "50", "--keep-features",
                 *data_args(synth)]) == 0
    result = json.loads((out / "linear_probe.json").read_text())
    assert (result["num_train"], result["num_eval"], result["num_classes"]) == (17, 3, 4)
    assert result["weight_decay"] in (0.001, 0.1) and set(result["holdout_top1"]) == {"0.001", "0.1"}
    assert 0 <= result["top1"] <= result["top5"] <= 100
    assert (out / "features_train.safetensors").exists()
    assert "linear probe: top-1" in capsys.readouterr().out
    # k-NN on the saved features needs no checkpoint.
    assert main(["knn", "--output-dir", str(tmp_path / "knn"), "--features-dir", str(out), "--k", "5"]) == 0
    knn = json.loads((tmp_path / "knn" / "knn.json").read_text())
    train, test = (FeatureSet.load(out / f"features_{s}.safetensors") for s in ("train", "test"))
    scores = knn_scores(train.features, train.labels, test.features, 4, k=5)
    expected = 100 * (scores.argmax(1) == test.labels).float().mean().item()
    assert (knn["k"], knn["num_eval"]) == (5, 3) and knn["top1"] == pytest.approx(expected)


def test_a_probe_of_another_task_on_the_same_clips_reuses_the_features(synth, ckpt, tmp_path, monkeypatch):
    """The demo probes appearance and motion on the same clips: in one process the features
    are extracted once and relabelled; the result equals a probe that extracts them itself."""
    monkeypatch.setattr(evaluate, "_FEATURES", type(evaluate._FEATURES)())
    extractions = []
    real = evaluate.extract_features
    monkeypatch.setattr(evaluate, "extract_features",
                        lambda *a, **k: extractions.append(1) or real(*a, **k))
    student = tmp_path / "student.safetensors"
    student.write_bytes(Path(ckpt.student).read_bytes())
    probe = ["linear-probe", "--checkpoint", str(student), "--weight-decays", "0.01",
             "--max-iters", "30"]
    def run(name, task):
        assert main([*probe, "--output-dir", str(tmp_path / name), *data_args(synth, task=task)]) == 0
        return json.loads((tmp_path / name / "linear_probe.json").read_text())
    run("appearance", "appearance")
    assert len(extractions) == 2                    # train and test lists
    reused = run("motion", "motion")
    assert len(extractions) == 2                    # read back, relabelled
    evaluate._FEATURES.clear()
    fresh = run("motion_fresh", "motion")
    assert len(extractions) == 4
    assert reused == fresh
    os.utime(student, ns=(1, 1))                    # a changed checkpoint file is extracted again
    run("motion_changed", "motion")
    assert len(extractions) == 6


def test_knn_command_from_a_checkpoint(synth, ckpt, tmp_path):
    out = tmp_path / "out"
    assert main(["knn", "--output-dir", str(out), "--checkpoint", str(ckpt.classifier),
                 *data_args(synth, task="motion")]) == 0
    knn = json.loads((out / "knn.json").read_text())
    assert (knn["k"], knn["num_train"], knn["temperature"]) == (17, 17, 0.07)


def test_linear_probe_separates_separable_features_deterministically():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=gen) * 4
    labels = torch.arange(90) % 3
    x = centres[labels] + torch.randn(90, 16, generator=gen)
    run = lambda: linear_probe(x[:60], labels[:60], x[60:], labels[60:], 3, (1e-3, 1e-1), max_iters=50)  # noqa: E731
    first = run()
    assert first["top1"] == 100.0 and first["train_top1"] == 100.0
    assert first == run()


def test_knn_votes_by_hand():
    train = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    query = torch.tensor([[1.0, 0.1]])
    scores = knn_scores(train, torch.tensor([0, 1, 2]), query, 3, k=2, temperature=0.1)
    cos = query[0] / query[0].norm()
    expected = torch.tensor([[math.exp(cos[0].item() / 0.1), math.exp(cos[1].item() / 0.1), 0.0]])
    torch.testing.assert_close(scores, expected)


def test_predict_top5_with_dataset_json_and_bad_files(synth, ckpt, tmp_path, capsys):
    good = synth / "videos" / "clip_00001.mp4"
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    out = tmp_path / "out"
    rc = main(["predict", str(good), str(tmp_path / "missing.mp4"), str(corrupt), "--output-dir", str(out),
               "--checkpoint", str(ckpt.classifier), "--labels", str(synth / "dataset.json"),
               "--task", "appearance", "--sampling-rate", "2"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err
    assert "missing.mp4 does not exist" in captured.err and "corrupt.mp4" in captured.err
    entries = json.loads((out / "predictions.json").read_text())["videos"]
    top = entries[0]["top"]
    assert {e["label"] for e in top} == {"disk", "square", "triangle", "cross"}
    model = mvd.load_model(ckpt.classifier).eval()
    views = MultiViewDataset([load_annotations(str(synth / "appearance"), str(synth), split="train")[0]],
                             num_clips=5, num_crops=3, num_frames=FRAMES, stride=2, input_size=64)
    sample = dataclasses.replace(views.samples[0], path=str(good))
    with torch.no_grad():
        probs = model(views.load(sample, None)[0]).softmax(-1).mean(0)
    assert [e["class"] for e in top] == probs.argsort(descending=True).tolist()
    assert top[0]["probability"] == pytest.approx(probs.max().item(), abs=1e-6)
    assert "error" in entries[1] and "error" in entries[2]
    assert top[0]["label"] in captured.out


def test_predict_text_labels_must_match_the_class_count(synth, ckpt, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    video = str(synth / "videos" / "clip_00002.mp4")
    common = ["--output-dir", str(tmp_path / "out"), "--checkpoint", str(ckpt.classifier),
              "--num-clips", "1", "--num-crops", "1"]
    assert main(["predict", video, *common, "--labels", str(labels)]) == 0
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())["videos"][0]["top"][0]["label"] in "abcd"
    labels.write_text("a\nb\n")
    assert main(["predict", video, *common, "--labels", str(labels)]) == 1
    assert "names 2 classes but the classifier has 4" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "student", "mae", "geometry", "empty", "no-files"])
def test_bad_input_is_one_clear_message(case, synth, ckpt, tmp_path, capsys):
    out = ["--output-dir", str(tmp_path / "out")]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    argv, code, message = {
        "missing": (["test", "--checkpoint", str(tmp_path / "nope.safetensors"), *data_args(synth)],
                    2, "does not exist"),
        "student": (["test", "--checkpoint", str(ckpt.student), *data_args(synth)],
                    2, "holds a student_tiny model, not a fine-tuned classifier"),
        "mae": (["extract", "--checkpoint", str(ckpt.mae), *data_args(synth)], 2,
                "takes frames of 32x32 px but the data options give 8 frames of 64 px; pass --input-size 32"),
        "geometry": (["test", "--checkpoint", str(ckpt.classifier), *data_args(synth, size=48)],
                     2, "--num-frames 8 --input-size 64"),
        "empty": (["test", "--checkpoint", str(ckpt.classifier), *data_args(synth)[2:], "--data", str(empty)],
                  1, "no entries"),
        "no-files": (["test", "--merge-only"], 1, "no prediction files"),
    }[case]
    assert main([argv[0], *out, *argv[1:]]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command, config", [
    ("test", evaluate.MultiViewTestConfig), ("extract", evaluate.ExtractConfig),
    ("linear-probe", evaluate.LinearProbeConfig), ("knn", evaluate.KnnConfig),
    ("predict", evaluate.PredictConfig)])
def test_help_documents_every_option(command, config, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(config):
        assert "--" + field.name.replace("_", "-") in text
    assert "--output-dir" in text and "--config" in text


@pytest.mark.parametrize("name, config", [
    ("test.yaml", evaluate.MultiViewTestConfig), ("linear_probe.yaml", evaluate.LinearProbeConfig),
    ("knn.yaml", evaluate.KnnConfig)])
def test_demo_recipes_load(name, config):
    path = Path(__file__).resolve().parents[2] / "configs" / "demo" / name
    cfg = load_config(config, str(path), argparse.Namespace())
    assert cfg.checkpoint.startswith("runs/demo-recipes/") and cfg.num_frames == 8
