"""Pure figure builders: arrays in, plotly figures (or one image array) out.

No Streamlit, no files, no store, no global state. Cluster ``i`` has the colour
``cluster_colors(k)[i]`` in every figure here. Every builder accepts K=1 and
empty or degenerate input (one iteration, empty clusters, all-NaN series).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

MARGIN = dict(l=10, r=10, t=40, b=10)
_PALETTE: tuple[str, ...] = tuple(dict.fromkeys(
    c.upper() for c in (*qualitative.Plotly, *qualitative.Dark24, *qualitative.Light24)))
_METRIC_LABELS = {"purity": "Purity", "ari": "ARI", "nmi": "NMI (arithmetic)", "acc": "Accuracy"}
_METRIC_COLORS = {"purity": "#1F77B4", "ari": "#FF7F0E", "nmi": "#2CA02C", "acc": "#D62728"}
_REF_DASHES = ("dash", "longdash", "dashdot", "dot")


def cluster_colors(k: int) -> list[str]:
    """The first ``k`` cluster colours (hex); distinct up to len(_PALETTE) (58), then cycling."""
    return [_PALETTE[i % len(_PALETTE)] for i in range(max(int(k), 0))]


def _finish(fig: go.Figure, title: str, x_title: str, y_title: str, height: int | None,
            **layout) -> go.Figure:
    """Title, axis titles, compact margins, height. No template: the dashboard
    draws with Streamlit's theme, and setting one costs ~17 ms a figure (plotly
    validates a copy of it), a large share of a live refresh."""
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, margin=MARGIN,
                      height=height, **layout)
    return fig


def _xs(iterations: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """(n,) x values: the iterations, or 0..n-1 when their count does not match."""
    it = np.asarray(iterations).reshape(-1)
    return it if len(it) == n else np.arange(n)


def _rows(a: np.ndarray | Sequence) -> np.ndarray:
    """a as a 2-D array: (n, m) kept, (n,) -> (n, 1), empty -> (n, 0)."""
    a = np.asarray(a)
    if a.ndim == 2:
        return a
    n = a.shape[0] if a.ndim else 1
    return a.reshape(n, -1) if a.size else np.zeros((n, 0), dtype=a.dtype)


def _floats(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """(n,) float array; None becomes NaN."""
    return np.array([np.nan if v is None else v for v in np.asarray(values, dtype=object).reshape(-1)],
                    dtype=float)


def _made(traces: list[dict], title: str, x_title: str, y_title: str, height: int | None, *,
          xaxis: dict | None = None, yaxis: dict | None = None, **layout) -> go.Figure:
    """A figure made in one go: ``traces`` as plain dicts (each with its "type") and
    the whole layout handed to the constructor, which validates everything once.
    The same figure built trace by trace (``go.Scatter`` objects, ``add_trace``,
    then ``update_layout``) took 2.5x as long (11 against 4 ms for the live view's
    cluster sizes), and a live refresh builds several whenever an iteration arrives."""
    axes = {"xaxis": dict(title=dict(text=x_title), **(xaxis or {})),
            "yaxis": dict(title=dict(text=y_title), **(yaxis or {}))}
    return go.Figure(data=traces, layout=dict(title=dict(text=title), margin=MARGIN, height=height,
                                              **axes, **layout))


def _line_mode(n: int) -> str:
    """A curve of ``n`` points: with markers while it is short (plotly draws no line
    through a single point, so a run stopped at iteration 0 showed empty charts)."""
    return "lines+markers" if n < 3 else "lines"


def sizes_area(iterations: Sequence[int], sizes: np.ndarray, *, height: int = 320) -> go.Figure:
    """Stacked area of cluster sizes; sizes (T, K) ints, one trace per cluster."""
    s = _rows(sizes)  # (T, K); (T,) -> (T, 1)
    x = _xs(iterations, s.shape[0])
    traces = [dict(type="scatter", x=x, y=s[:, i], name=f"cluster {i}", stackgroup="sizes", mode=_line_mode(len(x)),
                   line=dict(color=c, width=0.5), legendgroup=f"c{i}",
                   hovertemplate=f"cluster {i}: %{{y}}<extra></extra>")
              for i, c in enumerate(cluster_colors(s.shape[1]))]
    return _made(traces, "Cluster sizes", "iteration", "points", height, hovermode="x unified")


def sizes_bar(sizes: np.ndarray, *, iteration: int | None = None, height: int = 280) -> go.Figure:
    """Bar chart of the cluster sizes (K,) at ``iteration`` (None: the latest)."""
    s = np.asarray(sizes).reshape(-1)
    bar = dict(type="bar", x=np.arange(len(s)), y=s, marker=dict(color=cluster_colors(len(s))),
               hovertemplate="cluster %{x}: %{y} points<extra></extra>")
    title = "Current cluster sizes" if iteration is None else f"Cluster sizes at iteration {iteration}"
    return _made([bar], title, "cluster", "points", height,
                 xaxis=dict(tickmode="linear", dtick=1) if len(s) <= 30 else None)


def metric_curves(iterations: Sequence[int], metrics: Mapping[str, Sequence[float]],
                  references: Mapping[str, Mapping[str, float]] | None = None,
                  names: Sequence[str] = ("purity", "ari", "nmi", "acc"), *,
                  height: int = 340) -> go.Figure:
    """One line per metric in ``names`` (those present) vs iteration; each baseline in
    ``references`` (label -> final metrics) as dashed horizontal lines in the metric's colour,
    with one legend entry per baseline (clicking it hides or shows all its lines)."""
    fallback = cluster_colors(len(names))
    color = {n: _METRIC_COLORS.get(n, fallback[j]) for j, n in enumerate(names)}
    label = {n: _METRIC_LABELS.get(n, n) for n in names}
    traces: list[dict] = []
    lows = [0.0]
    span = np.zeros(0)
    for n in names:
        if n not in metrics:
            continue
        y = _floats(metrics[n])
        x = _xs(iterations, len(y))
        span = np.concatenate([span, x.astype(float)])
        lows.append(float(np.nanmin(y)) if np.isfinite(y).any() else 0.0)
        traces.append(dict(type="scatter", x=x, y=y, name=label[n],
                           mode=_line_mode(len(y)), line=dict(color=color[n]),
                           hovertemplate=f"{label[n]}: %{{y:.3f}}<extra></extra>"))
    if span.size == 0:
        span = np.asarray(iterations, dtype=float).reshape(-1)
    lo, hi = (float(span.min()), float(span.max())) if span.size else (0.0, 1.0)
    lo, hi = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    for b, (base, vals) in enumerate((references or {}).items()):
        lines = []
        for n in names:
            v = vals.get(n) if vals else None
            if v is None or not np.isfinite(v):
                continue
            lows.append(float(v))
            lines.append(dict(
                type="scatter", x=[lo, hi], y=[float(v), float(v)], mode="lines", name=f"{base} {label[n]}",
                legendgroup=f"ref:{base}", showlegend=False,
                line=dict(color=color[n], dash=_REF_DASHES[b % 4], width=1.5),
                hovertemplate=f"{base} final {label[n]}: {float(v):.3f}<extra></extra>"))
        if lines:  # one legend entry per baseline, in grey with its dash: one per line did not fit
            traces.append(dict(type="scatter", x=[None], y=[None], mode="lines", name=f"{base}, final",
                               legendgroup=f"ref:{base}", hoverinfo="skip",
                               line=dict(color="#777", dash=_REF_DASHES[b % 4], width=1.5)))
            traces.extend(lines)
    return _made(traces, "Clustering metrics (NMI: arithmetic normalisation)", "iteration", "score",
                 height, yaxis=dict(range=[min(lows) - 0.02, 1.02]))


def overlay_curves(series: Mapping[str, tuple[Sequence[int], Sequence[float]]], title: str,
                   y_title: str, *, x_title: str = "iteration", height: int = 320) -> go.Figure:
    """Several runs' curves on one plot; series: label -> (iterations (T,), values (T,))."""
    traces = []
    for (name, (its, vals)), c in zip(series.items(), cluster_colors(len(series))):
        y = _floats(vals)
        traces.append(dict(type="scatter", x=_xs(its, len(y)), y=y, name=str(name), line=dict(color=c),
                           mode=_line_mode(len(y))))
    return _made(traces, title, x_title, y_title, height)


def loss_curves(iterations: Sequence[int], losses: Mapping[str, Sequence[float]], *,
                height: int = 320) -> go.Figure:
    """One line per loss name; values (T,) may contain NaN (drawn as gaps)."""
    traces = []
    for (name, vals), c in zip(losses.items(), cluster_colors(len(losses))):
        y = _floats(vals)
        traces.append(dict(type="scatter", x=_xs(iterations, len(y)), y=y, name=str(name),
                           mode=_line_mode(len(y)), line=dict(color=c), connectgaps=False,
                           hovertemplate=f"{name}: %{{y:.4g}}<extra></extra>"))
    return _made(traces, "Losses", "iteration", "loss", height)


def percent_format(top: float) -> str:
    """A tick format for fractions on an axis from 0 to ``top``: whole percents
    from 5% up, then one or two decimals (below 2% every tick read "0%")."""
    return ".0%" if top >= 0.05 else ".1%" if top >= 0.005 else ".2%"


def changed_curve(iterations: Sequence[int], changed: Sequence[float], *, log_y: bool = False,
                  height: int = 280) -> go.Figure:
    """Fraction of points that changed cluster per iteration; changed (T,) in [0, 1].

    Linear axis over [0, max] by default; with ``log_y`` zeros are left out (log of 0)."""
    y = _floats(changed)
    line = dict(type="scatter", x=_xs(iterations, len(y)), y=np.where(y > 0, y, np.nan) if log_y else y,
                mode="lines+markers", name="changed", line=dict(color="#444"),
                hovertemplate="%{y:.2%} changed<extra></extra>")
    top = float(np.nanmax(y)) if np.isfinite(y).any() else 0.0
    yaxis = dict(type="log") if log_y else dict(range=[0, top * 1.05 if top > 0 else 1.0],
                                                tickformat=percent_format(top))
    return _made([line], "Points that changed cluster", "iteration", "fraction changed", height, yaxis=yaxis)


def confusion(table: np.ndarray, label_names: Sequence[str], *, height: int = 360) -> go.Figure:
    """Heatmap of a (C, K) count table: rows = true labels (top to bottom), columns = clusters."""
    t = _rows(table)  # (C, K)
    rows = [str(label_names[r]) if r < len(label_names) else str(r) for r in range(t.shape[0])]
    heat = dict(type="heatmap", z=t, x=[f"cluster {k}" for k in range(t.shape[1])], y=rows,
                text=[[f"{v:g}" for v in row] for row in t], texttemplate="%{text}",
                colorscale="Blues", showscale=False, hovertemplate="label %{y}, %{x}: %{z}<extra></extra>")
    return _made([heat], "True labels vs clusters", "cluster", "true label", height,
                 xaxis=dict(type="category"), yaxis=dict(autorange="reversed", type="category"))


def _subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most max_points of n, drawn with a seeded rng (deterministic)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max(int(max_points), 0), replace=False))


SAMPLE_SYMBOLS = ("diamond", "square", "triangle-up", "circle", "triangle-down", "pentagon", "hexagon",
                  "star", "cross", "x")
"""one marker shape per cluster's samples when the points are coloured by label"""


def scatter_clusters(points: np.ndarray, assignments: np.ndarray | None, *,
                     labels: np.ndarray | None = None, label_names: Sequence[str] | None = None,
                     color_by: str = "cluster", samples: np.ndarray | None = None,
                     axis_names: Sequence[str] = ("x", "y"), max_points: int = 5000, seed: int = 0,
                     title: str | None = None, height: int = 480, sample_name: str = "generator") -> go.Figure:
    """2-D scatter of points (N, 2) coloured by cluster (assignments (N,)) or by true label
    (labels (N,), names label_names); samples (K, S, 2) drawn as markers named
    "<sample_name> i" (a GAN mixture's generator, a GMM's Gaussian, a k-means centre)."""
    if color_by not in ("cluster", "label"):
        raise ValueError(f"color_by must be 'cluster' or 'label', got {color_by!r}")
    p = np.asarray(points, dtype=float).reshape(-1, 2)  # (N, 2)
    idx = _subsample(len(p), max_points, seed)  # (n,)
    p = p[idx]
    by_label = color_by == "label" and labels is not None
    source = labels if by_label else assignments
    group = None if source is None else np.asarray(source).reshape(-1)[idx]  # (n,)
    k_samples = 0 if samples is None else np.asarray(samples).shape[0]
    traces: list[dict] = []
    if group is None:
        traces.append(dict(type="scattergl", x=p[:, 0], y=p[:, 1], mode="markers", name="points",
                           marker=dict(color="#888", size=4)))
    else:
        group = group.astype(int)
        top = int(group.max()) + 1 if group.size else 0
        colors = cluster_colors(max(top, 0 if by_label else k_samples))
        names = list(label_names or [])
        for g in range(top):
            m = group == g
            if not m.any():
                continue
            name = (names[g] if g < len(names) else f"label {g}") if by_label else f"cluster {g}"
            traces.append(dict(type="scattergl", x=p[m, 0], y=p[m, 1], mode="markers", name=str(name),
                               legendgroup=f"c{g}", marker=dict(color=colors[g], size=4)))
        if (group < 0).any():
            m = group < 0
            traces.append(dict(type="scattergl", x=p[m, 0], y=p[m, 1], mode="markers", name="unassigned",
                               marker=dict(color="#BBB", size=4)))
    if k_samples:  # WebGL like the points: plotly draws WebGL above every SVG trace
        s = np.asarray(samples, dtype=float).reshape(k_samples, -1, 2)  # (K, S, 2)
        for i, c in enumerate(cluster_colors(k_samples)):
            if by_label:  # the colours are the labels': white, one shape per cluster, a group of its own
                marker = dict(color="#FFF", size=10, symbol=SAMPLE_SYMBOLS[i % len(SAMPLE_SYMBOLS)],
                              line=dict(color="#222", width=1.5))
            else:
                marker = dict(color=c, size=9, symbol="diamond", line=dict(color="#222", width=1))
            traces.append(dict(type="scattergl", x=s[i, :, 0], y=s[i, :, 1], mode="markers",
                               name=f"{sample_name} {i}", legendgroup=f"s{i}" if by_label else f"c{i}",
                               marker=marker))
    default = "Points by true label" if by_label else "Points by cluster"
    return _made(traces, title or default, str(axis_names[0]), str(axis_names[1]), height)


def image_tiles(samples: np.ndarray, image_shape: tuple[int, int], *,
                row_labels: Sequence[str] | None = None, max_per_row: int = 8) -> np.ndarray:
    """Mosaic (uint8, grayscale) of samples (K, S, H*W) in [0, 1] (clipped): row i holds
    generator i's first min(S, max_per_row) images, 1-pixel black gaps between tiles.

    Shape (K*(H+1)-1, n*(W+1)-1) with n = min(S, max_per_row), plus a text strip on the
    left when row_labels is given (needs Pillow; silently skipped without it). Empty input
    gives one black H x W tile."""
    h, w = int(image_shape[0]), int(image_shape[1])
    s = np.asarray(samples, dtype=float)
    k = s.shape[0] if s.ndim >= 1 else 0
    s = s.reshape(k, -1, h * w) if k and s.size else np.zeros((k, 0, h * w))  # (K, S, H*W)
    n = min(s.shape[1], max(int(max_per_row), 1))
    if k == 0 or n == 0:
        return np.zeros((h, w), dtype=np.uint8)
    tiles = np.rint(np.clip(np.nan_to_num(s[:, :n]), 0, 1) * 255).astype(np.uint8).reshape(k, n, h, w)
    mosaic = np.zeros((k * (h + 1) - 1, n * (w + 1) - 1), dtype=np.uint8)
    for i in range(k):
        for j in range(n):
            mosaic[i * (h + 1): i * (h + 1) + h, j * (w + 1): j * (w + 1) + w] = tiles[i, j]
    return _label_strip(mosaic, row_labels, h) if row_labels else mosaic


def _label_strip(mosaic: np.ndarray, row_labels: Sequence[str], h: int) -> np.ndarray:
    """The mosaic with a black strip on the left holding each row's label in white."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # pragma: no cover - Pillow comes with Streamlit
        return mosaic
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = int(max(measure.textlength(str(t)) for t in row_labels)) + 6
    img = Image.new("L", (width, mosaic.shape[0]), 0)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(row_labels[: (mosaic.shape[0] + 1) // (h + 1)]):
        draw.text((2, i * (h + 1) + max(h // 2 - 6, 0)), str(text), fill=255)
    return np.concatenate([np.asarray(img, dtype=np.uint8), mosaic], axis=1)


def tiles_figure(samples: np.ndarray, image_shape: tuple[int, int], *,
                 row_labels: Sequence[str] | None = None, max_per_row: int = 8,
                 title: str = "Generator samples", height: int | None = None) -> go.Figure:
    """The image_tiles mosaic as a figure, y ticks 'generator i' (or row_labels) at row centres."""
    import plotly.express as px  # lazy: pulls in pandas

    mosaic = image_tiles(samples, image_shape, max_per_row=max_per_row)
    h = int(image_shape[0])
    k = (mosaic.shape[0] + 1) // (h + 1)
    fig = px.imshow(mosaic, binary_string=True)
    text = [str(row_labels[i]) if row_labels and i < len(row_labels) else f"generator {i}"
            for i in range(k)]
    fig.update_yaxes(tickmode="array", tickvals=[i * (h + 1) + (h - 1) / 2 for i in range(k)],
                     ticktext=text)
    fig.update_xaxes(showticklabels=False)
    return _finish(fig, title, "sample", "", height or max(250, min(1200, 60 + 34 * k)))


def gmm_ellipses(means: np.ndarray, covariances: np.ndarray, n_std: float, *,
                 n_points: int = 100) -> list[np.ndarray]:
    """K closed curves (n_points, 2) tracing the n_std-sigma ellipse of each 2-D Gaussian.

    means (K, 2), covariances (K, 2, 2) (or (K, 2) diagonals); extra dimensions are cut
    to the first two. A non-finite covariance gives the mean repeated (or NaN)."""
    mu = _rows(np.asarray(means, dtype=float))[:, :2]  # (K, 2)
    cov = np.asarray(covariances, dtype=float)
    if cov.ndim == 2:  # (K, 2) diagonals
        cov = np.stack([np.diag(c[:2]) for c in cov]) if len(cov) else cov.reshape(0, 2, 2)
    cov = cov[:, :2, :2]
    t = np.linspace(0, 2 * np.pi, max(int(n_points), 2))
    circle = np.stack([np.cos(t), np.sin(t)])  # (2, M)
    out = []
    for m, c in zip(mu, cov):
        if not (np.isfinite(c).all() and np.isfinite(m).all()):
            out.append(np.repeat(m[None], len(t), axis=0))
            continue
        vals, vecs = np.linalg.eigh((c + c.T) / 2)  # columns of vecs: principal axes
        radii = n_std * np.sqrt(np.clip(vals, 0, None))
        out.append(m + (vecs @ (radii[:, None] * circle)).T)
    return out


def add_ellipses(fig: go.Figure, means: np.ndarray, covariances: np.ndarray,
                 n_stds: Sequence[float] = (1, 2), *, colors: Sequence[str] | None = None,
                 width: float = 1.5) -> go.Figure:
    """Add each cluster's n-sigma ellipses as lines in its colour (solid up to 1σ, else dashed)."""
    fig.add_traces(_ellipse_traces(means, covariances, n_stds, colors, width))
    return fig


def _ellipse_traces(means: np.ndarray, covariances: np.ndarray, n_stds: Sequence[float],
                    colors: Sequence[str] | None, width: float) -> list[dict]:
    """The ellipses as WebGL lines, each over a dark edge: the points are WebGL
    markers, which plotly draws above every SVG trace (SVG ellipses vanished under
    them), and a line in its cluster's colour is lost among that cluster's points."""
    colors = list(colors or cluster_colors(len(means)))
    ellipses = [(n, i, e) for n in n_stds for i, e in enumerate(gmm_ellipses(means, covariances, n))]

    def line(n, i, e, name, color, w):
        return dict(type="scattergl", x=e[:, 0], y=e[:, 1], mode="lines", showlegend=False, name=name,
                    legendgroup=f"c{i}", hoverinfo="skip",
                    line=dict(color=color, width=w, dash="solid" if n <= 1 else "dash"))

    return ([line(n, i, e, f"edge of cluster {i}'s ellipse", "#222", width + 2) for n, i, e in ellipses]
            + [line(n, i, e, f"cluster {i} {n:g}σ", colors[i % len(colors)], width) for n, i, e in ellipses])


def decision_regions(fig: go.Figure, xs: np.ndarray, ys: np.ndarray, argmax_grid: np.ndarray,
                     k: int, opacity: float = 0.25, *, colors: Sequence[str] | None = None) -> go.Figure:
    """Underlay (first trace) a heatmap of a (len(ys), len(xs)) grid of cluster ids in the
    cluster colours: discrete colorscale, zmin=-0.5, zmax=k-0.5, no colour bar."""
    if k <= 0:
        return fig
    fig.add_trace(_regions_trace(xs, ys, argmax_grid, k, opacity, colors))
    fig.data = (fig.data[-1], *fig.data[:-1])
    return fig


def _regions_trace(xs: np.ndarray, ys: np.ndarray, argmax_grid: np.ndarray, k: int, opacity: float,
                   colors: Sequence[str] | None) -> dict:
    palette = list(colors or cluster_colors(k))
    colors = [palette[i % len(palette)] for i in range(k)]
    scale = [[v, c] for i, c in enumerate(colors) for v in (i / k, (i + 1) / k)]
    return dict(type="heatmap", x=np.asarray(xs), y=np.asarray(ys), z=np.asarray(argmax_grid),
                colorscale=scale, zmin=-0.5, zmax=k - 0.5, showscale=False, opacity=opacity,
                hoverinfo="skip", name="decision regions")


# ------------------------------------------------------------------- classroom
HIGH_CONTRAST: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255",
    "#44AA99", "#999933", "#332288", "#AA4499")
"""cluster colours for a projector: Okabe-Ito's colour-blind-safe set, then Tol's"""

MODEL_COLORS = {"gmm": "#0072B2", "ganmm": "#D55E00", "ganmm-em": "#009E73"}
"""one colour per classroom model, the same in every curve"""


def lesson_colors(k: int, contrast: bool = False) -> list[str]:
    """The first ``k`` cluster colours of the classroom (HIGH_CONTRAST when ``contrast``)."""
    if not contrast:
        return cluster_colors(k)
    return [HIGH_CONTRAST[i % len(HIGH_CONTRAST)] for i in range(max(int(k), 0))]


def _classroom_layout(contrast: bool) -> tuple[dict, dict]:
    """Teacher mode: white ground, black axes, large type that survives a projector.
    Returns (layout, axis) settings; both empty otherwise."""
    if not contrast:
        return {}, {}
    axis = dict(showline=True, linecolor="#000", linewidth=2, gridcolor="#DDD", zerolinecolor="#BBB",
                tickfont=dict(size=16, color="#000"))
    layout = dict(paper_bgcolor="#FFF", plot_bgcolor="#FFF", font=dict(size=18, color="#000"))
    return layout, axis


def _classroom_made(traces: list[dict], title: str, x_title: str, y_title: str, height: int,
                    contrast: bool, *, xaxis: dict | None = None, yaxis: dict | None = None,
                    **layout) -> go.Figure:
    """``_made`` with the classroom's teacher-mode style (``_classroom_layout``)."""
    style, axis = _classroom_layout(contrast)
    fig = _made(traces, title, x_title, y_title, height, xaxis={**axis, **(xaxis or {})},
                yaxis={**axis, **(yaxis or {})}, **style, **layout)
    if contrast:  # title fonts: the title texts are set, so these merge into them
        big = dict(size=18, color="#000")
        fig.layout.title.font = dict(size=22, color="#000")
        fig.layout.xaxis.title.font = big
        fig.layout.yaxis.title.font = big
    return fig


def lesson_picture(points: np.ndarray, assignments: np.ndarray, k: int, *,
                   xs: np.ndarray | None = None, ys: np.ndarray | None = None,
                   regions: np.ndarray | None = None, means: np.ndarray | None = None,
                   covariances: np.ndarray | None = None, samples: np.ndarray | None = None,
                   title: str = "", height: int = 420, contrast: bool = False,
                   max_points: int = 3000) -> go.Figure:
    """One classroom model at one iteration: the points (N, 2) coloured by their cluster
    (assignments (N,)), over the model's own picture: decision regions (a (len(ys),
    len(xs)) grid of cluster ids), GMM means (K, 2) with 1σ and 2σ ellipses of
    covariances (K, 2, 2), and each generator's samples (K, S, 2) as crosses. The axes
    are fixed to the grid (xs, ys) so that the frame holds still between steps; samples
    past them are drawn at the edge as triangles, counted under the picture."""
    colors = lesson_colors(k, contrast)
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    idx = _subsample(len(p), max_points, 0)
    p, a = p[idx], np.asarray(assignments).reshape(-1)[idx].astype(int)
    size, outline = (8, dict(color="#000", width=0.6)) if contrast else (5, dict(width=0))
    traces = []
    for i in range(k):
        m = a == i
        traces.append(dict(type="scattergl", x=p[m, 0], y=p[m, 1], mode="markers", name=f"cluster {i}",
                           legendgroup=f"c{i}", hoverinfo="skip",
                           marker=dict(color=colors[i], size=size, opacity=0.75, line=outline)))
    note = ""  # under the picture: how many samples the fixed axes leave out
    if samples is not None and np.asarray(samples).size:
        s = np.asarray(samples, dtype=float).reshape(len(samples), -1, 2)  # (K, S, 2)
        beyond = np.zeros(s.shape[:2], dtype=bool)
        if xs is not None and ys is not None:  # the axes are fixed: samples past them would vanish
            lo = np.array([xs[0], ys[0]], dtype=float)
            hi = np.array([xs[-1], ys[-1]], dtype=float)
            beyond = ((s < lo) | (s > hi)).any(axis=2)
        for i in range(len(s)):
            c = colors[i % len(colors)]
            # "x-thin" is drawn by its line only, so teacher mode's black edge made every
            # generator's crosses black; there a filled "x" in the colour, edged in black
            marker = dict(color=c, size=13, symbol="x", line=dict(color="#000", width=1)) if contrast \
                else dict(color=c, size=7, symbol="x-thin", line=dict(color=c, width=1.5))
            inside = s[i][~beyond[i]]
            traces.append(dict(type="scattergl", x=inside[:, 0], y=inside[:, 1], mode="markers",
                               name=f"generator {i}", legendgroup=f"c{i}", hoverinfo="skip", marker=marker))
        if beyond.any():
            traces.append(_beyond_trace(s, beyond, lo, hi, colors, contrast))
            note = f"▸ {int(beyond.sum())} of {beyond.size} off the edge"  # short: a third of a page wide
    if means is not None and covariances is not None:
        traces += _ellipse_traces(means, covariances, (1, 2), colors, 4 if contrast else 2)
        mu = np.asarray(means, dtype=float).reshape(-1, 2)
        traces.append(dict(type="scattergl", x=mu[:, 0], y=mu[:, 1], mode="markers", name="means",
                           hoverinfo="skip", showlegend=False,
                           # white: a star in its cluster's colour was lost among its points
                           marker=dict(color="#FFF", size=16 if contrast else 13,
                                       symbol="star", line=dict(color="#000", width=1.5))))
    if regions is not None and xs is not None and ys is not None and k > 0:  # underlay: first
        traces.insert(0, _regions_trace(xs, ys, regions, k, 0.3 if contrast else 0.22, colors))
    xaxis, yaxis = {}, dict(scaleanchor="x", scaleratio=1)
    if xs is not None and ys is not None:
        xaxis["range"] = [float(xs[0]), float(xs[-1])]
        yaxis["range"] = [float(ys[0]), float(ys[-1])]
    return _classroom_made(traces, title, note, "", height, contrast, xaxis=xaxis, yaxis=yaxis,
                           showlegend=False)


def _beyond_trace(s: np.ndarray, beyond: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  colors: Sequence[str], contrast: bool) -> dict:
    """Generated samples (K, S, 2) past the picture's fixed axes (``beyond`` (K, S)),
    drawn just inside the edge they passed, as triangles pointing out (in their
    generator's colour; a hover gives where they are)."""
    gen, j = np.nonzero(beyond)
    pts = s[gen, j]  # (M, 2)
    span = hi - lo
    inset = 0.015 * span
    shown = np.clip(pts, lo + inset, hi - inset)
    # the side passed by the most, as a fraction of the picture's span
    over = np.maximum(lo - pts, pts - hi) / np.where(span > 0, span, 1.0)  # (M, 2)
    horizontal = over[:, 0] >= over[:, 1]
    symbol = np.where(horizontal, np.where(pts[:, 0] > hi[0], "triangle-right", "triangle-left"),
                      np.where(pts[:, 1] > hi[1], "triangle-up", "triangle-down"))
    color = [colors[g % len(colors)] for g in gen]
    text = [f"generator {g}: a sample at ({x:.2f}, {y:.2f}), beyond the picture"
            for g, (x, y) in zip(gen, pts)]
    return dict(type="scattergl", x=shown[:, 0], y=shown[:, 1], mode="markers", name="beyond the edge",
                hovertext=text, hoverinfo="text", showlegend=False,
                marker=dict(color=color, symbol=symbol.tolist(), size=12 if contrast else 9, opacity=0.9,
                            line=dict(color="#000", width=1 if contrast else 0.5)))


def lesson_curves(series: Mapping[str, tuple[Sequence[int], Sequence[float]]], title: str,
                  y_title: str, *, colors: Mapping[str, str] | None = None, percent: bool = False,
                  marker: int | None = None, height: int = 300, contrast: bool = False) -> go.Figure:
    """Per-model curves on one plot; series: name -> (iterations (T,), values (T,)).
    ``marker`` draws a vertical line at the iteration shown."""
    traces = []
    fallback = cluster_colors(len(series))
    for (name, (its, vals)), c in zip(series.items(), fallback):
        y = _floats(vals)
        traces.append(dict(type="scatter", x=_xs(its, len(y)), y=y, name=str(name), mode="lines+markers",
                           line=dict(color=(colors or {}).get(name, c), width=4 if contrast else 2),
                           marker=dict(size=7 if contrast else 5)))
    shapes = [] if marker is None else [dict(
        type="line", x0=marker, x1=marker, xref="x", y0=0, y1=1, yref="y domain",
        line=dict(color="#000" if contrast else "#888", dash="dot", width=1.5))]
    finite = [v for _, vals in series.values() for v in _floats(vals) if np.isfinite(v)]
    yaxis = dict(tickformat=percent_format(max(finite, default=1.0)), rangemode="tozero") if percent else {}
    xaxis, notes = {}, []
    if not any(len(vals) for _, vals in series.values()):  # iteration 0: plotly's empty axes read -1..4, 0-400%
        yaxis["range"], xaxis = [0, 1], dict(range=[0, 1], showticklabels=False)
        notes = [dict(text="drawn from the first Step on", showarrow=False, xref="paper", yref="paper",
                      x=0.5, y=0.5, font=dict(size=18 if contrast else 13, color="#000" if contrast else "#888"))]
    return _classroom_made(traces, title, "iteration", y_title, height, contrast, xaxis=xaxis, yaxis=yaxis,
                           shapes=shapes, legend=dict(orientation="h", y=-0.25), annotations=notes)
