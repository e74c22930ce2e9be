"""The classifier's image moves: what counts as an image, and what a move does."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganmm.augment import affine_grid, image_side, random_affine
from ganmm.errors import ConfigError
from ganmm.mixture import GANMM, GANMMConfig


def test_image_side_finds_square_images_in_unit_range():
    rng = np.random.default_rng(0)
    assert image_side(rng.random((5, 784)).astype(np.float32)) == 28
    assert image_side(rng.random((5, 64)).astype(np.float32)) == 8
    assert image_side(rng.normal(size=(5, 784)).astype(np.float32)) is None  # standardised, not pixels
    assert image_side(rng.random((5, 50)).astype(np.float32)) is None  # not square
    assert image_side(rng.random((5, 2)).astype(np.float32)) is None  # 2-D points
    assert image_side(rng.random((5, 16)).astype(np.float32)) is None  # 4x4 is too small to turn


def _blob(side=28, at=(14, 14)):
    img = torch.zeros(side, side)
    img[at[0] - 2:at[0] + 2, at[1] - 2:at[1] + 2] = 1.0
    return img.reshape(1, -1)


def _centre(flat, side=28):
    img = flat.reshape(side, side)
    r, c = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                          indexing="ij")
    return float((img * r).sum() / img.sum()), float((img * c).sum() / img.sum())


@pytest.mark.parametrize("side", [8, 28])
def test_affine_grid_is_pytorchs(side):
    theta = torch.randn(7, 2, 3, generator=torch.Generator().manual_seed(side))
    torch.testing.assert_close(affine_grid(theta, side),
                               F.affine_grid(theta, [7, 1, side, side], align_corners=False))


def test_a_kept_grid_cache_gives_pytorchs_grid_every_call():
    """The classifier keeps the grid's memory from step to step: each call must
    still give its own moves' grid, also when the batch size or side changes."""
    cache: dict = {}
    gen = torch.Generator().manual_seed(5)
    for b, side in [(7, 8), (7, 8), (3, 8), (3, 28), (7, 8)]:
        theta = torch.randn(b, 2, 3, generator=gen)
        torch.testing.assert_close(affine_grid(theta, side, cache),
                                   F.affine_grid(theta, [b, 1, side, side], align_corners=False))
    x = torch.rand(5, 64)
    kept = [random_affine(x, 8, rotation=15, shift=0.1, scale=0.1, generator=torch.Generator().manual_seed(s),
                          cache=cache) for s in (1, 2)]
    assert kept[0].data_ptr() == kept[1].data_ptr()  # the moved images live in the cache too
    kept = [random_affine(x, 8, rotation=15, shift=0.1, scale=0.1, generator=torch.Generator().manual_seed(s),
                          cache=cache).clone() for s in (1, 2)]
    fresh = [random_affine(x, 8, rotation=15, shift=0.1, scale=0.1, generator=torch.Generator().manual_seed(s))
             for s in (1, 2)]
    torch.testing.assert_close(kept, fresh)
    assert not torch.equal(kept[0], kept[1])


def test_no_move_is_the_identity():
    x = torch.rand(6, 784)
    out = random_affine(x, 28, rotation=0.0, shift=0.0, scale=0.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_shifts_stay_within_their_bound_and_go_both_ways():
    x = _blob().repeat(200, 1)
    out = random_affine(x, 28, rotation=0.0, shift=0.12, scale=0.0, generator=torch.Generator().manual_seed(1))
    rows, cols = zip(*(_centre(o) for o in out))
    moved = np.abs(np.array(rows) - 13.5), np.abs(np.array(cols) - 13.5)
    assert max(moved[0].max(), moved[1].max()) <= 0.12 * 14 + 0.05  # at most 1.7 px
    assert min(rows) < 13.0 and max(rows) > 14.0 and min(cols) < 13.0 and max(cols) > 14.0


def test_a_turn_keeps_the_ink_and_moves_an_off_centre_blob():
    x = _blob(at=(5, 14)).repeat(50, 1)
    out = random_affine(x, 28, rotation=30.0, shift=0.0, scale=0.0, generator=torch.Generator().manual_seed(2))
    ink = out.sum(1)
    assert torch.allclose(ink, x.sum(1), rtol=0.1)  # bilinear resampling keeps the ink, near enough
    cols = [_centre(o)[1] for o in out]
    assert max(abs(c - 13.5) for c in cols) > 2.0  # a blob 9 px above the centre swings sideways


def test_moves_are_seeded():
    x = torch.rand(4, 64)
    a = random_affine(x, 8, rotation=15, shift=0.1, scale=0.1, generator=torch.Generator().manual_seed(3))
    b = random_affine(x, 8, rotation=15, shift=0.1, scale=0.1, generator=torch.Generator().manual_seed(3))
    c = random_affine(x, 8, rotation=15, shift=0.1, scale=0.1, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def _model(**kw):
    return GANMM(GANMMConfig.from_preset("default", n_clusters=2, hidden=8, z_dim=4, batch_size=8, n_critic=1,
                                         n_pretrain=1, n_epoch=1, classifier_steps=1, max_iter=1, tol=-1,
                                         device="cpu", **kw))


def test_the_classifier_moves_images_only():
    images = np.random.default_rng(0).random((20, 64)).astype(np.float32)
    points = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    model = _model().fit(images)
    x = torch.rand(5, 64)
    assert not torch.allclose(model._classifier_view(x), x)
    model = _model().fit(points)
    x = torch.randn(5, 2)
    assert torch.equal(model._classifier_view(x), x)
    model = _model(classifier_augment="none").fit(images)
    x = torch.rand(5, 64)
    assert torch.equal(model._classifier_view(x), x)


@pytest.mark.parametrize("m", [300 * 64, 300 * 64 + 7, 7])
def test_pixel_noise_gives_every_pixel_its_own_draw_and_renews_its_pool(m):
    """A classifier step's pixel noise (on a CPU): s times the values of a pool
    of normal draws, each once (so each pixel its own value, as fresh draws
    would give); the next step adds them at other pixels; no value of the pool
    stays longer than ``POOL_RENEWAL`` steps, whatever the pool's size."""
    images = np.random.default_rng(0).random((20, 64)).astype(np.float32)
    model = _model(classifier_noise=0.1).fit(images)  # the fit's pool has another size: drawn anew
    renewal = model.POOL_RENEWAL
    added, pools = [], []
    for _ in range(3 * renewal + 1):
        flat = torch.zeros(m)
        model._add_pixel_noise(flat)
        pool = model._buffers["pixel_noise"]
        torch.testing.assert_close(flat.sort().values, 0.1 * pool.sort().values)
        added.append(flat)
        pools.append(pool.clone())
    last = torch.zeros(m, dtype=torch.long)  # the step that last redrew each value
    for step in range(1, len(pools)):
        last[pools[step] != pools[step - 1]] = step
        assert (step - last < renewal).all()
    if m > 1000:
        for noise in (added[0], added[-1]):
            assert abs(float(noise.mean())) < 0.003 and abs(float(noise.std()) - 0.1) < 0.003
        assert (added[1] != added[0]).float().mean() > 0.99  # another offset: other values at each pixel


def test_asking_for_image_moves_on_points_is_refused():
    points = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    with pytest.raises(ConfigError, match="square images"):
        _model(classifier_augment="affine").fit(points)
