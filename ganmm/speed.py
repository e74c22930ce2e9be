"""Speed benchmark of GANMM (``python -m ganmm bench``).

Everything is measured in one process, side by side, on the same machine:

- the time of one EM iteration of GANMM on ``mnist5k`` (K=10, the default
  preset), (a) with the batched ensemble the library trains and (b) with a
  loop over K separate networks of the same architecture taking the same
  steps (:class:`LoopGANMM`), their iterations timed in turns, and their
  ratio;
- the FLOPs of one GAN training step (counted by ``torch.utils.flop_counter``
  on the real step: forward, backward and the gradient penalty), the GFLOP/s
  achieved during the M-step, and that against the machine's dense matmul
  peak measured at the same precision (the peak is measured again after each
  timed block of steps, and the fraction is the median of the blocks' own
  ratios: :func:`paired_step_rate`);
- the GAN step with its gradients in closed form (the default for the MLP
  family: ``MLPCritic.wgan_gp_gradients``, ``nets.generator_gradients``)
  against autograd, with the gradient penalty's double backward;
- the E-step: training the classifier, and assigning every point;
- peak memory;
- how the iteration time grows with K (2, 5, 10, 20) and with N (1k, 5k, 20k:
  ``mnist5k`` repeated with a little noise).

The timings are medians over repeated iterations after a warm-up. Ratios, not
seconds, are what carry from one machine to another.
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .mixture import GANMM, GANMMConfig, denormals_flushed, resolve_device
from .nets import MLPCritic, MLPGenerator


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What ``python -m ganmm bench`` measures."""

    device: str = "auto"
    """"auto" (CUDA when present, else CPU), "cpu" or "cuda" """
    repeats: int = 5
    """timed EM iterations per measurement (after ``warmup``)"""
    warmup: int = 2
    """EM iterations run before timing (allocator, caches, kernel choice)"""
    clusters: int = 10
    """K of the main comparison"""
    k_values: tuple[int, ...] = (2, 5, 10, 20)
    """K of the scaling table (N = 5,000)"""
    n_values: tuple[int, ...] = (1000, 5000, 20000)
    """N of the scaling table (K = ``clusters``)"""
    loop_scaling: bool = True
    """also time the per-network loop in the K scaling table"""
    preset_overrides: tuple[tuple[str, object], ...] = ()
    """settings that differ from the default preset (``--quick`` shrinks the steps)"""
    step_sizes: tuple[tuple[int, int], ...] = ((128, 64), (128, 256), (256, 64), (256, 128), (512, 256))
    """(width, batch) of the MLP family whose GAN step rate is measured against the peak"""

    @staticmethod
    def quick(device: str = "auto") -> "BenchConfig":
        """A run of seconds for tests and a first look: fewer repeats, shorter steps."""
        return BenchConfig(device=device, repeats=2, warmup=1, k_values=(2, 10), n_values=(1000, 5000),
                           loop_scaling=False, preset_overrides=(("n_epoch", 2), ("classifier_steps", 2)),
                           step_sizes=((128, 64),))


# ------------------------------------------------------------------- helpers
def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn: Callable[[], object], dev: torch.device) -> float:
    _sync(dev)
    start = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - start


def matmul_rate(dev: torch.device, n: int, runs: int = 3, reps: int | None = None,
                dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an ``n`` x ``n`` dense matmul on ``dev`` at ``dtype``: the best of
    ``runs`` timings of ``reps`` products each (default 1 on a CPU, 10 on a GPU),
    after a warm-up."""
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    a @ b  # warm-up
    reps = reps or (10 if dev.type == "cuda" else 1)
    return max(2 * n ** 3 * reps / _timed(lambda: [a @ b for _ in range(reps)], dev) / 1e9 for _ in range(runs))


def matmul_peak(dev: torch.device, dtype: torch.dtype = torch.float32) -> tuple[float, int]:
    """The best dense matmul rate of this device at ``dtype`` (square products of a
    few sizes, the best of several runs each) and the size that reached it."""
    sizes = (2048, 4096, 8192) if dev.type == "cuda" else (1024, 2048, 3072)
    rates = {n: matmul_rate(dev, n, runs=3, reps=10 if dev.type == "cuda" else 3, dtype=dtype) for n in sizes}
    best = max(rates, key=rates.__getitem__)
    return rates[best], best


def paired_step_rate(run_steps: Callable[[], object], n_steps: int, flops: float, dev: torch.device,
                     repeats: int, peak_size: int) -> dict:
    """GAN steps and the matmul peak timed in turns, ``repeats`` times: each block
    of ``n_steps`` steps is followed by a measurement of the peak (the best of 3
    products of the size that gave the run's peak), and the peak fraction is the
    median of the blocks' own ratios. The speed of a shared machine drifts by
    several percent over a minute; a ratio of two figures taken a second apart
    does not carry that drift."""
    steps, peaks = [], []
    for _ in range(repeats):
        steps.append(_timed(run_steps, dev) / n_steps)
        peaks.append(matmul_rate(dev, peak_size))
    step = statistics.median(steps)
    return {"step_seconds": step, "gflops": flops / step / 1e9, "peak_gflops": statistics.median(peaks),
            "peak_fraction": statistics.median(flops / s / 1e9 / p for s, p in zip(steps, peaks)),
            "pairs": [{"step_seconds": s, "peak_gflops": p} for s, p in zip(steps, peaks)]}


class PeakMemory:
    """Peak memory of what runs between :meth:`reset` and :meth:`read`, in MB.

    CUDA: the allocator's peak. CPU: the process's peak resident set (Linux
    lets it be reset through ``/proc/self/clear_refs``; elsewhere it is the
    peak since the process started)."""

    def __init__(self, dev: torch.device):
        self.dev = dev

    def reset(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.dev)
            return
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass

    def read(self) -> float:
        if self.dev.type == "cuda":
            return torch.cuda.max_memory_allocated(self.dev) / 2 ** 20
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2 ** 20 if sys.platform == "darwin" else rss / 1024


def grown_mnist(X: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows of ``X``: whole copies plus a part, each copy after the first
    with a little pixel noise (clipped to [0, 1]) so that no two rows are equal."""
    rng = np.random.default_rng(seed)
    reps = -(-n // len(X))
    parts = [X] + [np.clip(X + rng.normal(0, 0.05, X.shape).astype(np.float32), 0, 1) for _ in range(reps - 1)]
    return np.concatenate(parts)[:n]


# ------------------------------------------------------- the per-network loop
class _One(nn.Module):
    """One member network seen as an ensemble of one: ``(1, B, ...) -> (1, B, ...)``."""

    k = 1

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[0]).unsqueeze(0)


class LoopGANMM(GANMM):
    """GANMM whose K generators and K critics are K separate networks, each with
    its own optimizers, trained one after another with the same steps as the
    batched ensemble (the reference code's structure). For the benchmark only."""

    name = "ganmm-loop"

    def _build_networks(self, d: int, images01: bool) -> None:
        super()._build_networks(d, images01)
        k, cfg = self.config.n_clusters, self.config
        # MLP networks stay MLPGenerator / MLPCritic (ensembles of one) so that their
        # gradients take the same closed-form path as the ensemble's; the others are
        # plain members
        self._gens = [(self.G_.single(i) if isinstance(self.G_, MLPGenerator) else _One(self.G_.member(i)))
                      .to(self.device_) for i in range(k)]
        self._crits = [(self.D_.single(i) if isinstance(self.D_, MLPCritic) else _One(self.D_.member(i)))
                       .to(self.device_) for i in range(k)]
        self._opts_g = [self._optimizer(g.parameters(), cfg.lr) for g in self._gens]
        self._opts_d = [self._optimizer(c.parameters(), cfg.lr) for c in self._crits]

    def _generate(self, n, z=None, *, G=None, k=None, out=None):
        if G is not None:  # one member, inside its own GAN step
            return super()._generate(n, z, G=G, k=k, out=out)
        k = self.config.n_clusters
        if z is None:
            z = self._noise(k, n)
        parts = [g(z[i:i + 1]) for i, g in enumerate(self._gens)]
        return torch.cat(parts) if out is None else torch.cat(parts, out=out)  # (K, n, d)

    def _train_gans(self, n_steps: int) -> dict[str, float]:
        cfg = self.config
        sums = torch.zeros(3, device=self.device_)
        nets = list(zip(self._gens, self._crits, self._opts_g, self._opts_d))
        for _ in range(n_steps):
            if self._past_deadline():
                break
            for _ in range(cfg.n_critic):
                batches = self._real_batch()  # (K, B): one draw for all, as the ensemble
                with torch.no_grad():
                    fakes = [self._generate(cfg.batch_size, G=g, k=1) for g in self._gens]  # (1, B, d) each
                for i, (c, opt_d) in enumerate(zip(self._crits, self._opts_d)):
                    critic_loss, w_dist = self._critic_step(c, opt_d, self._X[batches[i]].unsqueeze(0), fakes[i])
                    sums[0] += critic_loss
                    sums[2] += w_dist
            for g, c, opt_g, _ in nets:
                sums[1] += self._generator_step(g, c, opt_g)
            self._count_gan_step()
        sums[[0, 2]] /= cfg.n_critic
        return dict(zip(("critic", "generator", "wasserstein"), (sums / max(n_steps, 1) / cfg.n_clusters).tolist()))


# ---------------------------------------------------------------- measuring
def _model(cls: type[GANMM], X: np.ndarray, k: int, bench: BenchConfig) -> GANMM:
    """A model of ``cls`` set up on ``X`` (networks built, a few pretraining
    steps), ready for timed EM iterations."""
    cfg = GANMMConfig.from_preset("default", n_clusters=k, device=bench.device, seed=0, init="random",
                                  n_pretrain=1, **dict(bench.preset_overrides))
    model = cls(cfg)
    model._initialize(np.ascontiguousarray(X, dtype=np.float32))
    return model


def _warm(model: GANMM, bench: BenchConfig) -> GANMM:
    for it in range(1, bench.warmup + 1):
        model._iterate(it)
    return model


def _iteration_seconds(models: dict[str, GANMM], bench: BenchConfig) -> dict[str, float]:
    """The median seconds of an EM iteration of each (warm) model, their
    iterations timed in turns, the order reversed every other round. A shared
    machine's speed drifts over a minute (by a third within minutes on one
    machine); timed one after the other, the batched model and the loop would
    each meet another machine."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for r in range(bench.repeats):
        for name, model in (models.items() if r % 2 == 0 else reversed(models.items())):
            times[name].append(_timed(lambda m=model: m._iterate(bench.warmup + 1), model.device_))
    return {name: statistics.median(t) for name, t in times.items()}


class _FlopCount(TorchDispatchMode):
    """Counts the FLOPs of the matmuls and convolutions that run inside it, with
    PyTorch's own formulas (``torch.utils.flop_counter``). Unlike
    ``FlopCounterMode`` it puts no hooks on modules, so the gradient penalty's
    ``autograd.grad`` runs inside it; and it counts an in-place product
    (``baddbmm_``, which accumulates a gradient) as its out-of-place form."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        formula = flop_registry.get(packet)
        if formula is None and packet.__name__.endswith("_"):
            formula = flop_registry.get(getattr(torch.ops.aten, packet.__name__[:-1], None))
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def step_flops(model: GANMM) -> float:
    """FLOPs of one GAN training step of all K GANs (``n_critic`` critic updates
    and one generator update, backward passes included), counted on the real step."""
    with _FlopCount() as counter:
        model._train_gans(1)
    return float(counter.total)


def step_rate(X: np.ndarray, bench: BenchConfig, hidden: int, batch: int, peak_size: int) -> dict:
    """GFLOP/s of the GAN step of the MLP family at one width and batch size (K as
    ``bench.clusters``), and its fraction of the matmul peak, measured in turns
    (:func:`paired_step_rate`)."""
    dev = resolve_device(bench.device)
    model = _model(GANMM, X, bench.clusters,
                   dataclasses.replace(bench, preset_overrides=(*bench.preset_overrides, ("hidden", hidden),
                                                                ("batch_size", batch))))
    model._train_gans(2)  # warm-up
    n_steps = 5
    flops = step_flops(model)
    rate = paired_step_rate(lambda: model._train_gans(n_steps), n_steps, flops, dev, bench.repeats, peak_size)
    return {"hidden": hidden, "batch_size": batch, **rate}


def gradient_paths(X: np.ndarray, bench: BenchConfig) -> dict:
    """The GAN step with its gradients in closed form (the default for the MLP
    family) and by autograd, the penalty by a double backward, side by side:
    two models of the same seed, timed in turns."""
    dev = resolve_device(bench.device)
    models = {"closed_form": _model(GANMM, X, bench.clusters, bench),
              "autograd": _model(GANMM, X, bench.clusters, bench)}
    models["autograd"].closed_form_gradients = False
    times: dict[str, list[float]] = {name: [] for name in models}
    n_steps = 5
    for model in models.values():
        model._train_gans(2)  # warm-up
    for _ in range(bench.repeats):
        for name, model in models.items():
            times[name].append(_timed(lambda: model._train_gans(n_steps), dev) / n_steps)
    out = {f"{name}_step_seconds": statistics.median(t) for name, t in times.items()}
    out.update({f"{name}_step_gflop": step_flops(model) / 1e9 for name, model in models.items()})
    out["speedup"] = out["autograd_step_seconds"] / out["closed_form_step_seconds"]
    return out


def measure(X: np.ndarray, k: int, bench: BenchConfig, *, loop: bool, detail: bool,
            peak_size: int | None = None) -> dict:
    """Iteration seconds of the batched ensemble (and of the loop when ``loop``,
    the two models' iterations timed in turns);
    with ``detail``, also GAN-step GFLOP/s and its fraction of the matmul peak
    (products of ``peak_size`` timed in turns with the steps; None: the size
    :func:`matmul_peak` finds), the E-step's parts and peak memory."""
    dev = resolve_device(bench.device)
    memory = PeakMemory(dev)
    memory.reset()
    model = _warm(_model(GANMM, X, k, bench), bench)
    out: dict = {"k": k, "n": len(X)}
    if detail:
        out["peak_memory_mb"] = memory.read()  # the ensemble's iterations, before the loop's model exists
    others = {"loop_seconds": _warm(_model(LoopGANMM, X, k, bench), bench)} if loop else {}
    out.update(_iteration_seconds({"batched_seconds": model, **others}, bench))
    del others  # the loop's networks go before the detailed measurements
    if loop:
        out["speedup"] = out["loop_seconds"] / out["batched_seconds"]
    if detail:
        n_steps = max(model.config.n_epoch, 5)
        flops = step_flops(model)
        peak_size = peak_size or matmul_peak(dev)[1]
        rate = paired_step_rate(lambda: model._train_gans(n_steps), n_steps, flops, dev, bench.repeats, peak_size)
        out.update(step_gflop=flops / 1e9, gan_step_seconds=rate["step_seconds"], gflops=rate["gflops"],
                   peak_fraction=rate["peak_fraction"], paired_peak_gflops=rate["peak_gflops"],
                   step_pairs=rate["pairs"])
        out["classifier_seconds"] = statistics.median(
            _timed(model._train_classifier, dev) for _ in range(bench.repeats))
        out["assign_seconds"] = statistics.median(
            _timed(lambda: model._posterior(model._X).argmax(1), dev) for _ in range(bench.repeats))
    return out


def run_bench(bench: BenchConfig, say: Callable[[str], None] = lambda text: None) -> dict:
    """Every measurement of the module docstring, as one JSON-ready dict."""
    dev = resolve_device(bench.device)
    with denormals_flushed(dev):  # as a fit's steps run
        return _run_bench(bench, dev, say)


def _run_bench(bench: BenchConfig, dev: torch.device, say: Callable[[str], None]) -> dict:
    from . import data

    X = data.load("mnist5k").X
    cfg = dataclasses.replace(GANMMConfig.from_preset("default"), **dict(bench.preset_overrides))
    result: dict = {
        "device": str(dev), "device_name": _device_name(dev), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "dtype": "float32", "dataset": "mnist5k",
        "clusters": bench.clusters,
        "preset": {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                   if f.name in ("arch", "hidden", "z_dim", "batch_size", "n_critic", "n_epoch",
                                 "classifier_steps", "classifier_batch", "loss")},
    }
    say(f"matmul peak on {result['device_name']} ...")
    result["matmul_peak_gflops"], result["matmul_peak_size"] = matmul_peak(dev)
    say(f"  {result['matmul_peak_gflops']:.0f} GFLOP/s; K={bench.clusters}: batched vs loop ...")
    main = measure(X, bench.clusters, bench, loop=True, detail=True, peak_size=result["matmul_peak_size"])
    say(f"  batched {main['batched_seconds']:.3f} s, loop {main['loop_seconds']:.3f} s per iteration")
    result["iteration_seconds"] = {"batched": main["batched_seconds"], "loop": main["loop_seconds"]}
    result["speedup"] = main["speedup"]
    result["gflops"] = main["gflops"]
    result["paired_peak_gflops"] = main["paired_peak_gflops"]  # the peak measured between the step blocks
    result["peak_fraction"] = main["peak_fraction"]  # median of the blocks' step rate / peak
    result["step_pairs"] = main["step_pairs"]
    result["step_gflop"] = main["step_gflop"]
    result["gan_step_seconds"] = main["gan_step_seconds"]
    result["e_step_seconds"] = {"classifier": main["classifier_seconds"], "assign": main["assign_seconds"]}
    result["peak_memory_mb"] = main["peak_memory_mb"]
    result["scaling_k"] = []
    for k in bench.k_values:
        say(f"scaling: K={k} ...")
        row = main if k == bench.clusters else measure(X, k, bench, loop=bench.loop_scaling, detail=False)
        result["scaling_k"].append({key: row[key] for key in ("k", "n", "batched_seconds", "loop_seconds")
                                    if key in row})
    result["scaling_n"] = []
    for n in bench.n_values:
        say(f"scaling: N={n} ...")
        row = main if n == len(X) else measure(grown_mnist(X, n), bench.clusters, bench, loop=False, detail=False)
        result["scaling_n"].append({"k": row["k"], "n": row["n"], "batched_seconds": row["batched_seconds"]})
    say("GAN step gradients: closed form vs autograd ...")
    result["gradients"] = gradient_paths(X, bench)
    result["step_sizes"] = []
    for hidden, batch in bench.step_sizes:
        say(f"GAN step rate: width {hidden}, batch {batch} ...")
        result["step_sizes"].append(step_rate(X, bench, hidden, batch, result["matmul_peak_size"]))
    costs = {row["k"]: row["batched_seconds"] for row in result["scaling_k"]}
    if 5 in costs and 20 in costs:
        result["k20_over_k5"] = costs[20] / costs[5]
    return result


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def markdown(result: dict) -> str:
    """The benchmark as the README shows it."""
    it, k = result["iteration_seconds"], result["clusters"]
    lines = [
        f"GANMM speed on {result['device_name']} ({result['device']}, torch {result['torch']}, float32), "
        f"mnist5k, default preset",
        "",
        "| measure | value |", "|---|---|",
        f"| EM iteration, K={k}, batched ensemble | {it['batched']:.3f} s |",
        f"| EM iteration, K={k}, loop over K separate networks | {it['loop']:.3f} s |",
        f"| speed-up of the batched ensemble | {result['speedup']:.2f}x |",
        f"| GAN step (all K GANs, n_critic critic updates + 1 generator update) | "
        f"{result['gan_step_seconds'] * 1e3:.1f} ms, {result['step_gflop']:.2f} GFLOP |",
        f"| achieved during GAN steps | {result['gflops']:.0f} GFLOP/s |",
        f"| dense matmul peak (same precision): best at the start / median between step blocks | "
        f"{result['matmul_peak_gflops']:.0f} / {result['paired_peak_gflops']:.0f} GFLOP/s |",
        f"| peak fraction (median of the blocks' own ratios) | {result['peak_fraction']:.0%} |",
        f"| E-step: classifier training | {result['e_step_seconds']['classifier'] * 1e3:.1f} ms |",
        f"| E-step: assigning all points | {result['e_step_seconds']['assign'] * 1e3:.1f} ms |",
        f"| peak memory | {result['peak_memory_mb']:.0f} MB |",
        "",
        "| K | N | batched s/iteration | loop s/iteration |", "|---|---|---|---|",
    ]
    for row in result["scaling_k"]:
        loop = f"{row['loop_seconds']:.3f}" if "loop_seconds" in row else "-"
        lines.append(f"| {row['k']} | {row['n']} | {row['batched_seconds']:.3f} | {loop} |")
    for row in result["scaling_n"]:
        if row["n"] != 5000:  # the K=10 row above is N=5,000
            lines.append(f"| {row['k']} | {row['n']} | {row['batched_seconds']:.3f} | - |")
    if "k20_over_k5" in result:
        lines += ["", f"cost at K=20 / cost at K=5: {result['k20_over_k5']:.2f}"]
    if "gradients" in result:
        gp = result["gradients"]
        lines += ["", "| GAN step, gradients | step | GFLOP |", "|---|---|---|",
                  f"| closed form (default) | {gp['closed_form_step_seconds'] * 1e3:.1f} ms | "
                  f"{gp['closed_form_step_gflop']:.2f} |",
                  f"| autograd (penalty by double backward) | {gp['autograd_step_seconds'] * 1e3:.1f} ms | "
                  f"{gp['autograd_step_gflop']:.2f} |",
                  "", f"closed form speed-up: {gp['speedup']:.2f}x"]
    if result.get("step_sizes"):
        lines += ["", "| MLP width | batch | GAN step | GFLOP/s | peak fraction |", "|---|---|---|---|---|"]
        for row in result["step_sizes"]:
            lines.append(f"| {row['hidden']} | {row['batch_size']} | {row['step_seconds'] * 1e3:.1f} ms | "
                         f"{row['gflops']:.0f} | {row['peak_fraction']:.0%} |")
    return "\n".join(lines)
