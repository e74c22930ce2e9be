"""The batched ensembles compute what K separate networks compute."""

import pytest
import torch

from ganmm.nets import Classifier, ConvCritic, ConvGenerator, MLPCritic, MLPGenerator, reset_parameters

K, B, Z = 3, 4, 8


def _check_same_outputs_and_grads(ensemble, x):
    x = x.clone().requires_grad_(True)
    out = ensemble(x)  # (K, B, ...)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in ensemble.named_parameters()}
    for k in range(K):
        member = ensemble.member(k)
        xk = x[k].detach().clone().requires_grad_(True)
        out_k = member(xk)
        torch.testing.assert_close(out_k, out[k].detach(), rtol=1e-4, atol=1e-5)
        (out_k * weights[k]).sum().backward()
        torch.testing.assert_close(xk.grad, x.grad[k], rtol=1e-4, atol=1e-5)
        # every member parameter's gradient equals the ensemble's slice for member k
        member_grads = [p.grad.flatten() for p in member.parameters()]
        assert sum(g.numel() for g in member_grads) * K == sum(g.numel() for g in grads.values())
    return grads


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


def test_parameter_gradients_match_member_by_member():
    torch.manual_seed(0)
    ens = MLPCritic(K, 5, 16)
    x = torch.randn(K, B, 5)
    ens(x).sum().backward()
    for k in range(K):
        member = ens.member(k)
        member(x[k]).sum().backward()
        first = member[0]
        torch.testing.assert_close(first.weight.grad, ens.layers[0].weight.grad[k].T)
        torch.testing.assert_close(first.bias.grad, ens.layers[0].bias.grad[k, 0])


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
