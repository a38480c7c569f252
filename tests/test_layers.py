import math

import pytest
import torch

from mvd.layers import Attention, DropPath, PatchEmbed, sincos_2d_with_cls, sincos_3d, sinusoid_1d
import reference_impl as ref


def test_3d_table_first_row_matches_spec_example():
    row = sincos_3d(768, (8, 14, 14))[0, 0]
    expected = torch.cat([torch.zeros(96), torch.ones(96), torch.zeros(144), torch.ones(144),
                          torch.zeros(144), torch.ones(144)])
    assert torch.equal(row, expected)


@pytest.mark.parametrize("dim,grid", [(64, (2, 3, 3)), (192, (3, 2, 2))])
def test_3d_table_is_t_then_w_then_h_per_token(dim, grid):
    ours = sincos_3d(dim, grid)
    assert ours.shape == (1, grid[0] * grid[1] * grid[2], dim)
    torch.testing.assert_close(ours, ref.table_3d(dim, grid[0], grid[1]), atol=1e-6, rtol=0)


def test_1d_table_interleaves_sin_and_cos():
    table = sinusoid_1d(8, 5)
    p, j = 3, 5
    assert math.isclose(table[0, p, j].item(), math.cos(p / 10000 ** (2 * (j // 2) / 8)), rel_tol=1e-6)
    torch.testing.assert_close(table, ref.table_1d(8, 5), atol=1e-6, rtol=0)


def test_2d_table_has_zero_cls_row_and_w_first():
    table = sincos_2d_with_cls(16, 3)
    assert table.shape == (1, 10, 16)
    assert torch.count_nonzero(table[0, 0]) == 0
    torch.testing.assert_close(table, ref.table_2d_cls(16, 3), atol=1e-6, rtol=0)


def test_position_tables_reject_bad_widths():
    with pytest.raises(ValueError, match="divisible by 16"):
        sincos_3d(72, (2, 2, 2))
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d_with_cls(6, 2)


@pytest.mark.parametrize("bias", ["qv", "qkv", "none"])
def test_attention_matches_explicit_softmax(bias):
    torch.manual_seed(0)
    attn = Attention(32, 4, bias=bias)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.2)
    x = torch.randn(2, 5, 32)
    qkv_bias = {"qv": torch.cat([attn.q_bias, torch.zeros(32), attn.v_bias]) if bias == "qv" else None,
                "qkv": attn.qkv.bias, "none": None}[bias]
    qkv = x @ attn.qkv.weight.T + (0 if qkv_bias is None else qkv_bias)
    q, k, v = qkv.reshape(2, 5, 3, 4, 8).permute(2, 0, 3, 1, 4)
    weights = ((q * 8 ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 5, 32))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


def test_qv_layout_has_no_key_bias_and_reference_key_names():
    names = set(dict(Attention(32, 4, bias="qv").named_parameters()))
    assert names == {"qkv.weight", "q_bias", "v_bias", "proj.weight", "proj.bias"}
    assert "qkv.bias" in dict(Attention(32, 4, bias="qkv").named_parameters())


def test_attention_rejects_unknown_layout():
    with pytest.raises(ValueError, match="bias"):
        Attention(32, 4, bias="kv")


def test_drop_path_drops_whole_samples_and_rescales():
    layer = DropPath(0.5).train()
    torch.manual_seed(0)
    out = layer(torch.ones(1000, 3, 4))
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert bool((per_sample == per_sample[:, :1]).all())  # one decision per sample
    assert 0.4 < (per_sample[:, 0] == 0).float().mean() < 0.6
    assert torch.equal(layer.eval()(torch.ones(4, 3)), torch.ones(4, 3))


def test_patch_embed_token_order_is_t_major_then_h_then_w():
    embed = PatchEmbed(3, 1, 16, 2)
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.weight[0, 0, 0, 0, 0] = 1.0
        embed.proj.bias.zero_()
    video = torch.zeros(1, 3, 4, 32, 32)
    for t in range(2):
        for h in range(2):
            for w in range(2):
                video[0, 0, 2 * t, 16 * h, 16 * w] = t * 4 + h * 2 + w
    assert embed(video)[0, :, 0].tolist() == list(range(8))


def test_patch_embed_explains_bad_input():
    embed = PatchEmbed(3, 8, 16, 2)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        embed(torch.zeros(1, 3, 4, 30, 32))
    with pytest.raises(ValueError, match="tubelet"):
        embed(torch.zeros(1, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="B, C, T, H, W"):
        embed(torch.zeros(3, 4, 32, 32))
