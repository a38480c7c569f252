"""Video RandAugment on tensors: a clip's drawn ops applied to all its frames at once.

``apply_ops_tensor(frames, ops)`` takes the ops ``VideoRandAugment.draw`` drew for a clip (the
same draws, the same random stream) and applies them to uint8 frames (T, H, W, 3) as torch
operations on the whole clip, instead of one PIL call per frame and op, on whatever device the
frames are on. Ops that need planes
(per-channel statistics, filters, resampling) hold the clip planar (T, 3, H, W), where
per-frame, per-channel and per-pixel broadcasts run at full vector speed; value-by-value ops
run on whatever layout the clip has. The result is a contiguous uint8 (T, H, W, 3).

What is the same as the PIL ops of ``randaugment.py`` (PIL's ImageOps / ImageEnhance):

* Invert, Posterize: PIL's lookup tables written as the equivalent bit operations (``255 - i
  == ~i``, ``i & mask``). Solarize, SolarizeAdd: PIL's lookup tables. Exact.
* AutoContrast (cutoff 0): per frame and channel, the minimum and maximum and PIL's LUT
  arithmetic in double precision (``int(i * scale + offset)`` clipped). Exact.
* Equalize: per frame and channel, PIL's histogram LUT (integer arithmetic, ``step`` from all
  but the last occupied bin, values clipped to 255 as ``Image.point`` does). Exact.
* Color, Contrast, Brightness, Sharpness: ``Image.blend(degenerate, image, factor)`` with
  PIL's float32 arithmetic (``(int)a + factor * ((int)b - (int)a)``, truncated, clipped).
  Degenerates: Color the L conversion (ITU-R 601 integer luma ``(19595 R + 38470 G + 7471 B
  + 0x8000) >> 16``) broadcast to RGB; Contrast the frame's mean L, ``int(mean + 0.5)``;
  Brightness black; Sharpness PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]] / 13, rounded;
  border pixels kept from the frame). Exact: every intermediate is an integer below 2**24,
  which float32 holds exactly, and the blend repeats PIL's float32 operations in PIL's order
  (Brightness and Contrast, whose degenerate is one value a frame, evaluate it once for each
  of the 256 levels and look the results up).

What differs:

* Rotate, ShearX/Y, TranslateXRel/YRel: PIL resamples with **bicubic** interpolation; here the
  planes of several frames at a time go through one ``grid_sample`` as the channels of one
  image, with **bilinear** interpolation rounded to the nearest level (translations: the same
  two-tap bilinear blend of two shifted slices, no 2-D gather). The geometry is PIL's exactly:
  the same affine matrices (``Image.rotate``'s, rounded to 15 digits, about the image centre),
  the output pixel centre ``(x + 0.5, y + 0.5)`` mapped into the source, whose pixel k spans
  [k, k + 1); a pixel whose source point falls outside [0, W) x [0, H) takes the fill colour
  (the double-precision test PIL makes, so the fill masks are PIL's), inside it samples the
  pixel centres with edge pixels repeated. A shift by whole pixels is therefore exact;
  elsewhere bilinear is a little softer than bicubic (a mean absolute difference of about one
  grey level on natural frames, at most ~25 levels at sharp edges). Rotations by 0 and 180
  degrees (and 90/270 on square frames) are exact copies/transposes, as in PIL.

Devices: every tensor is made on the frames' device and nothing waits on the device (no
``.item()``, no ``nonzero``, lookup tables computed there), so the same code runs in a
DataLoader worker on the CPU and on the GPU in the training process (``device_augment``). Work
goes a frame at a time on the CPU (a frame's planes, 0.9 MB as float32, stay in cache between
the passes over them, and the buffers are reused instead of allocating the clip's size again
for every intermediate) and the whole clip at once elsewhere (each pass is a kernel launch
there); the two give the same values. On other devices float rounding inside ``grid_sample``
may move a geometric op's value by a level.
"""
from __future__ import annotations

import math
import struct
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from .randaugment import FILL, AppliedOp

Fill = Union[int, Sequence[int]]

# ITU-R 601-2 luma as PIL's RGB -> L conversion computes it (Convert.c, L24).
_LUMA = (19595.0, 38470.0, 7471.0)
CHUNK = 4  # frames resampled together by one grid_sample call on the CPU


# ---- helpers --------------------------------------------------------------------------------------

def _on_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu"


def _frames_per_pass(x: torch.Tensor) -> int:
    """Frames a pass works on: one on the CPU (in cache), all of them elsewhere (one launch)."""
    return 1 if _on_cpu(x) else x.shape[0]


def _passes(count: int, step: int):
    """(start, length) of consecutive runs of ``step`` frames covering ``count``."""
    return ((start, min(step, count - start)) for start in range(0, count, step))


def _float32(value: float) -> float:
    """``value`` rounded to float32, as PIL's C code receives a blend factor."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _levels(like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0..255 on ``like``'s device."""
    return torch.arange(256, dtype=dtype, device=like.device)


def _to_planar(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, C) -> contiguous (T, C, H, W) (one strided copy per channel, faster
    than a general permute copy)."""
    T, H, W, C = frames.shape
    planes = torch.empty((T, C, H, W), dtype=frames.dtype, device=frames.device)
    for channel in range(C):
        planes[:, channel].copy_(frames[..., channel])
    return planes


def _to_frames(planes: torch.Tensor) -> torch.Tensor:
    T, C, H, W = planes.shape
    frames = torch.empty((T, H, W, C), dtype=planes.dtype, device=planes.device)
    for channel in range(C):
        frames[..., channel].copy_(planes[:, channel])
    return frames


def _float_planes(x: torch.Tensor, *shape: int) -> torch.Tensor:
    """A float32 buffer of ``shape`` on ``x``'s device."""
    return torch.empty(shape, dtype=torch.float32, device=x.device)


def _luma(planes: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """PIL's L conversion of float planes (n, 3, H, W) holding integers, into ``out``
    (n, 1, H, W); exact (every partial sum is an integer below 2**24)."""
    torch.mul(planes[:, 0:1], _LUMA[0], out=out)
    out.add_(planes[:, 1:2], alpha=_LUMA[1]).add_(planes[:, 2:3], alpha=_LUMA[2])
    return out.add_(32768.0).mul_(1.0 / 65536.0).floor_()


def _blend_(degenerate, image: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ``Image.blend(degenerate, image, factor)`` on float tensors holding integers, in
    place on ``image``: ``degenerate + factor * (image - degenerate)`` in float32, each
    operation rounded as PIL's C code rounds it, clipped to [0, 255]; the caller truncates
    (copying into uint8)."""
    return image.sub_(degenerate).mul_(_float32(factor)).add_(degenerate).clamp_(0.0, 255.0)


def _blend_lut(degenerate: torch.Tensor, factor: float) -> torch.Tensor:
    """The blend as lookup tables: for each degenerate value (P, 1), the result for every
    image level 0..255 ((P, 256), the same float32 operations as ``_blend_``)."""
    levels = _levels(degenerate, torch.float32).expand(degenerate.shape[0], 256).clone()
    return _blend_(degenerate.to(torch.float32), levels, factor).to(torch.uint8)


def _plane_index(x: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A reusable int32 index buffer for ``step`` frames of planar ``x`` (T, C, H, W), and the
    offsets (step, C, 1, 1) that send plane p of the pass to its table at p * 256."""
    C, H, W = x.shape[1:]
    offsets = torch.arange(0, step * C * 256, 256, dtype=torch.int32, device=x.device)
    index = torch.empty((step, C, H, W), dtype=torch.int32, device=x.device)
    return index, offsets.view(step, C, 1, 1)


def _apply_luts(x: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """256-entry lookup tables on planar uint8 (T, C, H, W): ``luts`` (256,) for every plane,
    (T, 256) one per frame or (T * C, 256) one per frame and channel; values are clipped to
    [0, 255] as ``Image.point`` clips them."""
    T, C, H, W = x.shape
    table = luts.clamp(0, 255).to(torch.uint8)
    if table.dim() == 1:
        table = table.expand(T, C, 256)
    elif table.shape[0] != T * C:
        table = table[:, None].expand(T, C, 256)
    table = table.reshape(T * C * 256).contiguous()  # plane p = t * C + c: its table at p * 256
    step = _frames_per_pass(x)
    index, offsets = _plane_index(x, step)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for t, n in _passes(T, step):
        index[:n].copy_(x[t:t + n]).add_(offsets[:n])
        torch.index_select(table[t * C * 256:(t + n) * C * 256], 0, index[:n].view(-1),
                           out=out[t:t + n].view(-1))
    return out


def _plane_histograms(x: torch.Tensor) -> torch.Tensor:
    """(T * C, 256) histograms of planar uint8 (T, C, H, W). ``bincount`` on the CPU (the
    fastest there); elsewhere counts added in place, as ``bincount``'s output size would
    have to be read back from the device."""
    T, C, H, W = x.shape
    step = _frames_per_pass(x)
    index, offsets = _plane_index(x, step)
    hists = torch.zeros(T * C * 256, dtype=torch.int64, device=x.device)
    ones = torch.ones(1, dtype=torch.int64, device=x.device).expand(index.numel())
    for t, n in _passes(T, step):
        flat = index[:n].copy_(x[t:t + n]).add_(offsets[:n]).view(-1)
        counts = hists[t * C * 256:(t + n) * C * 256]
        if _on_cpu(x):
            counts.copy_(torch.bincount(flat, minlength=n * C * 256))
        else:
            counts.index_add_(0, flat, ones[:flat.numel()])
    return hists.view(T * C, 256)


def _global_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """One 256-entry lookup table on every value of contiguous uint8 ``x`` (any layout), values
    clipped to [0, 255] as ``Image.point`` clips them."""
    table = lut.clamp(0, 255).to(torch.uint8)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    step = _frames_per_pass(x)
    index = torch.empty(x[:step].numel(), dtype=torch.int32, device=x.device)
    for t, n in _passes(x.shape[0], step):
        flat = index[:x[t:t + n].numel()].copy_(x[t:t + n].view(-1))
        torch.index_select(table, 0, flat, out=out[t:t + n].view(-1))
    return out


# ---- pointwise ops (planar uint8 (T, 3, H, W) -> the same; those of ANY_LAYOUT take any) -----------

def _invert(x: torch.Tensor, arg, fill) -> torch.Tensor:
    return torch.bitwise_not(x)  # 255 - i on uint8


def _posterize(x: torch.Tensor, bits, fill) -> torch.Tensor:
    bits = int(bits)
    if bits >= 8:
        return x
    mask = ~(2 ** (8 - max(bits, 0)) - 1) & 0xFF  # bits <= 0: black, as randaugment._posterize
    return torch.bitwise_and(x, mask)


def _solarize(x: torch.Tensor, threshold, fill) -> torch.Tensor:
    if threshold > 255:
        return x
    levels = _levels(x, torch.int32)  # i if i < threshold else 255 - i
    return _global_lut(x, torch.where(levels < threshold, levels, 255 - levels))


def _solarize_add(x: torch.Tensor, add, fill, threshold: int = 128) -> torch.Tensor:
    # randaugment._solarize_add: min(255, i + add) if i < threshold else i
    add = int(add)
    if add == 0:
        return x
    levels = _levels(x, torch.int32)
    return _global_lut(x, torch.where(levels < threshold, (levels + add).clamp_(max=255), levels))


def _autocontrast(x: torch.Tensor, arg, fill) -> torch.Tensor:
    T, C = x.shape[:2]
    lo, hi = torch.aminmax(x.view(T * C, -1), dim=1)
    lo, hi = lo.to(torch.float64), hi.to(torch.float64)
    spread = hi - lo
    # true division (``255.0 / tensor`` multiplies by a reciprocal, another rounding than PIL's)
    scale = torch.full_like(spread, 255.0).div_(spread.clamp(min=1.0))
    offset = -lo * scale
    levels = _levels(x, torch.float64)
    luts = (levels[None] * scale[:, None] + offset[:, None]).trunc_()  # int(ix * scale + offset)
    luts = torch.where((spread > 0)[:, None], luts, levels[None])  # hi <= lo: identity
    return _apply_luts(x, luts)


def _equalize(x: torch.Tensor, arg, fill) -> torch.Tensor:
    hist = _plane_histograms(x)
    occupied = hist > 0
    last = 255 - occupied.flip(1).to(torch.int32).argmax(dim=1)  # the last occupied level
    step = (hist.sum(1) - hist.gather(1, last[:, None].long())[:, 0]) // 255
    below = hist.cumsum(1) - hist  # pixels below each level
    luts = (step[:, None] // 2 + below) // step.clamp(min=1)[:, None]
    identity = (occupied.sum(1) <= 1) | (step == 0)
    luts = torch.where(identity[:, None], _levels(x, luts.dtype)[None], luts)
    return _apply_luts(x, luts)  # values past 255 clipped, as Image.point does


def _brightness(x: torch.Tensor, factor, fill) -> torch.Tensor:
    black = torch.zeros((1, 1), device=x.device)  # the degenerate
    return _global_lut(x, _blend_lut(black, factor)[0])


def _contrast(x: torch.Tensor, factor, fill) -> torch.Tensor:
    T, C, H, W = x.shape
    step = _frames_per_pass(x)
    planes, luma = _float_planes(x, step, C, H, W), _float_planes(x, step, 1, H, W)
    totals = torch.empty(T, dtype=torch.float64, device=x.device)
    for t, n in _passes(T, step):
        planes[:n].copy_(x[t:t + n])
        torch.sum(_luma(planes[:n], luma[:n]), dim=(1, 2, 3), dtype=torch.float64,
                  out=totals[t:t + n])  # exact: integers
    # ImageStat's mean, rounded as PIL does: int(total / pixels + 0.5), true division
    means = totals.div_(torch.full_like(totals, H * W)).add_(0.5).floor_()
    return _apply_luts(x, _blend_lut(means.view(T, 1), factor))


def _color(x: torch.Tensor, factor, fill) -> torch.Tensor:
    T, C, H, W = x.shape
    step = _frames_per_pass(x)
    planes, luma = _float_planes(x, step, C, H, W), _float_planes(x, step, 1, H, W)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for t, n in _passes(T, step):
        planes[:n].copy_(x[t:t + n])
        out[t:t + n].copy_(_blend_(_luma(planes[:n], luma[:n]), planes[:n], factor))
    return out


def _sharpness(x: torch.Tensor, factor, fill) -> torch.Tensor:
    T, C, H, W = x.shape
    if H < 3 or W < 3:  # PIL's 3x3 filter keeps the border: nothing is filtered
        return x
    step = _frames_per_pass(x)
    planes = _float_planes(x, step, C, H, W)
    rows, smooth = _float_planes(x, step, C, H, W - 2), _float_planes(x, step, C, H - 2, W - 2)
    out = x.clone()  # the border: blends to itself
    for t, n in _passes(T, step):
        p, r, s = planes[:n].copy_(x[t:t + n]), rows[:n], smooth[:n]
        torch.add(p[..., :-2], p[..., 1:-1], out=r).add_(p[..., 2:])
        torch.add(r[..., :-2, :], r[..., 1:-1, :], out=s).add_(r[..., 2:, :])  # 3x3 box sums
        centre = p[..., 1:-1, 1:-1]
        s.add_(centre, alpha=4.0)  # N = box + 4 * centre, an integer
        s.mul_(1.0 / 13.0).add_(0.5).floor_()  # round(N / 13): exact, never a tie
        out[t:t + n, :, 1:-1, 1:-1].copy_(_blend_(s, centre, factor))
    return out


# ---- geometric ops ----------------------------------------------------------------------------------

def _fill_outside(out: torch.Tensor, outside: torch.Tensor, fill: Fill) -> torch.Tensor:
    """``fill`` into every plane of planar ``out`` (T, C, H, W) where ``outside`` (H, W). On the
    CPU through the outside pixels' indices (a broadcast mask costs ten times more there);
    elsewhere with the mask, whose indices would have to be read back from the device."""
    T, C, H, W = out.shape
    colours = _fill_tuple(fill, C)
    if not _on_cpu(out):
        if len(set(colours)) == 1:
            return out.masked_fill_(outside, colours[0])
        for channel, colour in enumerate(colours):
            out[:, channel].masked_fill_(outside, colour)
        return out
    where = outside.reshape(-1).nonzero()[:, 0]
    if where.numel():
        pixels = out.view(T, C, H * W)
        if len(set(colours)) == 1:
            pixels.view(T * C, H * W).index_fill_(1, where, colours[0])
        else:
            for channel in range(C):
                pixels[:, channel].index_fill_(1, where, colours[channel])
    return out


def _affine(x: torch.Tensor, matrix: Sequence[float], fill: Fill) -> torch.Tensor:
    """PIL's ``Image.transform(size, AFFINE, matrix, fillcolor=fill)`` with bilinear sampling:
    output pixel (x, y) samples the source at (a (x+.5) + b (y+.5) + c, d (x+.5) + e (y+.5) + f)
    in pixel-edge coordinates, fill outside [0, W) x [0, H)."""
    T, C, H, W = x.shape
    a, b, c, d, e, f = (float(v) for v in matrix)
    xs = (torch.arange(W, dtype=torch.float64, device=x.device) + 0.5).view(1, W)
    ys = (torch.arange(H, dtype=torch.float64, device=x.device) + 0.5).view(H, 1)
    src_x = (xs * a + ys * b) + c  # PIL's affine_transform, in double, in its order
    src_y = (xs * d + ys * e) + f
    outside = (src_x < 0) | (src_x >= W) | (src_y < 0) | (src_y >= H)  # PIL's test
    # grid_sample (align_corners=False) reads pixel-edge coordinate u at 2 u / size - 1
    grid = torch.stack((src_x * (2.0 / W) - 1.0, src_y * (2.0 / H) - 1.0), dim=-1).to(torch.float32)
    # the planes of several frames as the channels of one image: the weights are computed once
    # a pixel for all of them (on the CPU CHUNK frames, whose planes stay in cache: faster than
    # all frames at once)
    chunk = CHUNK if _on_cpu(x) else T
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    planes = _float_planes(x, 1, min(T, chunk) * C, H, W)
    for start, n in _passes(T, chunk):
        k = n * C
        source = planes[:, :k].copy_(x[start:start + n].reshape(1, k, H, W))
        sampled = F.grid_sample(source, grid[None], mode="bilinear", padding_mode="border",
                                align_corners=False)
        out[start:start + n].view(1, k, H, W).copy_(sampled.add_(0.5))  # nearest level
    return _fill_outside(out, outside, fill)


def _inside_span(size: int, shift: float) -> tuple[int, int]:
    """[lo, hi): the output indices i whose source point (i + 0.5) + shift lies in [0, size),
    PIL's test in double precision (Python floats: no device involved)."""
    inside = [i for i in range(size) if 0 <= (i + 0.5) + shift < size]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def _fill_span(span: torch.Tensor, colours: tuple[int, ...]) -> None:
    """``colours`` (one per channel) into planar ``span`` (T, C, h, w)."""
    if len(set(colours)) == 1:
        span.fill_(colours[0])
    else:
        for channel, colour in enumerate(colours):
            span[:, channel].fill_(colour)


def _translate(x: torch.Tensor, shift: float, dim: int, fill: Fill) -> torch.Tensor:
    """``_affine`` for a shift along one axis (``dim`` 3: x, 2: y), without a 2-D gather: output
    index i reads source i + shift (pixel centres) as the blend of two shifted slices, the same
    bilinear value (up to float rounding) and PIL's fill test, (i + 0.5) + shift in [0, size)."""
    size = x.shape[dim]
    lo, hi = _inside_span(size, shift)  # the output span that samples the frame
    colours = _fill_tuple(fill, x.shape[1])
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if hi == lo:
        _fill_span(out, colours)
        return out
    whole = math.floor(shift)
    frac = shift - whole
    # taps i + whole and i + whole + 1, both inside [0, size) on [core_lo, core_hi)
    core_lo, core_hi = max(lo, -whole), min(hi, size - 1 - whole)
    if frac == 0:
        core_hi = min(hi, size - whole)  # one tap: an exact copy
        out.narrow(dim, core_lo, core_hi - core_lo).copy_(x.narrow(dim, core_lo + whole, core_hi - core_lo))
    elif core_hi > core_lo:
        n = core_hi - core_lo
        step = _frames_per_pass(x)
        planes = _float_planes(x, step, *x.shape[1:])
        blend = _float_planes(x, *planes.narrow(dim, 0, n).shape)
        for t, m in _passes(x.shape[0], step):  # frame by frame on the CPU, in cache
            p = planes[:m].copy_(x[t:t + m])
            torch.lerp(p.narrow(dim, core_lo + whole, n), p.narrow(dim, core_lo + whole + 1, n), frac,
                       out=blend[:m])
            out[t:t + m].narrow(dim, core_lo, n).copy_(blend[:m].add_(0.5))
    for i in range(lo, hi):  # at most one output line each side reads only the edge line
        if not core_lo <= i < core_hi:
            out.narrow(dim, i, 1).copy_(x.narrow(dim, min(max(i + whole, 0), size - 1), 1))
    for start, length in ((0, lo), (hi, size - hi)):
        if length > 0:
            _fill_span(out.narrow(dim, start, length), colours)
    return out


def _fill_tuple(fill: Fill, channels: int) -> tuple[int, ...]:
    if isinstance(fill, (int, float)):
        return (int(fill),) * channels
    colours = tuple(int(v) for v in fill)
    if len(colours) != channels:
        raise ValueError(f"fill needs {channels} values, got {fill!r}")
    return colours


def rotate_matrix(angle: float, width: int, height: int) -> list[float]:
    """The inverse affine matrix ``Image.rotate(angle)`` uses (no expand, centre (w/2, h/2))."""
    center_x, center_y = width / 2, height / 2
    angle = -math.radians(angle)
    matrix = [round(math.cos(angle), 15), round(math.sin(angle), 15), 0.0,
              round(-math.sin(angle), 15), round(math.cos(angle), 15), 0.0]
    a, b, c, d, e, f = matrix
    matrix[2] = a * -center_x + b * -center_y + c + center_x
    matrix[5] = d * -center_x + e * -center_y + f + center_y
    return matrix


def _rotate(x: torch.Tensor, angle, fill) -> torch.Tensor:
    H, W = x.shape[2:]
    angle = angle % 360.0
    if angle == 0:
        return x
    if angle == 180:  # PIL transposes: exact
        return torch.flip(x, dims=(2, 3))
    if angle in (90, 270) and W == H:
        return torch.rot90(x, 1 if angle == 90 else 3, dims=(2, 3)).contiguous()
    return _affine(x, rotate_matrix(angle, W, H), fill)


def _shear_x(x, a, fill):
    return _affine(x, (1, a, 0, 0, 1, 0), fill)


def _shear_y(x, a, fill):
    return _affine(x, (1, 0, 0, a, 1, 0), fill)


def _translate_x(x, a, fill):  # PIL: _affine(x, (1, 0, a * W, 0, 1, 0), fill)
    return _translate(x, a * x.shape[3], 3, fill)


def _translate_y(x, a, fill):  # PIL: _affine(x, (1, 0, 0, 0, 1, a * H), fill)
    return _translate(x, a * x.shape[2], 2, fill)


TENSOR_OPS: dict[str, Callable[[torch.Tensor, object, Fill], torch.Tensor]] = {
    "AutoContrast": _autocontrast,
    "Equalize": _equalize,
    "Invert": _invert,
    "Rotate": _rotate,
    "PosterizeIncreasing": _posterize,
    "SolarizeIncreasing": _solarize,
    "SolarizeAdd": _solarize_add,
    "ColorIncreasing": _color,
    "ContrastIncreasing": _contrast,
    "BrightnessIncreasing": _brightness,
    "SharpnessIncreasing": _sharpness,
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "TranslateXRel": _translate_x,
    "TranslateYRel": _translate_y,
}


# value-by-value ops: they run on the frames as they are laid out, (T, H, W, 3) or planar
ANY_LAYOUT = frozenset({"Invert", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
                        "BrightnessIncreasing"})


def apply_ops_tensor(frames_uint8: torch.Tensor, ops: list[AppliedOp], fill: Fill = FILL) -> torch.Tensor:
    """The clip's ops (from ``VideoRandAugment.draw``), in order, on every frame at once.

    ``frames_uint8``: uint8 (T, H, W, 3). Returns uint8 (T, H, W, 3), contiguous; the input is
    never modified (with no ops it is returned as it is). The frames go planar (T, 3, H, W)
    at the first op that works on planes and back at the end; value-by-value ops before that
    run on (T, H, W, 3) directly.
    """
    if frames_uint8.dtype != torch.uint8 or frames_uint8.dim() != 4 or frames_uint8.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames_uint8.dtype} "
                         f"{tuple(frames_uint8.shape)}")
    if not ops:
        return frames_uint8
    x, planar = frames_uint8.contiguous(), False
    for op in ops:
        try:
            fn = TENSOR_OPS[op.name]
        except KeyError:
            raise ValueError(f"no tensor implementation of RandAugment op {op.name!r}") from None
        if not planar and op.name not in ANY_LAYOUT:  # planar from the first op that needs it
            x, planar = _to_planar(x), True
        x = fn(x, op.arg, fill)
    return _to_frames(x) if planar else x


__all__ = ["TENSOR_OPS", "apply_ops_tensor", "rotate_matrix"]
