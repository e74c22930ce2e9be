"""The batched ensembles compute what K separate networks compute."""

import pytest
import torch

from ganmm.nets import (Classifier, ConvCritic, ConvGenerator, MLPCritic, MLPGenerator, generator_gradients,
                        reset_parameters)

K, B, Z = 3, 4, 8


def _member_slices(ensemble, k):
    """(ensemble parameter, the slice member k owns, whether it is stored transposed)."""
    from torch import nn

    from ganmm.nets import BatchedLinear

    out = []
    for m in ensemble.modules():
        if isinstance(m, BatchedLinear):
            out += [(m.weight, lambda g, k=k: g[k].T), (m.bias, lambda g, k=k: g[k, 0])]
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            n_rows = m.weight.shape[0] // m.groups
            n_out = m.out_channels // m.groups
            out += [(m.weight, lambda g, k=k, r=n_rows: g[k * r:(k + 1) * r]),
                    (m.bias, lambda g, k=k, r=n_out: g[k * r:(k + 1) * r])]
    return out


def _check_same_outputs_and_grads(ensemble, x):
    members = [ensemble.member(k) for k in range(K)]  # copies of the weights before any step
    x = x.clone().requires_grad_(True)
    out = ensemble(x)  # (K, B, ...)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    for k, member in enumerate(members):
        xk = x[k].detach().clone().requires_grad_(True)
        out_k = member(xk)
        torch.testing.assert_close(out_k, out[k].detach(), rtol=1e-4, atol=1e-5)
        (out_k * weights[k]).sum().backward()
        torch.testing.assert_close(xk.grad, x.grad[k], rtol=1e-4, atol=1e-5)
        # every parameter gradient of member k equals its slice of the ensemble's gradient
        member_params = [p for p in member.parameters()]
        slices = _member_slices(ensemble, k)
        assert len(member_params) == len(slices)
        for p, (ens_param, take) in zip(member_params, slices):
            torch.testing.assert_close(p.grad, take(ens_param.grad), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make,d_in", [
    (lambda: MLPGenerator(K, Z, 5, 16, sigmoid=True), Z),
    (lambda: MLPCritic(K, 5, 16), 5),
    (lambda: ConvGenerator(K, Z, channels=4), Z),
    (lambda: ConvCritic(K, channels=4), 784),
])
def test_ensemble_equals_separate_networks(make, d_in):
    torch.manual_seed(0)
    ens = make()
    _check_same_outputs_and_grads(ens, torch.rand(K, B, d_in))


@pytest.mark.parametrize("make,d_in", [
    (lambda: MLPGenerator(K, Z, 5, 16, sigmoid=True), Z),
    (lambda: MLPGenerator(K, Z, 5, 16), Z),
    (lambda: MLPCritic(K, 5, 16), 5),
])
def test_without_a_graph_the_mlp_gives_the_same_output(make, d_in):
    """Without a graph the activations run in place, and a generator's samples can
    go into a buffer the caller keeps (the GAN and classifier steps do): the same
    values, the input left alone, the buffer overwritten on every call."""
    torch.manual_seed(0)
    net = make()
    kept = torch.full((K, B, 5), float("nan"))
    for _ in range(2):
        x = torch.randn(K, B, d_in)
        x_before = x.clone()
        want = net(x).detach()
        with torch.no_grad():
            torch.testing.assert_close(net(x), want)
            if isinstance(net, MLPGenerator):
                assert net(x, out=kept).data_ptr() == kept.data_ptr()
                torch.testing.assert_close(kept, want)
        torch.testing.assert_close(x, x_before)


def test_members_are_independent():
    """Changing member 0's input leaves every other member's output alone."""
    torch.manual_seed(0)
    for ens, d in ((MLPCritic(K, 5, 16), 5), (ConvCritic(K, channels=4), 784)):
        x = torch.rand(K, B, d)
        y = x.clone()
        y[0] += 1.0
        a, b = ens(x), ens(y)
        assert not torch.allclose(a[0], b[0])
        torch.testing.assert_close(a[1:], b[1:])


def _autograd_wgan_gp(critic, real, fake, t, gp_weight):
    """The WGAN-GP critic loss as autograd computes it: the penalty's input
    gradient by a double backward; the loss and its gradient in every parameter."""
    b = real.shape[1]
    scores = critic(torch.cat([real, fake], dim=1))
    loss = (scores[:, b:].mean(1) - scores[:, :b].mean(1)).sum()
    mix = torch.lerp(fake, real, t).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    loss = loss + gp_weight * ((grad.norm(dim=2) - 1) ** 2).mean(1).sum()
    grads = torch.autograd.grad(loss, list(critic.parameters()))
    return loss.detach(), grads


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_critic_gradients_by_hand_are_autograds(depth):
    """The closed-form critic step gives the loss, the Wasserstein estimate and the
    gradient in every weight that autograd's double backward gives."""
    torch.manual_seed(depth)
    critic = MLPCritic(K, 6, 16, depth=depth)
    real, fake = torch.randn(K, 32, 6), torch.randn(K, 32, 6) + 0.5
    t = torch.rand(K, 32, 1)
    loss, grads = _autograd_wgan_gp(critic, real, fake, t, 10.0)
    got, w_dist = critic.wgan_gp_gradients(real, fake, t, 10.0)
    torch.testing.assert_close(got, loss)
    with torch.no_grad():
        scores = critic(torch.cat([real, fake], dim=1))
    torch.testing.assert_close(w_dist, (scores[:, :32].mean(1) - scores[:, 32:].mean(1)).sum())
    for p, g in zip(critic.parameters(), grads):
        torch.testing.assert_close(p.grad, g)
    # the penalty reaches every weight matrix: with the Wasserstein term alone they differ
    _, plain = _autograd_wgan_gp(critic, real, fake, t, 0.0)
    for g, q in list(zip(grads, plain))[0::2]:
        assert not torch.allclose(g, q)


def test_critic_gradients_by_hand_where_the_input_gradient_vanishes():
    """A critic whose output weights are zero has zero input gradient everywhere:
    the penalty is then 1 per critic and, as through autograd's norm, moves no
    weight (no NaN from 0 / 0); the Wasserstein term moves the last layer."""
    torch.manual_seed(0)
    critic = MLPCritic(K, 6, 16)
    with torch.no_grad():
        critic.layers[-1].weight.zero_()
    real, fake, t = torch.randn(K, 8, 6), torch.randn(K, 8, 6), torch.rand(K, 8, 1)
    loss, grads = _autograd_wgan_gp(critic, real, fake, t, 10.0)
    got, _ = critic.wgan_gp_gradients(real, fake, t, 10.0)
    torch.testing.assert_close(got, loss)
    for p, g in zip(critic.parameters(), grads):
        assert torch.isfinite(p.grad).all()
        torch.testing.assert_close(p.grad, g)
    with pytest.raises(ValueError, match="hidden layer"):
        MLPCritic(K, 6, 16, depth=0)


@pytest.mark.parametrize("sigmoid,depth", [(True, 2), (False, 1), (False, 3)])
def test_generator_gradients_by_hand_are_autograds(sigmoid, depth):
    """The generator step's hand-written backward gives autograd's loss and
    generator gradients, and leaves the critics' gradients alone."""
    torch.manual_seed(depth)
    gen = MLPGenerator(K, 4, 6, 16, depth=depth, sigmoid=sigmoid)
    critic = MLPCritic(K, 6, 16, depth=depth)
    z = torch.randn(K, 32, 4)
    loss = -critic(gen(z)).mean(1).sum()
    expected = torch.autograd.grad(loss, list(gen.parameters()))
    got = generator_gradients(gen, critic, z)
    torch.testing.assert_close(got, loss.detach())
    for p, g in zip(gen.parameters(), expected):
        torch.testing.assert_close(p.grad, g)
    assert all(p.grad is None for p in critic.parameters())
    generator_gradients(gen, critic, z)  # again, into the same buffers
    for p, g in zip(gen.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


def test_single_member_is_an_ensemble_of_one():
    torch.manual_seed(0)
    critic = MLPCritic(K, 5, 16)
    x, fake, t = torch.randn(K, B, 5), torch.randn(K, B, 5), torch.rand(K, B, 1)
    critic.wgan_gp_gradients(x, fake, t, 10.0)
    for k in range(K):
        one = critic.single(k)
        torch.testing.assert_close(one(x[k:k + 1]), critic(x)[k:k + 1])
        one.wgan_gp_gradients(x[k:k + 1], fake[k:k + 1], t[k:k + 1], 10.0)
        for p, q in zip(one.parameters(), critic.parameters()):
            torch.testing.assert_close(p.grad[0], q.grad[k])
        assert all(p.data_ptr() != q.data_ptr() for p in one.parameters() for q in critic.parameters())


def test_reset_parameters_is_seeded_and_leaves_global_rng_alone():
    nets = []
    for _ in range(2):
        net = torch.nn.Sequential(ConvGenerator(2, 4, 4), Classifier(6, 2, 8))
        state = torch.get_rng_state()
        reset_parameters(net, torch.Generator().manual_seed(7))
        assert torch.equal(state, torch.get_rng_state())
        nets.append(net)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(p, q)
