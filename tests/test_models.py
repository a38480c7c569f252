"""Every registered model: parameter counts (spec §1.11), shapes, masking invariants, gradients."""
import pytest
import torch

import mvd
from mvd.models import sizes

from conftest import FRAMES, SIZE


def _count(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@pytest.mark.parametrize("name,kwargs,expected", [
    ("classifier_small", dict(num_classes=400), 22_033_936),
    ("classifier_base", dict(num_classes=400), 86_534_800),
    ("classifier_base", dict(num_classes=174), 86_361_006),
    ("classifier_large", dict(num_classes=101), 303_964_261),
    ("classifier_huge", dict(num_classes=51), 631_672_371),
    ("student_small", dict(image_teacher_dim=768, video_teacher_dim=768), 29_865_600),
    ("student_small", dict(image_teacher_dim=1024, video_teacher_dim=1024), 30_062_720),
    ("student_base", dict(image_teacher_dim=768, video_teacher_dim=768), 116_942_592),
    ("student_base", dict(image_teacher_dim=1024, video_teacher_dim=1024), 117_336_320),
    ("student_large", dict(image_teacher_dim=1024, video_teacher_dim=1024), 331_179_008),
    ("student_huge", dict(image_teacher_dim=1280, video_teacher_dim=1280), 713_657_600),
])
def test_trainable_parameter_counts_match_spec(name, kwargs, expected):
    with torch.device("meta"):
        model = mvd.create_model(name, **kwargs)
    assert _count(model) == expected


@pytest.mark.parametrize("name,expected", [
    ("image_teacher_base", 85_647_360), ("image_teacher_large", 303_099_904),
    ("image_teacher_huge", 630_435_840), ("video_teacher_base", 86_227_200),
    ("video_teacher_large", 303_860_736), ("video_teacher_huge", 631_607_040),
])
def test_teacher_parameter_counts_match_spec(name, expected):
    with torch.device("meta"):
        assert _count(mvd.create_model(name), trainable_only=False) == expected


def test_every_size_and_family_is_registered():
    names = set(mvd.list_models())
    families = ["student", "image_teacher", "video_teacher", "mae", "videomae", "classifier"]
    assert names == {f"{f}_{s}" for f in families for s in sizes.SIZE_NAMES}
    with pytest.raises(KeyError, match="unknown model"):
        mvd.create_model("student_gigantic")
    with pytest.raises(TypeError, match="does not take"):
        mvd.create_model("student_tiny", num_class=3)


def test_student_decoder_configs_follow_spec_table():
    with torch.device("meta"):
        large = mvd.create_model("student_large", image_teacher_dim=1024, video_teacher_dim=1024)
        huge = mvd.create_model("student_huge")
    for model, dim, depth, heads in ((large, 512, 4, 8), (huge, 640, 8, 8)):
        decoder = model.decoders["image"]
        assert decoder.down.out_features == dim and len(decoder.blocks) == depth
        assert decoder.blocks[0].attn.num_heads == heads
    assert huge.decoders["video"].blocks[0].attn.head_dim == 80
    assert large.decoders["video"].down.bias is not None  # MVD's down projections carry a bias


@pytest.mark.parametrize("teachers", [("image", "video"), ("image",), ("video",)])
def test_student_predicts_masked_tokens_for_each_teacher(teachers, clip, tiny):
    student = mvd.create_model("student_tiny", image_teacher_dim=48, video_teacher_dim=80,
                               teachers=teachers, **tiny)
    mask = mvd.tube_mask(2, student.encoder.grid, 0.5, torch.Generator().manual_seed(0))
    out = student(clip, mask)
    assert set(out) == set(teachers)
    dims = {"image": 48, "video": 80}
    for name, pred in out.items():
        assert pred.shape == (2, 4, dims[name])


def test_student_outputs_ignore_masked_pixels(clip, tiny):
    """Only visible tubes reach the encoder: changing masked content must not change outputs."""
    student = mvd.create_model("student_tiny", drop_path_rate=0.0, **tiny).eval()
    mask = mvd.tube_mask(2, student.encoder.grid, 0.5, torch.Generator().manual_seed(1))
    changed = clip.clone()
    spatial = mask[0, :4].view(2, 2)  # slot 0 of sample 0, (h, w)
    h, w = [int(i) for i in spatial.nonzero()[0]]
    changed[0, :, :, 16 * h:16 * (h + 1), 16 * w:16 * (w + 1)] += 5.0
    a, b = student(clip, mask), student(changed, mask)
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_student_gradients_reach_every_trainable_parameter(clip, tiny):
    student = mvd.create_model("student_tiny", image_teacher_dim=48, video_teacher_dim=80, **tiny)
    mask = mvd.tube_mask(2, student.encoder.grid, 0.5, torch.Generator().manual_seed(0))
    sum(p.square().mean() for p in student(clip, mask).values()).backward()
    for name, param in student.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_student_init_follows_reference(tiny):
    student = mvd.create_model("student_tiny", **tiny)
    for decoder in student.decoders.values():
        assert decoder.mask_token.abs().max() <= 0.02 + 1e-7
    assert torch.count_nonzero(student.encoder.blocks[0].attn.q_bias) == 0
    # position tables are fixed buffers, rebuilt and never saved
    assert not any("pos_embed" in k for k in student.state_dict())
    assert student.encoder.pos_embed.requires_grad is False


def test_student_rejects_unequal_visible_counts_and_float_masks(clip, tiny):
    student = mvd.create_model("student_tiny", **tiny)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, :4] = True
    mask[1, :3] = True
    with pytest.raises(ValueError, match="same number"):
        student(clip, mask)
    with pytest.raises(TypeError, match="bool"):
        student(clip, mask.float())


def test_gradient_checkpointing_gives_same_gradients(clip, tiny):
    torch.manual_seed(0)
    plain = mvd.create_model("student_tiny", drop_path_rate=0.0, **tiny)
    checkpointed = mvd.create_model("student_tiny", drop_path_rate=0.0, grad_checkpointing=True, **tiny)
    checkpointed.load_state_dict(plain.state_dict())
    mask = mvd.tube_mask(2, plain.encoder.grid, 0.5, torch.Generator().manual_seed(0))
    grads = []
    for model in (plain, checkpointed):
        sum(p.sum() for p in model(clip, mask).values()).backward()
        grads.append(model.encoder.blocks[0].attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_drop_path_rates_increase_linearly_in_encoder_and_decoders(tiny):
    student = mvd.create_model("student_tiny", drop_path_rate=0.1, **tiny)
    assert [b.drop_path.rate for b in student.encoder.blocks] == pytest.approx([0.0, 0.1])
    assert [b.drop_path.rate for b in student.decoders["image"].blocks] == pytest.approx([0.0, 0.1])


def test_teachers_are_frozen_and_stay_in_eval(clip, tiny):
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    teacher.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    out = teacher(clip)
    assert out.shape == (2, 8, 192) and not out.requires_grad


def test_image_teacher_encodes_first_frame_of_each_tubelet_t_major(clip):
    teacher = mvd.create_model("image_teacher_tiny", img_size=SIZE, depth=2)
    out = teacher(clip)
    assert out.shape == (2, 8, 192)
    for slot in range(FRAMES // 2):
        frame = clip[:, :, 2 * slot]
        alone = teacher.encoder.forward_features(frame, apply_norm=False)[:, 1:]
        torch.testing.assert_close(out[:, 4 * slot:4 * (slot + 1)], alone)


def test_huge_image_teacher_defaults_to_patch14_at_196_and_matches_student_grid():
    with torch.device("meta"):
        teacher = mvd.create_model("image_teacher_huge")
        student = mvd.create_model("student_huge")
    assert teacher.encoder.patch_embed.patch_size == 14
    assert teacher.encoder.grid[1:] == student.encoder.grid[1:] == (14, 14)


def test_video_teacher_honours_num_frames_and_explains_mismatch(tiny):
    teacher = mvd.create_model("video_teacher_tiny", **tiny)
    with pytest.raises(ValueError, match="built for 8"):
        teacher(torch.randn(1, 3, 8, SIZE, SIZE))


def test_classifier_shapes_head_init_and_features(clip, tiny):
    model = mvd.create_model("classifier_tiny", num_classes=7, **tiny)
    assert model(clip).shape == (2, 7)
    assert 1.5e-5 < model.head.weight.std() < 2.5e-5  # trunc_normal(.02) x init_scale 0.001
    assert model.features(clip).shape == (2, 192)
    assert not any(k.startswith("encoder.norm") for k in model.state_dict())
    with pytest.raises(ValueError, match="num_classes"):
        mvd.create_model("classifier_tiny", num_classes=0, **tiny)


def test_classifier_batch_pool_norm_standardises_each_channel_and_round_trips(tiny, tmp_path):
    """pool_norm="batch": the head sees every pooled channel standardised (batch statistics in
    training, running ones at test time), so a part common to every clip cannot drown the
    differences between clips; the choice is saved with the model."""
    torch.manual_seed(0)
    model = mvd.create_model("classifier_tiny", num_classes=5, pool_norm="batch", **tiny)
    clips = torch.randn(6, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) + 3.0
    features = model.features(clips)   # training mode: this batch's statistics
    torch.testing.assert_close(features.mean(0), torch.zeros(192), atol=1e-5, rtol=0)
    torch.testing.assert_close(features.std(0, unbiased=False), torch.ones(192), atol=1e-3, rtol=0)
    assert model.fc_norm.num_batches_tracked == 1
    model.eval()   # test time: one clip alone gets the running statistics, not its own
    alone = model.features(clips[:1])
    expected = (model.encoder(clips[:1]).mean(1) - model.fc_norm.running_mean) / \
        (model.fc_norm.running_var + 1e-6).sqrt()
    torch.testing.assert_close(alone, expected, atol=1e-4, rtol=1e-4)
    path = tmp_path / "classifier.safetensors"
    mvd.save_model(model, path)
    loaded = mvd.load_model(path).eval()
    assert isinstance(loaded.fc_norm, torch.nn.BatchNorm1d)
    torch.testing.assert_close(loaded(clips), model(clips))
    assert isinstance(mvd.create_model("classifier_tiny", **tiny).fc_norm, torch.nn.LayerNorm)
    with pytest.raises(ValueError, match="pool_norm must be one of"):
        mvd.create_model("classifier_tiny", pool_norm="group", **tiny)


def test_pixel_pretraining_models_predict_masked_patches(clip, tiny):
    videomae = mvd.create_model("videomae_tiny", **tiny)
    mask = mvd.tube_mask(2, videomae.encoder.grid, 0.5)
    assert videomae(clip, mask).shape == (2, 4, 2 * 16 * 16 * 3)
    assert videomae.decoder.down.bias is None  # VideoMAE's encoder_to_decoder has no bias
    mae = mvd.create_model("mae_tiny", img_size=SIZE, depth=2)
    images = clip[:, :, 0]
    image_mask = mvd.random_mask(2, 4, 0.75)
    assert mae(images, image_mask).shape == (2, 3, 16 * 16 * 3)
    assert "encoder.blocks.0.attn.qkv.bias" in mae.state_dict()  # timm/MAE bias layout
