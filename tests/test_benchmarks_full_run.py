"""benchmarks/full_run.py: its curve of the paper's run is drawn from the chunks' numbers, beside the paper's."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("full_run", BENCHMARKS / "full_run.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as mp:  # it imports cppn_capacity from beside it, as when run as a script
        mp.syspath_prepend(str(BENCHMARKS))
        spec.loader.exec_module(module)
        yield module


def test_the_curve_shows_each_seed_their_median_and_the_papers_point(bench, tmp_path):
    from PIL import Image

    report = [{"evaluations": 100_400, "median_all": [0.18, 0.17, 0.19], "median_hundred": [0.16, 0.22, 0.19]},
              {"evaluations": 200_400, "median_all": [0.34, 0.32, 0.38], "median_hundred": [0.29, 0.34, 0.37]}]
    written = bench.plot_curve(report, tmp_path / "curve.png")
    assert written == [tmp_path / "curve.png", tmp_path / "curve.svg"]
    with Image.open(written[0]) as image:
        assert image.format == "PNG" and image.size == (700, 450)
    svg = written[1].read_text()
    assert "median over the 1,000 classes (3 seeds" in svg and "median over the 100" in svg
    assert "88.11% after 2,000 per class" in svg
    # both extrapolations are drawn, and the axis says which line is which
    assert "dotted, a line in logit(median); dash-dot, a line in the median" in svg
    assert svg.count("stroke-dasharray") >= 5  # the paper's dashed level, two dotted and two dash-dot lines
    # a second drawing of the same numbers gives the same vector file
    assert bench.plot_curve(report, tmp_path / "again.png")[1].read_text() == svg


def test_the_extrapolation_follows_a_logit_line_and_is_checked_on_the_chunks_before(bench):
    import numpy as np

    per_class = [100.4, 200.4, 300.4, 400.4]
    on_line = [float(1 / (1 + np.exp(-(0.8 * np.log2(x) - 7.0)))) for x in per_class]  # 0.8 logits a doubling
    expected = 1 / (1 + np.exp(-(0.8 * np.log2(2000) - 7.0)))
    assert bench.line_at(per_class, on_line, 2000) == pytest.approx(expected, abs=1e-9)
    assert bench.backtest(per_class, on_line) == pytest.approx([0.0, 0.0], abs=1e-9)
    # a chunk off the line shows in the check of the chunk it is, and moves the projection
    bent = on_line[:3] + [on_line[3] - 0.05]
    assert bench.backtest(per_class, bent)[-1] == pytest.approx(0.05, abs=1e-9)
    assert bench.line_at(per_class, bent, 2000) < expected
    # however steep the line, a confidence stays below 1
    assert bench.line_at([100, 200, 400], [0.5, 0.9, 0.99], 10_000) < 1.0
    # the plain line follows points on a straight line in the median, and stops at 100% where it would pass it
    straight = [0.2, 0.37, 0.54]
    assert bench.line_at([100, 200, 400], straight, 800, logit=False) == pytest.approx(0.71, abs=1e-9)
    assert bench.line_at([100, 200, 400], straight, 1600, logit=False) == pytest.approx(0.88, abs=1e-9)
    assert bench.line_at([100, 200, 400], straight, 2 ** 15, logit=False) == 1.0
    assert bench.line_at([100, 200, 400], straight[::-1], 2 ** 15, logit=False) == 0.0
