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
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of ``x`` (B, side*side) turned by up to ``rotation`` degrees,
    moved by up to ``shift`` of its half-width and scaled by up to ``1 +- scale``,
    each drawn uniformly and independently per image; bilinear, zeros outside."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator, device=x.device) * 2 - 1  # (B, 4) in [-1, 1)
    angle = u[:, 0] * math.radians(rotation)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * shift], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, [b, 1, side, side], align_corners=False)
    return F.grid_sample(x.reshape(b, 1, side, side), grid, align_corners=False).reshape(b, -1)
