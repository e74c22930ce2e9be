"""The batched ensembles compute what K separate networks compute."""

import pytest
import torch

from ganmm.nets import Classifier, ConvCritic, ConvGenerator, MLPCritic, MLPGenerator, reset_parameters

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


def test_critic_input_gradient_is_the_autograd_gradient_with_the_same_weight_gradients():
    """The gradient penalty's closed form gives what the double backward gives:
    the same d score / d x, and the same gradients of the penalty in every weight."""
    torch.manual_seed(0)
    critic = MLPCritic(K, 6, 16, depth=3)
    x = torch.randn(K, 32, 6)
    closed = critic.input_gradient(x)
    xr = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(critic(xr).sum(), xr, create_graph=True)
    torch.testing.assert_close(closed, auto)
    grads = []
    for g in (closed, auto):
        critic.zero_grad()
        ((g.norm(dim=2) - 1) ** 2).mean(1).sum().backward(retain_graph=True)
        grads.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in critic.parameters()])
    assert all(g.abs().sum() > 0 for g in grads[0][0::2])  # the penalty reaches every weight matrix
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_single_member_is_an_ensemble_of_one():
    torch.manual_seed(0)
    critic = MLPCritic(K, 5, 16)
    x = torch.randn(K, B, 5)
    for k in range(K):
        one = critic.single(k)
        torch.testing.assert_close(one(x[k:k + 1]), critic(x)[k:k + 1])
        torch.testing.assert_close(one.input_gradient(x[k:k + 1]), critic.input_gradient(x)[k:k + 1])
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
