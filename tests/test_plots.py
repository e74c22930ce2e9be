"""Figure builders: the numbers a user reads off a figure are the numbers passed in."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from ganmm import plots


def _points_in(fig: go.Figure) -> np.ndarray:
    """All (x, y) of the Scattergl (data point) traces, stacked."""
    parts = [np.c_[t.x, t.y] for t in fig.data if isinstance(t, go.Scattergl)]
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def test_cluster_colors_distinct_for_30_and_stable():
    c30 = plots.cluster_colors(30)
    assert len(set(c30)) == 30
    assert plots.cluster_colors(5) == c30[:5]
    assert plots.cluster_colors(0) == []


def test_common_layout():
    fig = plots.sizes_bar(np.array([3, 4]), height=123)
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert plots.sizes_bar(np.array([3, 4]), iteration=5).layout.title.text == "Cluster sizes at iteration 5"
    assert fig.layout.height == 123
    assert (fig.layout.margin.l, fig.layout.margin.r, fig.layout.margin.t, fig.layout.margin.b) == (10, 10, 40, 10)


def test_sizes_area_stacks_one_trace_per_cluster_with_the_columns():
    sizes = np.array([[10, 0, 5], [8, 2, 5], [7, 3, 5]])
    fig = plots.sizes_area([1, 2, 3], sizes)
    assert len(fig.data) == 3
    colors = plots.cluster_colors(3)
    for i, tr in enumerate(fig.data):
        assert tr.stackgroup == fig.data[0].stackgroup is not None
        assert list(tr.x) == [1, 2, 3]
        assert list(tr.y) == list(sizes[:, i])
        assert tr.line.color == colors[i]


def test_sizes_bar_and_scatter_share_cluster_colours():
    bar = plots.sizes_bar(np.array([2, 0, 3]))
    pts = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]], float)
    a = np.array([0, 2, 0, 2, 2])
    sc = plots.scatter_clusters(pts, a)
    assert list(bar.data[0].y) == [2, 0, 3]
    by_name = {t.name: t for t in sc.data}
    assert set(by_name) == {"cluster 0", "cluster 2"}  # empty cluster 1 has no trace
    assert by_name["cluster 0"].marker.color == bar.data[0].marker.color[0]
    assert by_name["cluster 2"].marker.color == bar.data[0].marker.color[2]
    assert list(by_name["cluster 2"].x) == [1, 3, 4]


def test_metric_curves_lines_and_dashed_reference_at_baseline_value():
    metrics = {"purity": [0.5, 0.7, 0.9], "nmi": [0.2, 0.4, 0.6]}
    refs = {"GMM": {"purity": 0.8, "nmi": 0.55}, "k-means": {"purity": 0.75}}
    fig = plots.metric_curves([0, 5, 10], metrics, references=refs)
    names = [t.name for t in fig.data]
    assert "NMI (arithmetic)" in names and "Purity" in names
    purity = next(t for t in fig.data if t.name == "Purity")
    assert list(purity.y) == [0.5, 0.7, 0.9]
    ref = next(t for t in fig.data if t.name == "GMM Purity")
    assert ref.line.dash and "dash" in ref.line.dash
    assert list(ref.y) == [0.8, 0.8] and list(ref.x) == [0, 10]
    assert ref.line.color == purity.line.color
    nmi_ref = next(t for t in fig.data if t.name == "GMM NMI (arithmetic)")
    assert list(nmi_ref.y) == [0.55, 0.55]
    assert nmi_ref.line.color == next(t for t in fig.data if t.name == "NMI (arithmetic)").line.color
    assert "k-means Purity" in names and "k-means NMI (arithmetic)" not in names
    # the legend: each metric, then one entry per baseline that toggles all its lines
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert legend == ["Purity", "NMI (arithmetic)", "GMM, final", "k-means, final"]
    gmm_group = {t.legendgroup for t in fig.data if t.name.startswith("GMM")}
    assert len(gmm_group) == 1 and None not in gmm_group
    lo, hi = fig.layout.yaxis.range
    assert lo <= 0 and hi >= 1


def test_metric_curves_single_iteration_reference_has_nonzero_span():
    fig = plots.metric_curves([3], {"ari": [0.1]}, references={"GMM": {"ari": -0.2}})
    ref = next(t for t in fig.data if t.name == "GMM ARI")
    assert ref.x[0] < 3 < ref.x[1]
    assert fig.layout.yaxis.range[0] <= -0.2


def test_overlay_curves_one_trace_per_run():
    fig = plots.overlay_curves({"run a": ([0, 1], [0.1, 0.2]), "run b": ([0, 2, 4], [0.3, 0.4, 0.5])},
                               "NMI by run", "NMI")
    assert [t.name for t in fig.data] == ["run a", "run b"]
    assert list(fig.data[1].x) == [0, 2, 4] and list(fig.data[1].y) == [0.3, 0.4, 0.5]
    assert fig.layout.title.text == "NMI by run" and fig.layout.yaxis.title.text == "NMI"


def test_loss_curves_nan_and_all_nan_series():
    nan = float("nan")
    fig = plots.loss_curves([0, 1, 2], {"critic": [1.0, nan, 0.5], "classifier": [nan, nan, nan]})
    assert [t.name for t in fig.data] == ["critic", "classifier"]
    assert fig.data[0].y[0] == 1.0 and np.isnan(fig.data[0].y[1])
    assert np.isnan(np.asarray(fig.data[1].y, float)).all()
    assert '"critic"' in fig.to_json()  # serialises (what st.plotly_chart does)


def test_changed_curve_linear_range_handles_zero():
    fig = plots.changed_curve([0, 1, 2], [0.5, 0.1, 0.0])
    assert list(fig.data[0].y) == [0.5, 0.1, 0.0]
    lo, hi = fig.layout.yaxis.range
    assert lo == 0 and hi >= 0.5
    zero = plots.changed_curve([0, 1], [0.0, 0.0])
    assert zero.layout.yaxis.range[1] > 0
    log = plots.changed_curve([0, 1], [0.5, 0.0], log_y=True)
    assert log.layout.yaxis.type == "log" and np.isnan(log.data[0].y[1])


def test_confusion_heatmap_z_and_text_are_the_counts():
    table = np.array([[5, 0, 1], [2, 7, 0]])
    fig = plots.confusion(table, ["cat", "dog"])
    hm = fig.data[0]
    assert np.array_equal(np.asarray(hm.z), table)
    assert [list(r) for r in hm.text] == [["5", "0", "1"], ["2", "7", "0"]]
    assert list(hm.y) == ["cat", "dog"] and len(hm.x) == 3
    assert "%{text}" in hm.texttemplate


def test_scatter_subsample_deterministic_and_bounded():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(1000, 2))
    a = rng.integers(0, 4, 1000)
    f1 = plots.scatter_clusters(pts, a, max_points=100, seed=3)
    f2 = plots.scatter_clusters(pts, a, max_points=100, seed=3)
    p1 = _points_in(f1)
    assert len(p1) == 100
    assert np.array_equal(p1, _points_in(f2))
    assert all(isinstance(t, go.Scattergl) for t in f1.data)
    # every drawn point is an input point with its own cluster
    for t in f1.data:
        k = int(t.name.split()[1])
        for x, y in zip(t.x, t.y):
            j = np.flatnonzero((pts[:, 0] == x) & (pts[:, 1] == y))[0]
            assert a[j] == k
    assert len(_points_in(plots.scatter_clusters(pts[:50], a[:50], max_points=100))) == 50


def test_scatter_by_label_and_generator_samples():
    pts = np.array([[0, 0], [1, 1], [2, 2]], float)
    fig = plots.scatter_clusters(pts, np.array([0, 0, 1]), labels=np.array([1, 0, 1]),
                                 label_names=["zero", "one"], color_by="label",
                                 samples=np.zeros((2, 4, 2)))
    names = [t.name for t in fig.data]
    assert names == ["zero", "one", "generator 0", "generator 1"]
    assert list(fig.data[1].x) == [0, 2]
    gen0, gen1 = fig.data[2:]
    assert len(gen1.x) == 4 and gen1.marker.size > fig.data[0].marker.size and gen1.marker.line.width > 0
    # coloured by label, a sample in label 1's colour read as "generator 1 models label 1":
    # samples are white, told apart by shape, grouped apart from the labels in the legend
    assert gen0.marker.color == gen1.marker.color == "#FFF" and gen0.marker.symbol != gen1.marker.symbol
    assert {gen0.legendgroup, gen1.legendgroup}.isdisjoint(t.legendgroup for t in fig.data[:2])
    # by cluster, they take their cluster's colour and legend group; all WebGL, samples after the points
    by_cluster = plots.scatter_clusters(pts, np.array([0, 0, 1]), samples=np.zeros((2, 4, 2)))
    g1 = by_cluster.data[3]
    assert g1.marker.color == plots.cluster_colors(2)[1] and g1.legendgroup == by_cluster.data[1].legendgroup
    assert all(t.type == "scattergl" for t in by_cluster.data + fig.data)
    with pytest.raises(ValueError):
        plots.scatter_clusters(pts, None, color_by="colour")


def test_image_tiles_layout_gaps_and_values():
    k, s, h, w = 3, 5, 4, 2
    vals = np.arange(k * s * h * w).reshape(k, s, h * w) % 256 / 255.0
    vals[0, 0, 0] = 1.7  # clipped to 255
    vals[0, 0, 1] = -0.3  # clipped to 0
    m = plots.image_tiles(vals, (h, w), max_per_row=4)
    assert m.dtype == np.uint8
    assert m.shape == (k * h + (k - 1), 4 * w + 3)
    r, c = 2, 3  # row of generator 2, 4th tile
    tile = m[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w]
    assert np.array_equal(tile, np.rint(255 * vals[r, c].reshape(h, w)).astype(np.uint8))
    assert m[0, 0] == 255 and m[0, 1] == 0
    assert (m[h, :] == 0).all() and (m[:, w] == 0).all()  # gaps are dark
    labelled = plots.image_tiles(vals, (h, w), max_per_row=4, row_labels=["g0", "g1", "g2"])
    assert labelled.shape[0] == m.shape[0] and labelled.shape[1] > m.shape[1]
    assert np.array_equal(labelled[:, -m.shape[1]:], m)


def test_tiles_figure_ticks_at_row_centres():
    fig = plots.tiles_figure(np.full((2, 3, 6), 0.5), (3, 2))
    assert list(fig.layout.yaxis.ticktext) == ["generator 0", "generator 1"]
    assert list(fig.layout.yaxis.tickvals) == [1.0, 5.0]
    assert fig.layout.title.text


def test_gmm_ellipse_of_diag_4_1_is_the_unit_ellipse_scaled():
    mean = np.array([[3.0, -1.0]])
    e = plots.gmm_ellipses(mean, np.array([[[4.0, 0.0], [0.0, 1.0]]]), 1.0)[0]
    d = e - mean[0]
    assert np.allclose((d[:, 0] / 2) ** 2 + d[:, 1] ** 2, 1.0)
    assert np.isclose(np.abs(d[:, 0]).max(), 2.0, atol=1e-2)
    e2 = plots.gmm_ellipses(mean, np.array([[[4.0, 0.0], [0.0, 1.0]]]), 2.0)[0] - mean[0]
    assert np.allclose((e2[:, 0] / 4) ** 2 + (e2[:, 1] / 2) ** 2, 1.0)


def test_gmm_ellipse_rotated_covariance():
    cov = np.array([[2.0, 1.0], [1.0, 2.0]])  # eigenvalues 3 (along (1,1)) and 1
    d = plots.gmm_ellipses(np.zeros((1, 2)), cov[None], 1.0)[0]
    quad = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)  # Mahalanobis^2
    assert np.allclose(quad, 1.0)


def test_add_ellipses_colours_and_dashes():
    fig = plots.add_ellipses(go.Figure(), np.zeros((2, 2)), np.stack([np.eye(2)] * 2))
    assert len(fig.data) == 8  # a dark edge under each coloured line
    colors = plots.cluster_colors(2)
    assert [t.line.color for t in fig.data] == ["#222"] * 4 + colors * 2
    assert [t.line.dash for t in fig.data] == ["solid", "solid", "dash", "dash"] * 2
    assert all(t.line.width == 3.5 for t in fig.data[:4]) and all(t.line.width == 1.5 for t in fig.data[4:])


def test_decision_regions_underlay_discrete_colours():
    fig = plots.scatter_clusters(np.zeros((3, 2)), np.array([0, 1, 2]))
    grid = np.array([[0, 1, 2], [2, 1, 0]])
    plots.decision_regions(fig, np.array([0.0, 1, 2]), np.array([0.0, 1]), grid, 3)
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap) and hm.showscale is False and len(fig.data) == 4
    assert np.array_equal(np.asarray(hm.z), grid)
    colors = plots.cluster_colors(3)
    stops = [(float(v), c) for v, c in hm.colorscale]
    for i in range(3):  # cluster id i sits between two stops that both have colour i
        pos = (i - hm.zmin) / (hm.zmax - hm.zmin)
        below = [c for v, c in stops if v <= pos][-1]
        above = [c for v, c in stops if v >= pos][0]
        assert below == above == colors[i]


def test_k1_and_empty_inputs_do_not_raise():
    one = plots.sizes_area([0], np.array([[5]]))
    assert len(one.data) == 1 and list(one.data[0].y) == [5]
    assert len(plots.sizes_area([], np.zeros((0, 0))).data) == 0
    assert len(plots.sizes_bar(np.array([], int)).data[0].y) == 0
    assert len(plots.metric_curves([], {}).data) == 0
    assert len(plots.loss_curves([], {}).data) == 0
    assert len(plots.changed_curve([], []).data[0].y) == 0
    assert np.asarray(plots.confusion(np.zeros((1, 1), int), ["a"]).data[0].z).shape == (1, 1)
    assert len(_points_in(plots.scatter_clusters(np.zeros((0, 2)), np.zeros(0, int)))) == 0
    assert len(_points_in(plots.scatter_clusters(np.ones((4, 2)), None))) == 4
    assert plots.image_tiles(np.zeros((0, 0, 4)), (2, 2)).shape == (2, 2)
    assert plots.image_tiles(np.ones((1, 1, 4)), (2, 2)).tolist() == [[255, 255], [255, 255]]
    e = plots.gmm_ellipses(np.zeros((1, 2)), np.zeros((1, 2, 2)), 2.0)[0]
    assert np.allclose(e, 0)
    assert plots.gmm_ellipses(np.zeros((0, 2)), np.zeros((0, 2, 2)), 1.0) == []
    fig = go.Figure()
    assert plots.decision_regions(fig, np.zeros(1), np.zeros(1), np.zeros((1, 1), int), 1) is fig
    assert fig.data[0].colorscale[0][1] == plots.cluster_colors(1)[0]


def test_lesson_picture_layers_regions_points_samples_ellipses_and_means():
    """A classroom picture: the decision regions underneath, each cluster's points in
    its colour, the generators' samples, 1σ solid / 2σ dashed ellipses, the means,
    the plane of the grid at equal scale; teacher mode in black on white, large type."""
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    xs, ys = np.linspace(-1, 3, 5), np.linspace(-1, 2, 4)
    regions = np.arange(20).reshape(4, 5) % 2
    for contrast in (False, True):
        colors = plots.lesson_colors(2, contrast)
        fig = plots.lesson_picture(pts, np.array([0, 1, 1]), 2, xs=xs, ys=ys, regions=regions,
                                   means=np.zeros((2, 2)), covariances=np.stack([np.eye(2)] * 2),
                                   samples=np.full((2, 3, 2), 0.5), title="GMM", contrast=contrast)
        kinds = [t.type for t in fig.data]
        assert kinds[0] == "heatmap" and np.array_equal(np.asarray(fig.data[0].z), regions)
        points = [t for t in fig.data if t.name in ("cluster 0", "cluster 1")]
        assert [len(t.x) for t in points] == [1, 2] and [t.marker.color for t in points] == colors
        crosses = [t for t in fig.data if t.name.startswith("generator")]
        assert [len(t.x) for t in crosses] == [3, 3]
        # each generator's crosses show its cluster's colour (a thin cross is drawn by its line only)
        assert [t.marker.line.color if t.marker.symbol == "x-thin" else t.marker.color for t in crosses] == colors
        rings = [t for t in fig.data if "σ" in t.name]
        assert [t.line.dash for t in rings] == ["solid", "solid", "dash", "dash"]
        assert [t.line.color for t in rings] == colors * 2
        assert [t.name for t in fig.data][-1] == "means"
        # WebGL points are drawn above every SVG trace: ellipses and means are WebGL too,
        # after the points, or they vanish under them
        over = [t for t in fig.data if "σ" in t.name or "ellipse" in t.name or t.name == "means"]
        assert over and all(t.type == "scattergl" for t in over)
        assert min(fig.data.index(t) for t in over) > max(fig.data.index(t) for t in points)
        assert tuple(fig.layout.xaxis.range) == (-1, 3) and tuple(fig.layout.yaxis.range) == (-1, 2)
        assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.title.text == "GMM"
        assert fig.layout.showlegend is False
        if contrast:
            assert fig.layout.plot_bgcolor == "#FFF" and fig.layout.font.size == 18
            assert fig.layout.title.font.size == 22 and fig.layout.xaxis.linecolor == "#000"
            assert fig.layout.yaxis.title.font.size == 18
        else:
            assert fig.layout.plot_bgcolor is None and fig.layout.font.size is None


def test_lesson_picture_shows_samples_past_its_fixed_axes_at_the_edge():
    """The classroom's axes hold still between steps, so a generator that wanders off
    would vanish from the picture: its samples are drawn at the edge they passed, as
    triangles pointing out, and counted under the picture."""
    pts = np.array([[0.0, 0.0], [1.0, 1.0]])
    xs, ys = np.linspace(-1, 3, 5), np.linspace(-1, 2, 4)
    samples = np.array([[[0.5, 0.5], [9.0, 0.5], [0.5, -7.0]],  # generator 0: one inside, right, below
                        [[1.0, 1.0], [2.0, 1.5], [-4.0, 2.5]]])  # generator 1: past the left more than the top
    fig = plots.lesson_picture(pts, np.array([0, 1]), 2, xs=xs, ys=ys, samples=samples)
    crosses = [t for t in fig.data if t.name.startswith("generator")]
    assert [len(t.x) for t in crosses] == [1, 2]
    (edge,) = [t for t in fig.data if t.name == "beyond the edge"]
    assert list(edge.marker.symbol) == ["triangle-right", "triangle-down", "triangle-left"]
    shown = np.column_stack([edge.x, edge.y])
    assert (shown[:, 0] > -1).all() and (shown[:, 0] < 3).all() and (shown[:, 1] > -1).all() and (shown[:, 1] < 2).all()
    assert shown[0, 0] > 2.9 and shown[1, 1] < -0.9 and shown[2, 0] < -0.9  # at the edge each passed
    colors = plots.lesson_colors(2, False)
    assert list(edge.marker.color) == [colors[0], colors[0], colors[1]]
    assert "(9.00, 0.50)" in edge.hovertext[0]
    assert fig.layout.xaxis.title.text == "▸ 3 of 6 off the edge"
    inside = plots.lesson_picture(pts, np.array([0, 1]), 2, xs=xs, ys=ys, samples=samples.clip(-1, 2))
    assert not [t for t in inside.data if t.name == "beyond the edge"] and not inside.layout.xaxis.title.text


def test_lesson_curves_mark_the_iteration_shown():
    fig = plots.lesson_curves({"GMM": ([1, 2, 3], [0.5, 0.2, None]), "GANMM": ([1, 2], [0.4, 0.3])},
                              "changed", "fraction", colors={"GMM": "#0072B2"}, percent=True, marker=2)
    assert [t.name for t in fig.data] == ["GMM", "GANMM"] and fig.data[0].line.color == "#0072B2"
    assert np.isnan(fig.data[0].y[2])  # a missing value is a gap
    (line,) = fig.layout.shapes
    assert (line.x0, line.x1, line.yref) == (2, 2, "y domain")
    assert fig.layout.yaxis.tickformat == ".0%" and fig.layout.xaxis.title.text == "iteration"
    assert plots.lesson_curves({}, "t", "y").layout.shapes == ()
    # iteration 0: no values yet; fixed empty axes (plotly's own read -1..4 and 0-400%) and a word why
    empty = plots.lesson_curves({"GMM": ([], []), "GANMM": ([], [])}, "changed", "fraction", percent=True)
    assert tuple(empty.layout.yaxis.range) == (0, 1) and empty.layout.yaxis.tickformat == ".0%"
    assert empty.layout.annotations[0].text == "drawn from the first Step on"
    assert not fig.layout.annotations and fig.layout.yaxis.range is None


def test_curves_of_one_iteration_are_drawn_as_points():
    """A run stopped at iteration 0 has one value per curve; plotly draws no line
    through a single point, so its sizes and losses charts were empty."""
    one = [plots.sizes_area([0], np.array([[3, 4]])), plots.loss_curves([0], {"critic": [1.5]})]
    assert all(t.mode == "lines+markers" for fig in one for t in fig.data)
    many = [plots.sizes_area([0, 1, 2], np.ones((3, 2), int)), plots.loss_curves([0, 1, 2], {"critic": [1, 2, 3]})]
    assert all(t.mode == "lines" for fig in many for t in fig.data)



@pytest.mark.parametrize("top, ticks", [(0.5, ".0%"), (0.05, ".0%"), (0.016, ".1%"), (0.002, ".2%")])
def test_small_fractions_get_ticks_that_tell_them_apart(top, ticks):
    # below 2% changed, every tick of the changed-points axis read "0%"
    assert plots.changed_curve([0, 1, 2], [top, top / 2, 0.0]).layout.yaxis.tickformat == ticks
    fig = plots.lesson_curves({"a": ([0, 1], [top, 0.0])}, "changed", "fraction", percent=True)
    assert fig.layout.yaxis.tickformat == ticks
