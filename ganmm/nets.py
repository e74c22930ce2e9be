"""Batched networks: K generators and K critics trained as one ensemble.

Every ensemble takes and returns tensors with the cluster axis first,
``(K, B, ...)``: member ``k`` only ever sees slice ``k``. The MLP family stacks
the K weight matrices and runs one batched matmul per layer
(:class:`BatchedLinear`); the convolutional family for 28x28 images puts the K
members side by side as channel groups of one grouped convolution. Neither
loops over K in Python.

``member(k)`` returns member ``k`` as an ordinary ``nn.Sequential`` with copied
weights: the test that the ensemble equals K separate networks uses it, and so
does the speed benchmark's per-network loop.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


class BatchedLinear(nn.Module):
    """K independent ``nn.Linear(d_in, d_out)`` layers: ``(K, B, d_in) -> (K, B, d_out)``."""

    def __init__(self, k: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(k, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)  # (K, B, d_out)

    def member(self, k: int) -> nn.Linear:
        d_in, d_out = self.weight.shape[1:]
        layer = nn.Linear(d_in, d_out)
        with torch.no_grad():
            layer.weight.copy_(self.weight[k].T)
            layer.bias.copy_(self.bias[k, 0])
        return layer


def _act(name: str) -> nn.Module:
    return nn.LeakyReLU(0.2) if name == "lrelu" else nn.ReLU()


class _BatchedMLP(nn.Module):
    """Linear layers with activations between them, batched over K."""

    def __init__(self, k: int, sizes: list[int], act: str, out_act: str | None):
        super().__init__()
        self.k = k
        self.layers = nn.ModuleList(BatchedLinear(k, a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = _act(act)
        self.act_name, self.out_act = act, out_act

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:  # (K, B, d_in)
        """``out``: a tensor of the output's shape to write the output into, when
        no graph is kept (a kept buffer, not a fresh one per call)."""
        graph = torch.is_grad_enabled()
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i < last:
                x = layer(x)
                x = self.act(x) if graph else self._act_in_place(x)
            elif out is not None and not graph:
                x = torch.baddbmm(layer.bias, x, layer.weight, out=out)
            else:
                x = layer(x)
        if self.out_act != "sigmoid":
            return x
        return x.sigmoid_() if not graph else torch.sigmoid(x)  # no graph: in place

    def _scratch(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A tensor of ``shape`` (``like``'s device and dtype) kept from call to
        call for the hand-written steps' big intermediates (:func:`kept_tensor`)."""
        return kept_tensor(self.__dict__.setdefault("_kept", {}), name, shape, like.device, like.dtype)

    def _act_in_place(self, x: torch.Tensor) -> torch.Tensor:
        """The activation written into ``x`` (no graph kept: nothing needs the input)."""
        if isinstance(self.act, nn.LeakyReLU):
            return F.leaky_relu_(x, self.act.negative_slope)
        return F.relu_(x)

    def single(self, k: int) -> "_BatchedMLP":
        """Member ``k`` as an ensemble of one: the same class (and methods), its
        own copy of the weights, ``(1, B, ...) -> (1, B, ...)``."""
        kept = self.__dict__.get("_kept")  # the ensemble's scratch memory is not copied: the member starts empty
        one = copy.deepcopy(self, {} if kept is None else {id(kept): {}})
        one.k = 1
        for layer in one.layers:
            layer.weight = nn.Parameter(layer.weight.detach()[k:k + 1].clone())
            layer.bias = nn.Parameter(layer.bias.detach()[k:k + 1].clone())
        return one

    def member(self, k: int) -> nn.Sequential:
        mods: list[nn.Module] = []
        for i, layer in enumerate(self.layers):
            mods.append(layer.member(k))
            if i < len(self.layers) - 1:
                mods.append(_act(self.act_name))
        if self.out_act == "sigmoid":
            mods.append(nn.Sigmoid())
        return nn.Sequential(*mods)


class MLPGenerator(_BatchedMLP):
    """K generators ``z (K, B, z_dim) -> x (K, B, d)``; sigmoid output for [0, 1] images."""

    def __init__(self, k: int, z_dim: int, d: int, hidden: int, depth: int = 2, sigmoid: bool = False):
        super().__init__(k, [z_dim] + [hidden] * depth + [d], "relu", "sigmoid" if sigmoid else None)
        self.z_dim = z_dim


class MLPCritic(_BatchedMLP):
    """K critics ``x (K, B, d) -> score (K, B)``."""

    def __init__(self, k: int, d: int, hidden: int, depth: int = 2):
        if depth < 1:
            raise ValueError(f"a critic needs at least one hidden layer, got depth {depth}")
        super().__init__(k, [d] + [hidden] * depth + [1], "lrelu", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)  # (K, B)

    @torch.no_grad()
    def wgan_gp_gradients(self, real: torch.Tensor, fake: torch.Tensor, t: torch.Tensor,
                          gp_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The WGAN-GP critic loss of every critic and its gradient in every weight,
        by hand: sets each parameter's ``.grad`` and returns the loss and the
        Wasserstein estimate, each summed over the K critics.

        ``real``, ``fake``: (K, B, d); ``t``: (K, B, 1), the interpolates being
        ``t * real + (1 - t) * fake``. The loss is, per critic,
        ``mean D(fake) - mean D(real) + gp_weight * mean (|grad_x D(mix)| - 1)^2``,
        what ``torch.autograd`` gives with a double backward (the tests compare
        the two). Three facts make the hand-written pass shorter:

        - a LeakyReLU network is piecewise linear, so the input gradient on a row
          is ``W1 diag(s1) W2 diag(s2) w3`` with the active slopes s (1 or 0.2),
          which do not move under a small change of the weights: the penalty's
          gradient runs through the weights only (autograd's double backward also
          carries the slopes' zero derivative back through a forward pass);
        - the first layer is linear, so the interpolates' first pre-activations
          are the same interpolation of the real and fake rows' ones: the
          interpolates themselves are never formed;
        - each weight's gradient from the loss and from the penalty add into one
          buffer, last step's (the generator step, which needs no critic
          gradient, computes none: :func:`generator_gradients`).

        On mnist5k, K=10, a GAN step costs 4.55 GFLOP this way and 5.83 through
        autograd, and takes about 1.6x less time (``python -m ganmm bench``)."""
        layers, neg = self.layers, self.act.negative_slope
        W = [layer.weight for layer in layers]  # (K, d_in, d_out)

        def slope(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # grad * lrelu' at out
            # a LeakyReLU keeps the sign, so its output tells the slope as its input would
            return torch.ops.aten.leaky_relu_backward(grad, out, neg, True)

        k, b = real.shape[:2]
        # forward: rows [real | fake | interpolates] through the hidden layers
        a_real = torch.baddbmm(layers[0].bias, real, W[0])
        a_fake = torch.baddbmm(layers[0].bias, fake, W[0])
        h = torch.cat([a_real, a_fake, torch.lerp(a_fake, a_real, t)], dim=1,
                      out=self._scratch("rows", (k, 3 * b, W[0].shape[2]), real))  # (K, 3B, h1)
        outs = []  # per hidden layer, (K, 3B, h), activated in place (no second 1 MB tensor)
        for i in range(1, len(layers)):
            outs.append(F.leaky_relu_(h, neg))
            if i < len(layers) - 1:
                h = torch.baddbmm(layers[i].bias, outs[-1], W[i], out=self._scratch(f"hidden{i}", h.shape, h))
        # the scores themselves are not needed: with mean-reduced losses, the top
        # layer's weight gradient is the difference of the mean last hidden outputs,
        # and the Wasserstein estimate that gradient times the weight (the bias cancels)
        sign = self._signs(b, real)  # d loss / d score: -1/B on real rows, +1/B on fake rows
        grad_top = torch.matmul(sign.T, outs[-1][:, :2 * b]).transpose(1, 2)  # (K, h_last, 1)
        w_dist = -(grad_top * W[-1]).sum()  # sum over critics of mean D(real) - mean D(fake)
        # the interpolates' input gradient, u_j = d score / d (hidden output j)
        mix = [o[:, 2 * b:] for o in outs]
        u = [slope(W[-1].transpose(1, 2).expand(-1, b, -1), mix[-1])]  # (K, B, h_last)
        for i in range(len(layers) - 2, 0, -1):
            u.insert(0, slope(torch.bmm(u[0], W[i].transpose(1, 2)), mix[i - 1]))
        g = torch.bmm(u[0], W[0].transpose(1, 2), out=self._scratch("input_grad", real.shape, real))  # (K, B, d)
        norm = torch.linalg.vector_norm(g, dim=2, keepdim=True)  # (K, B, 1)
        excess = norm - 1
        penalty = excess.square().sum() / b  # sum over critics of mean (|g| - 1)^2
        # d loss / d g = gamma = unit * g, unit = gp_weight * 2/B * (|g| - 1) / |g| per row;
        # at |g| = 0 autograd's norm gives 0 too. gamma is never formed: the products
        # that use it take unit on their (K, B, h1) side, 6x smaller than g
        unit = torch.where(norm > 0, excess / norm, 0.0).mul_(gp_weight * 2.0 / b)
        # backward of mean D(fake) - mean D(real), from d loss / d score (sign)
        grads_w: list[torch.Tensor] = [torch.empty(0)] * len(layers)
        grads_b: list[torch.Tensor] = [torch.empty(0)] * len(layers)
        grads_w[-1] = grad_top
        grads_b[-1] = torch.zeros_like(layers[-1].bias)  # the two means cancel
        delta = slope(sign * W[-1].transpose(1, 2), outs[-1][:, :2 * b])  # d loss / d last pre-activation
        for i in range(len(layers) - 2, -1, -1):
            grads_b[i] = delta.sum(1, keepdim=True)
            buf = _reuse(layers[i].weight)
            if i == 0:
                grads_w[0] = torch.bmm(real.transpose(1, 2), delta[:, :b], out=buf)
                grads_w[0].baddbmm_(fake.transpose(1, 2), delta[:, b:])
            else:
                grads_w[i] = torch.bmm(outs[i - 1][:, :2 * b].transpose(1, 2), delta, out=buf)
                delta = slope(torch.bmm(delta, W[i].transpose(1, 2)), outs[i - 1][:, :2 * b])
        # backward of the penalty, through the weights only
        grads_w[0].baddbmm_(g.transpose(1, 2), u[0] * unit)  # gamma^T u_0
        e = torch.bmm(g, W[0]).mul_(unit)  # d loss / d u_0 = gamma W_0
        for i in range(1, len(layers) - 1):
            rho = slope(e, mix[i - 1])  # d loss / d (u_i W_i^T)
            grads_w[i].baddbmm_(rho.transpose(1, 2), u[i])
            e = torch.bmm(rho, W[i])  # d loss / d u_i
        grads_w[-1] += slope(e, mix[-1]).sum(1).unsqueeze(-1)
        for layer, gw, gb in zip(layers, grads_w, grads_b):
            layer.weight.grad, layer.bias.grad = gw, gb
        return gp_weight * penalty - w_dist, w_dist

    def _signs(self, b: int, like: torch.Tensor) -> torch.Tensor:
        """(2B, 1): -1/B on the real rows, +1/B on the fake rows, made once per batch
        size, device and dtype, where the data lie (no copy from the host per step)."""
        sign = self.__dict__.get("_sign")
        if sign is None or sign.shape[0] != 2 * b or sign.device != like.device or sign.dtype != like.dtype:
            sign = torch.full((2 * b, 1), 1.0 / b, device=like.device, dtype=like.dtype)
            sign[:b] = -1.0 / b
            self.__dict__["_sign"] = sign
        return sign

    def member(self, k: int) -> nn.Sequential:
        return nn.Sequential(*super().member(k), nn.Flatten(0))


def kept_tensor(store: dict, name: str, shape: tuple[int, ...], device: torch.device,
                dtype: torch.dtype) -> torch.Tensor:
    """``store[name]``, an uninitialised tensor of ``shape`` kept from call to call
    (made anew when the shape, device or dtype differ; ``device`` as a tensor
    reports it, e.g. ``cuda:0``, so that it compares equal); each user overwrites
    what the last one left. The steps write their big intermediates into such
    tensors: a fresh 1-2 MB tensor per step is often pages the allocator has
    handed back to the system, faulted in and zeroed again one by one (on
    mnist5k, K=10, a GAN step took about 700 page faults and 10% more time
    before its big intermediates were kept)."""
    buf = store.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.device != device or buf.dtype != dtype:
        buf = store[name] = torch.empty(shape, device=device, dtype=dtype)
    return buf


def _reuse(param: torch.Tensor) -> torch.Tensor | None:
    """``param``'s gradient buffer from the step before, to write the new one into
    (a fresh 4 MB tensor per step costs measurably more), or None. So the
    hand-written steps overwrite ``.grad`` in place: a reference to it kept
    from one step to the next sees the new values."""
    old = param.grad
    return old if old is not None and old.shape == param.shape else None


@torch.no_grad()
def generator_gradients(G: MLPGenerator, D: MLPCritic, z: torch.Tensor) -> torch.Tensor:
    """The WGAN generator loss ``-mean D(G(z))`` of every GAN, summed over the K,
    and its gradient in every generator weight, by hand (sets ``.grad``; the
    critics' weights get none, as the update does not need them).

    What ``loss.backward()`` through the two networks gives (a test compares
    them), without the graph: d loss / d x runs back through the critic's
    weights and slopes, then through the generator, whose weights' gradients
    are written into last step's buffers."""
    b = z.shape[1]
    neg = D.act.negative_slope
    inputs, h = [], z  # each generator layer's input
    last = len(G.layers) - 1
    for i, layer in enumerate(G.layers):
        inputs.append(h)
        out = G._scratch("out", (*h.shape[:2], layer.weight.shape[2]), h) if i == last else None
        h = torch.baddbmm(layer.bias, h, layer.weight, out=out)
        if i < last:
            h = h.relu_()
    x = h.sigmoid_() if G.out_act == "sigmoid" else h  # (K, B, d)
    outs, c = [], x  # the critic's hidden outputs, activated in place (they keep the sign)
    for layer in D.layers[:-1]:
        c = F.leaky_relu_(torch.baddbmm(layer.bias, c, layer.weight), neg)
        outs.append(c)
    loss = -torch.baddbmm(D.layers[-1].bias, c, D.layers[-1].weight).mean((1, 2)).sum()
    # d loss / d x, through the critic
    g = (D.layers[-1].weight.transpose(1, 2) * (-1.0 / b)).expand(-1, b, -1)  # d loss / d last hidden
    for i in range(len(D.layers) - 2, -1, -1):
        g = torch.ops.aten.leaky_relu_backward(g, outs[i], neg, True)
        g = torch.bmm(g, D.layers[i].weight.transpose(1, 2), out=D._scratch("input_grad", x.shape, x) if i == 0 else None)
    if G.out_act == "sigmoid":  # into g's own memory (a fresh 2 MB tensor costs more)
        g = torch.ops.aten.sigmoid_backward.grad_input(g, x, grad_input=g)
    # through the generator
    for i in range(len(G.layers) - 1, -1, -1):
        layer = G.layers[i]
        layer.weight.grad = torch.bmm(inputs[i].transpose(1, 2), g, out=_reuse(layer.weight))
        layer.bias.grad = g.sum(1, keepdim=True)
        if i > 0:  # inputs[i] is the ReLU's output: it passes where it is above 0
            g = torch.ops.aten.threshold_backward(torch.bmm(g, layer.weight.transpose(1, 2)), inputs[i], 0)
    return loss


class _Unflatten(nn.Module):
    """``(B, c*h*w) -> (B, c, h, w)`` for one member; ``member()`` uses it."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _grouped_member(conv: nn.Module, k: int) -> nn.Module:
    """Member ``k`` of a grouped (transposed) convolution as an ungrouped layer."""
    g = conv.groups
    if isinstance(conv, nn.ConvTranspose2d):
        # weight (g*c_in, c_out, kh, kw): group k owns rows k*c_in:(k+1)*c_in
        c_in, c_out = conv.in_channels // g, conv.out_channels // g
        one = nn.ConvTranspose2d(c_in, c_out, conv.kernel_size, conv.stride, conv.padding)
        rows = slice(k * c_in, (k + 1) * c_in)
    else:
        # weight (g*c_out, c_in, kh, kw): group k owns rows k*c_out:(k+1)*c_out
        c_in, c_out = conv.in_channels // g, conv.out_channels // g
        one = nn.Conv2d(c_in, c_out, conv.kernel_size, conv.stride, conv.padding)
        rows = slice(k * c_out, (k + 1) * c_out)
    with torch.no_grad():
        one.weight.copy_(conv.weight[rows])
        one.bias.copy_(conv.bias[k * c_out:(k + 1) * c_out])
    return one


class ConvGenerator(nn.Module):
    """K DCGAN-style generators for 28x28 images, as grouped transposed convolutions.

    ``z (K, B, z_dim) -> linear -> (c, 7, 7) -> 14x14 -> 28x28 -> sigmoid``; output
    ``(K, B, 784)`` in [0, 1].
    """

    def __init__(self, k: int, z_dim: int, channels: int = 32):
        super().__init__()
        self.k, self.z_dim, self.c = k, z_dim, channels
        c = channels
        self.fc = BatchedLinear(k, z_dim, 2 * c * 7 * 7)
        self.up1 = nn.ConvTranspose2d(k * 2 * c, k * c, 4, 2, 1, groups=k)  # 7 -> 14
        self.up2 = nn.ConvTranspose2d(k * c, k, 4, 2, 1, groups=k)  # 14 -> 28

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k, b = z.shape[:2]
        h = torch.relu(self.fc(z))  # (K, B, 2c*49)
        h = h.transpose(0, 1).reshape(b, k * 2 * self.c, 7, 7)  # members as channel groups
        h = torch.relu(self.up1(h))  # (B, K*c, 14, 14)
        x = torch.sigmoid(self.up2(h))  # (B, K, 28, 28)
        return x.reshape(b, k, 784).transpose(0, 1)  # (K, B, 784)

    def member(self, k: int) -> nn.Sequential:
        return nn.Sequential(
            self.fc.member(k), nn.ReLU(), _Unflatten((2 * self.c, 7, 7)),
            _grouped_member(self.up1, k), nn.ReLU(),
            _grouped_member(self.up2, k), nn.Sigmoid(), nn.Flatten(1),
        )


class ConvCritic(nn.Module):
    """K critics for 28x28 images as grouped convolutions: ``(K, B, 784) -> (K, B)``."""

    def __init__(self, k: int, channels: int = 32):
        super().__init__()
        self.k, self.c = k, channels
        c = channels
        self.down1 = nn.Conv2d(k, k * c, 4, 2, 1, groups=k)  # 28 -> 14
        self.down2 = nn.Conv2d(k * c, k * 2 * c, 4, 2, 1, groups=k)  # 14 -> 7
        self.fc = BatchedLinear(k, 2 * c * 7 * 7, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        h = x.transpose(0, 1).reshape(b, k, 28, 28)  # (B, K, 28, 28)
        h = self.act(self.down1(h))
        h = self.act(self.down2(h))  # (B, K*2c, 7, 7)
        h = h.reshape(b, k, 2 * self.c * 49).transpose(0, 1)  # (K, B, 2c*49)
        return self.fc(h).squeeze(-1)  # (K, B)

    def member(self, k: int) -> nn.Sequential:
        return nn.Sequential(
            _Unflatten((1, 28, 28)),
            _grouped_member(self.down1, k), nn.LeakyReLU(0.2),
            _grouped_member(self.down2, k), nn.LeakyReLU(0.2), nn.Flatten(1),
            self.fc.member(k), nn.Flatten(0),
        )


class Classifier(nn.Module):
    """The E-step's classifier ``h``: ``x (B, d) -> logits (B, K)``.

    It returns logits; the loss applies softmax once (cross-entropy), and
    posteriors are ``softmax(logits)`` (the reference code applied it twice).
    """

    def __init__(self, d: int, k: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, k),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_gans(k: int, d: int, *, arch: str, z_dim: int, hidden: int, channels: int,
               sigmoid: bool) -> tuple[nn.Module, nn.Module]:
    """The generator and critic ensembles for ``arch`` in {"mlp", "conv"}."""
    if arch == "conv":
        if d != 784:
            raise ConfigError(f"the convolutional family needs 28x28 images (784 features), got {d}; "
                              "choose arch 'mlp'")
        return ConvGenerator(k, z_dim, channels), ConvCritic(k, channels)
    return MLPGenerator(k, z_dim, d, hidden, sigmoid=sigmoid), MLPCritic(k, d, hidden)


@torch.no_grad()
def reset_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Redraw every weight and bias from ``generator`` with PyTorch's default
    bound ``1/sqrt(fan_in)``, so that a seed fixes the initial networks whatever
    the global RNG holds (runs in other threads keep their own streams)."""
    for m in module.modules():
        if isinstance(m, BatchedLinear):
            bound = 1.0 / math.sqrt(m.weight.shape[1])
            m.weight.uniform_(-bound, bound, generator=generator)
            m.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
            if isinstance(m, nn.ConvTranspose2d):
                fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
            bound = 1.0 / math.sqrt(max(fan_in, 1))
            m.weight.uniform_(-bound, bound, generator=generator)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=generator)
