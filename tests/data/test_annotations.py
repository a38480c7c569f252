import os

import pytest

from .helpers import write_list
from mvd.data.annotations import (check_labels, load_annotations, read_class_folders, read_list,
                                  split_file, video_id)
from mvd.data.errors import AnnotationError


def test_whitespace_root_and_default_extension(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "frames_only").mkdir()
    f = write_list(tmp_path / "train.csv", [
        "a/x.mp4 3", "a/y.webm  7", "b/z\t\t1", "", "# comment", "clips/frames_only 2"])
    samples = read_list(f, data_root=str(tmp_path))
    assert [s.label for s in samples] == [3, 7, 1, 2]
    assert samples[0].path == os.path.join(str(tmp_path), "a/x.mp4")
    assert samples[1].path.endswith("a/y.webm")
    assert samples[2].path.endswith("b/z.mp4")  # no extension -> .mp4
    assert samples[3].path.endswith("clips/frames_only")  # existing frame folder kept
    assert [s.key for s in samples] == ["a/x", "a/y", "b/z", "clips/frames_only"]


def test_unlabelled_pretraining_lists(tmp_path):
    f = write_list(tmp_path / "pre.csv", ["v1.mp4", "v2.mp4 0", "v3.mp4 -1 extra"])
    samples = read_list(f, labelled=False)
    assert [s.path for s in samples] == ["v1.mp4", "v2.mp4", "v3.mp4"]
    assert all(s.label is None for s in samples)


@pytest.mark.parametrize("bad,needle", [("v2.mp4", "no label"), ("v2.mp4 cat", "not an integer")])
def test_malformed_line_names_file_and_line(tmp_path, bad, needle):
    f = write_list(tmp_path / "train.csv", ["v1.mp4 0", "", bad])
    with pytest.raises(AnnotationError) as info:
        read_list(f, labelled=True)
    assert f"{f}:3:" in str(info.value) and needle in str(info.value)


def test_label_range_checked_against_dataset(tmp_path):
    write_list(tmp_path / "train.csv", ["v.mp4 173", "w.mp4 174"])
    with pytest.raises(AnnotationError, match=r"train.csv:2: label 174 outside \[0, 174\)"):
        load_annotations(str(tmp_path), split="train", dataset="ssv2")


def test_split_files_per_dataset(tmp_path):
    expected = {"k400": ("train", "val", "val"), "ssv2": ("train", "val", "val"),
                "ucf101": ("train", "test", "val"), "hmdb51": ("train", "test", "val"),
                "custom": ("train", "val", "test")}
    for dataset, files in expected.items():
        got = [os.path.basename(split_file("anno", s, dataset)) for s in ("train", "val", "test")]
        assert got == [f"{name}.csv" for name in files], dataset
    for name in ("train", "val", "test"):
        write_list(tmp_path / f"{name}.csv", [f"{name}_video.mp4 0"])
    assert load_annotations(str(tmp_path), split="val", dataset="ucf101")[0].path == "test_video.mp4"
    assert load_annotations(str(tmp_path), split="test", dataset="hmdb51")[0].path == "val_video.mp4"


def test_class_folder_layout(tmp_path):
    for cls, files in {"walk": ["b.mp4", "a.avi", "notes.txt"], "jump": ["c.mkv"]}.items():
        (tmp_path / cls).mkdir()
        for name in files:
            (tmp_path / cls / name).write_bytes(b"x")
    (tmp_path / "walk" / "frames").mkdir()
    (tmp_path / "walk" / "frames" / "img_00001.jpg").write_bytes(b"x")
    samples, classes = read_class_folders(str(tmp_path))
    assert classes == ["jump", "walk"]
    assert [(os.path.basename(s.path), s.label) for s in samples] == [
        ("c.mkv", 0), ("a.avi", 1), ("b.mp4", 1), ("frames", 1)]
    assert load_annotations(str(tmp_path)) == samples


def test_video_ids_stay_unique_across_folders():
    assert video_id("a/clip.mp4") != video_id("b/clip.mp4")
    assert video_id("a/clip.mp4") == "a/clip"


def test_empty_list_is_an_error(tmp_path):
    with pytest.raises(AnnotationError, match="no entries"):
        read_list(write_list(tmp_path / "e.csv", ["# nothing"]))


def test_labels_checked_against_a_given_class_count(tmp_path):
    f = write_list(tmp_path / "train.csv", ["v.mp4 2", "w.mp4 5"])
    with pytest.raises(AnnotationError, match=r"train.csv:2: label 5 outside \[0, 3\) for num_classes 3"):
        load_annotations(f, num_classes=3)
    samples = read_list(f)  # no count given: any non-negative label
    with pytest.raises(AnnotationError, match=r"train.csv:2: label 5 outside \[0, 4\)"):
        check_labels(samples, 4)
    check_labels(samples, 6)


def test_class_folder_labels_checked_against_a_given_class_count(tmp_path):
    for cls in ("a", "b", "c"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.mp4").write_bytes(b"x")
    with pytest.raises(AnnotationError, match=r"class folder 'c' is label 2, outside \[0, 2\)"):
        load_annotations(str(tmp_path), num_classes=2)


def test_negative_label_says_so(tmp_path):
    f = write_list(tmp_path / "train.csv", ["v.mp4 0", "w.mp4 -1"])
    with pytest.raises(AnnotationError, match=r"train.csv:2: negative label -1$"):
        read_list(f, labelled=True)


def test_non_utf8_byte_names_file_and_line(tmp_path):
    f = tmp_path / "train.csv"
    f.write_bytes(b"v.mp4 0\nw\xff.mp4 1\n")
    with pytest.raises(AnnotationError, match=r"train.csv:2: not UTF-8 text"):
        read_list(str(f))


def test_byte_order_mark_is_stripped(tmp_path):
    f = tmp_path / "train.csv"
    f.write_bytes("\ufeffv.mp4 0\nw.mp4 1\n".encode("utf-8"))
    assert [s.path for s in read_list(str(f), labelled=True)] == ["v.mp4", "w.mp4"]


@pytest.mark.parametrize("labelled", [True, None])
def test_extra_column_is_malformed(tmp_path, labelled):
    f = write_list(tmp_path / "train.csv", ["v.mp4 0", "w.mp4 1 2"])
    with pytest.raises(AnnotationError, match=r"train.csv:2: .*extra column"):
        read_list(f, labelled=labelled)


def test_paths_with_spaces_keep_their_spacing(tmp_path):
    f = write_list(tmp_path / "train.csv", ["my clip.mp4 3", "two  spaces.mp4\t1", "run 2.mp4 0"])
    assert [(s.path, s.label) for s in read_list(f, labelled=True)] == [
        ("my clip.mp4", 3), ("two  spaces.mp4", 1), ("run 2.mp4", 0)]


def test_declared_class_count_explicit_then_dataset_then_none():
    from mvd.data.annotations import declared_num_classes
    assert declared_num_classes(7, "k400") == 7
    assert declared_num_classes(None, "SSv2") == 174
    assert declared_num_classes(None, "my_videos") is None and declared_num_classes(None, None) is None
