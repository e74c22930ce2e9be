"""Random small affine moves of images, for the E-step classifier.

GANMM's classifier ``h`` learns from generated images only, and its argmax on
real images is the clustering. A digit stays the same digit when it is turned
a little, moved a pixel or two, or drawn a little larger; a classifier that
sees its training images under such moves learns what the generators' images
*show* rather than where their pixels lie, and groups real images by shape.
On mnist5k this is what lifts GANMM from k-means' level to above the paper's
(see the README's results and ``benchmarks/quality.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .nets import kept_tensor


def image_side(X: np.ndarray) -> int | None:
    """The side of square images in [0, 1] (8 for digits, 28 for MNIST), else None.

    Loaders scale images to [0, 1] and standardise every other kind of data, so
    a square number of features all in [0, 1] means square images."""
    d = X.shape[1]
    side = math.isqrt(d)
    if side < 8 or side * side != d or X.size == 0:
        return None
    return side if X.min() >= 0.0 and X.max() <= 1.0 else None


def random_affine(x: torch.Tensor, side: int, *, rotation: float, shift: float, scale: float,
                  generator: torch.Generator | None = None, cache: dict | None = None) -> torch.Tensor:
    """Each image of ``x`` (B, side*side) turned by up to ``rotation`` degrees,
    moved by up to ``shift`` of its half-width and scaled by up to ``1 +- scale``,
    each drawn uniformly and independently per image; bilinear, zeros outside.

    ``cache``: a dict the caller keeps from call to call (see :func:`affine_grid`);
    the moved images are then written into memory kept in it too, so the next
    call overwrites them."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator, device=x.device) * 2 - 1  # (B, 4) in [-1, 1)
    angle = u[:, 0] * math.radians(rotation)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * shift], 1)], 1)  # (B, 2, 3)
    grid = affine_grid(theta, side, cache)
    images = x.reshape(b, 1, side, side)
    if cache is None:
        return F.grid_sample(images, grid, align_corners=False).reshape(b, -1)
    # F.grid_sample's bilinear, zero-padded kernel, written into kept memory
    out = kept_tensor(cache, "moved", images.shape, x.device, x.dtype)
    return torch.ops.aten.grid_sampler_2d.out(images, grid, 0, 0, False, out=out).reshape(b, -1)


def affine_grid(theta: torch.Tensor, side: int, cache: dict | None = None) -> torch.Tensor:
    """``F.affine_grid(theta, [B, 1, side, side], align_corners=False)``, as one
    matrix product of the (B*2, 3) moves with the (3, side*side) pixel centres.

    PyTorch's version fills a (B, side, side, 3) grid of pixel centres for every
    image and multiplies B tiny matrices: on 640 images of 28x28 (one classifier
    step on mnist5k, K=10) it took 1.4 ms of a 9.4 ms step, this 0.4 ms.

    ``cache``: a dict kept by the caller between calls; the pixel centres and the
    grid's memory are kept in it and reused while the shapes stay the same (a
    fresh 4 MB grid per step is fresh pages for the system to hand out). The
    grid returned then lives in the cache: the next call overwrites it."""
    b = theta.shape[0]
    cache = {} if cache is None else cache
    key = (side, theta.device, theta.dtype)
    if cache.get("key") != key:
        centres = (torch.arange(side, device=theta.device, dtype=theta.dtype) * 2 + 1) / side - 1
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")
        cache.clear()
        cache["key"] = key
        cache["pixels"] = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones_like(xs).reshape(-1)])  # (3, side^2)
    out = kept_tensor(cache, "grid", (b * 2, side * side), theta.device, theta.dtype)
    grid = torch.mm(theta.reshape(b * 2, 3), cache["pixels"], out=out)  # (B*2, side^2): x' rows, then y' rows
    return grid.view(b, 2, side, side).permute(0, 2, 3, 1)  # (B, side, side, 2)
