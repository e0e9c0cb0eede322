"""The linear algebra behind research/erasure_bound.py's subspace rows (RESULTS.md §2), and the frontier plot's reading of the result files."""

import torch

from research.common import complement_within, keeper, projector, result_file


def test_keeping_the_retained_rows_span_leaves_retained_logits_unchanged():
    torch.manual_seed(0)
    weights, features = torch.randn(10, 64), torch.randn(200, 64)
    retained = [c for c in range(10) if c not in (3, 7)]
    centre = features.mean(0)
    kept = keeper(weights[retained].T, centre)(features)
    torch.testing.assert_close(kept @ weights[retained].T, features @ weights[retained].T, atol=1e-4, rtol=1e-4)
    assert torch.linalg.matrix_rank(kept - centre) == len(retained)


def test_complement_within_is_orthonormal_and_orthogonal_to_what_it_removes():
    torch.manual_seed(0)
    basis, removed = torch.randn(64, 8), [torch.randn(64), torch.randn(64)]
    q = complement_within(basis, removed)
    assert q.shape == (64, 6)
    torch.testing.assert_close(q.T @ q, torch.eye(6), atol=1e-5, rtol=0)
    span, _ = torch.linalg.qr(basis)
    for v in removed:  # the removed directions' parts inside the span are gone ...
        assert (q.T @ (span @ (span.T @ v))).abs().max() < 1e-4
    # ... and the complement stays inside the original span
    torch.testing.assert_close(span @ (span.T @ q), q, atol=1e-5, rtol=0)


def test_projector_removes_exactly_the_given_directions():
    torch.manual_seed(0)
    features, direction = torch.randn(100, 16), torch.randn(16)
    centre = features.mean(0)
    projected = projector([direction], centre)(features)
    assert ((projected - centre) @ direction).abs().max() < 1e-4
    orthogonal = torch.randn(16)
    orthogonal -= (orthogonal @ direction) / (direction @ direction) * direction
    torch.testing.assert_close((projected - centre) @ orthogonal, (features - centre) @ orthogonal,
                               atol=1e-4, rtol=1e-4)


def test_frontier_plot_reads_every_shipped_result_file(tmp_path):
    from research.frontier_plot import BENCH_FILES, SCRIPT_FILES, bench_points, other_points, plot

    for name in (*BENCH_FILES, *SCRIPT_FILES):  # a listed file that is missing would silently drop its points
        assert result_file(name).exists(), name
    points = bench_points() + other_points()
    anchors = {p["label"]: p for p in points if p["kind"] == "anchor"}
    assert set(anchors) == {"original", "retrain", "logit_mask"}
    assert all(0 <= p["probe_df"] <= 100 and 0 <= p["dr"] <= 100 for p in points)
    out = tmp_path / "frontier.png"
    plot(points, anchors["retrain"], anchors["original"]["dr"], out)
    assert out.stat().st_size > 10_000
