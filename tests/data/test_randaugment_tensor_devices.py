"""``randaugment_tensor`` off the CPU, checked on a machine without an accelerator.

* The passes an accelerator takes (the whole clip at once, histograms added in place, fill by
  mask) run here on the CPU and must give the bytes the hashes pin.
* With the default device set to ``meta``, a tensor made without ``device=`` lands there and
  breaks the CPU computation: CPU frames must still give the CPU result.
* On ``meta`` frames (no values at all) every op must run: nothing reads a value back to the
  host (``.item()``, ``nonzero``, ``bincount``) or mixes in a CPU tensor.
"""
from __future__ import annotations

import pytest
import torch

from mvd.data import randaugment_tensor
from mvd.data.randaugment import INCREASING_OPS, AppliedOp
from mvd.data.randaugment_tensor import apply_ops_tensor

from .test_randaugment_tensor import FRAMES, levels
from .test_randaugment_tensor_golden import GOLDEN, draws_digest, op_digest

FILLS = ((128, 128, 128), (7, 200, 31))


def test_accelerator_passes_give_the_cpu_bytes(monkeypatch):
    monkeypatch.setattr(randaugment_tensor, "_on_cpu", lambda x: False)
    assert randaugment_tensor._frames_per_pass(torch.zeros(5, 3, 2, 2)) == 5
    for name in INCREASING_OPS:
        assert op_digest(name) == GOLDEN[name], name
    assert draws_digest() == GOLDEN["draws"]


@pytest.mark.parametrize("name", INCREASING_OPS)
def test_no_tensor_is_made_off_the_frames_device(name):
    frames = torch.from_numpy(FRAMES["37x53"])
    for op in levels(name):
        for fill in FILLS:
            expected = apply_ops_tensor(frames, [op], fill)
            with torch.device("meta"):
                got = apply_ops_tensor(frames, [op], fill)
            assert got.device.type == "cpu" and torch.equal(got, expected), (op, fill)


@pytest.mark.parametrize("name", INCREASING_OPS)
def test_every_op_runs_on_frames_without_values(name):
    extremes = [AppliedOp("Rotate", 90.0), AppliedOp("TranslateXRel", 2.0)]  # transpose, all fill
    for frames in (torch.empty((5, 37, 53, 3), dtype=torch.uint8, device="meta"),
                   torch.empty((5, 37, 37, 3), dtype=torch.uint8, device="meta")):
        for op in levels(name) + extremes:
            for fill in FILLS:
                out = apply_ops_tensor(frames, [op, AppliedOp("Invert", None)], fill)
                assert out.device.type == "meta" and out.dtype == torch.uint8
                assert out.shape == frames.shape


def test_non_contiguous_frames_give_the_contiguous_result():
    contiguous = torch.from_numpy(FRAMES["37x53"])
    padded = torch.zeros((contiguous.shape[0], contiguous.shape[1], contiguous.shape[2] + 3, 4), dtype=torch.uint8)
    padded[:, :, 1:-2, :3] = contiguous
    strided = padded[:, :, 1:-2, :3]  # every stride differs from the dense clip's
    assert not strided.is_contiguous()
    ops = [AppliedOp("Equalize", None), AppliedOp("ShearX", 0.17), AppliedOp("SolarizeAdd", 40)]
    assert torch.equal(apply_ops_tensor(strided, ops), apply_ops_tensor(contiguous, ops))
    with pytest.raises(ValueError, match="uint8"):
        apply_ops_tensor(contiguous.double(), ops)
