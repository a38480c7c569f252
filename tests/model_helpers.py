"""Helpers shared by tests that compare two implementations on the same weights."""
import torch


def perturb(model, seed=0):
    """Random init leaves biases at zero and LayerNorms at identity: perturb every weight so a
    comparison of two implementations is sensitive to each of them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.eval()
