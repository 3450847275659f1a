"""The report's figures (`saeh.results_figures`): what each one plots, from hand-made result records, and that
rendering twice writes nothing new."""

import os

import numpy as np
import pytest

from saeh import results_figures
from saeh.published import published_results
from saeh.reproduce.report import render_report

PAPER = published_results()["table2_gamma"]
LABELS = {"saeh": "SAEH", "saeh-minus": "SAEH-minus", "dsh": "DSH"}


def record(table, method, seed, map_, precision, *, gamma=None, bits=32, dataset="cifar10", curve=None,
           procedure="default", protocol="ssdh", preset="cifar10-cpu"):
    result = {"table": table, "method": method, "dataset": dataset, "bits": bits, "seed": seed, "gamma": gamma,
              "procedure": procedure, "preset": preset, "protocol": protocol,
              "scores": {"map@1000": map_, "precision@r2": precision, "empty@r2": 0.0}}
    if curve is not None:
        result["curves"] = {"pr_by_radius": {"radius": list(range(len(curve))), "precision": list(curve),
                                             "recall": list(np.linspace(0, 1, len(curve)))}}
    return result


def data_lines(axes):
    """{legend label: (x, y)} of the plotted lines (an error bar's data line for an error bar)."""
    handles, labels = axes.get_legend_handles_labels()
    found = {}
    for handle, label in zip(handles, labels):
        line = handle.lines[0] if hasattr(handle, "lines") else handle
        found[label] = (list(line.get_xdata()), list(line.get_ydata()))
    return found


def test_the_gamma_figure_has_each_gammas_mean_spread_and_the_paper():
    records = [record("table2-gamma", "saeh", seed, m, p, gamma=g)
               for g, seed, m, p in ((0.0, 0, 0.80, 0.70), (0.0, 1, 0.84, 0.74), (0.1, 0, 0.85, 0.75),
                                     (0.1, 1, 0.87, 0.79), (10.0, 0, 0.60, 0.50))]
    records.append(record("table1-cifar10", "saeh", 0, 0.1, 0.1))  # another table: not drawn
    figure = results_figures.gamma_figure(records, PAPER)
    map_axes, precision_axes = figure.axes
    lines = data_lines(map_axes)
    ours = next(values for label, values in lines.items() if label.startswith("ours"))
    # The five gammas of the paper are the x positions 0..4; we have 0, 0.1 and 10: positions 0, 2, 4.
    assert ours[0] == [0, 2, 4] and ours[1] == pytest.approx([82.0, 86.0, 60.0])
    assert lines["paper (stack_num 18, 90 epochs)"][1] == PAPER["map_at_1000"]
    assert data_lines(precision_axes)[next(label for label in lines if label.startswith("ours"))][1] == \
        pytest.approx([72.0, 77.0, 50.0])
    errorbar = next(c for c in map_axes.containers if hasattr(c, "has_yerr") and c.has_yerr)
    segments = errorbar.lines[2][0].get_segments()
    assert [seg[1][1] - seg[0][1] for seg in segments] == pytest.approx([2 * np.std([80, 84], ddof=1),
                                                                        2 * np.std([85, 87], ddof=1), 0.0])
    dots = [line for line in map_axes.lines if line.get_linestyle() == "None" and line.get_marker() == "o"]
    assert sorted(y for line in dots for y in line.get_ydata()) == pytest.approx([60, 80, 84, 85, 87])
    assert [tick.get_text() for tick in map_axes.get_xticklabels()] == ["0", "0.01", "0.1", "1", "10"]
    assert results_figures.gamma_figure(records[-1:], PAPER) is None


def test_the_gamma_figure_keeps_each_preset_apart():
    """Another preset's seeds (another network and budget) get their own series: no mean pools two presets."""
    records = [record("table2-gamma", "saeh", seed, m, 0.5, gamma=g, preset="cifar10-table")
               for g, seed, m in ((0.0, 0, 0.70), (0.0, 1, 0.72), (1.0, 0, 0.71))]
    records.append(record("table2-gamma", "saeh", 0, 0.90, 0.5, gamma=0.0, preset="cifar10-cpu"))
    lines = data_lines(results_figures.gamma_figure(records, PAPER).axes[0])
    assert lines["ours (cifar10-table), mean ± sd over seeds"] == ([0, 3], [pytest.approx(71.0), pytest.approx(71.0)])
    assert lines["ours (cifar10-cpu), mean ± sd over seeds"] == ([0], [pytest.approx(90.0)])


def test_precision_against_bits_averages_seeds_per_method_and_needs_two_lengths():
    records = [record("table1-mnist", "saeh", 0, 0.9, 0.90, bits=12, dataset="mnist"),
               record("table1-mnist", "saeh", 0, 0.9, 0.94, bits=32, dataset="mnist"),
               record("table1-mnist", "saeh", 1, 0.9, 0.98, bits=32, dataset="mnist"),
               record("table1-mnist", "dsh", 0, 0.9, 0.50, bits=32, dataset="mnist"),
               record("table1-cifar10", "saeh", 0, 0.7, 0.70),  # CIFAR-10 has one length: no figure
               record("original-cifar10", "saeh", 0, 0.9, 0.10, bits=12, procedure="original"),
               record("table2-gamma", "saeh", 0, 0.9, 0.10, bits=12, gamma=0.1)]
    # Another preset's seed 0 neither replaces nor joins mnist-cpu's: a figure of its own.
    records += [record("table1-mnist", "saeh", 0, 0.9, 0.20, bits=b, dataset="mnist", preset="tiny") for b in (12, 32)]
    records = [dict(r, preset="mnist-cpu") if r["dataset"] == "mnist" and r["preset"] != "tiny" else r
               for r in records]
    figures = results_figures.precision_vs_bits_figures(records, LABELS)
    assert list(figures) == [("mnist", "mnist-cpu"), ("mnist", "tiny")]
    lines = data_lines(figures[("mnist", "mnist-cpu")].axes[0])
    assert lines["SAEH"][0] == [12, 32] and lines["SAEH"][1] == pytest.approx([90.0, 96.0])
    assert lines["DSH"] == ([32], [pytest.approx(50.0)])
    assert data_lines(figures[("mnist", "tiny")].axes[0])["SAEH"][1] == pytest.approx([20.0, 20.0])
    assert figures[("mnist", "tiny")].axes[0].get_title().startswith("mnist, preset tiny:")


def test_pr_curves_take_each_methods_lowest_seed():
    records = [record("table1-cifar10", "saeh", 1, 0.8, 0.8, curve=[0.9, 0.8, 0.7, 0.1]),
               record("table1-cifar10", "saeh", 0, 0.8, 0.8, curve=[0.5, 0.4, 0.3, 0.1]),
               record("table1-cifar10", "dsh", 0, 0.8, 0.8, curve=[0.2, 0.2, 0.2, 0.1]),
               record("table1-cifar10", "dsh", 0, 0.8, 0.8, bits=12),  # no curve
               record("table1-cifar10", "saeh", 0, 0.8, 0.8, bits=12, curve=[0.5, 0.4, 0.1]),
               # Another protocol (other training images and database): a figure of its own.
               record("dpsh-protocol-cifar10", "dsh", 0, 0.1, 0.1, curve=[0.1, 0.1, 0.1, 0.1], protocol="dpsh"),
               record("dpsh-protocol-cifar10", "saeh", 0, 0.1, 0.1, curve=[0.3, 0.1, 0.1, 0.1], protocol="dpsh"),
               # Another preset (another network and budget): never beside this preset's curves.
               record("table1-cifar10", "ssdh", 0, 0.8, 0.8, curve=[0.3, 0.3, 0.3, 0.1], preset="cifar10-resnet50")]
    figures = results_figures.pr_figures(records, LABELS)
    ours, dpsh = (("cifar10", "cifar10-cpu"), 32), (("cifar10_dpsh", "cifar10-cpu"), 32)
    assert list(figures) == [ours, dpsh]  # 12 bits and cifar10-resnet50 have one method's curve only
    lines = data_lines(figures[ours].axes[0])
    assert lines["SAEH (seed 0)"][1] == [0.5, 0.4, 0.3, 0.1] and lines["DSH (seed 0)"][1] == [0.2, 0.2, 0.2, 0.1]
    assert len(lines) == 2
    assert data_lines(figures[dpsh].axes[0])["DSH (seed 0)"][1] == [0.1, 0.1, 0.1, 0.1]
    assert "protocol dpsh, preset cifar10-cpu" in figures[dpsh].axes[0].get_title()


def test_render_writes_each_figure_once_and_the_report_links_them(tmp_path):
    records = [record("table2-gamma", "saeh", 0, 0.8, 0.7, gamma=g) for g in (0.0, 1.0)]
    records += [record("table1-cifar10", m, 0, 0.8, 0.8, curve=[0.5, 0.4, 0.1]) for m in ("saeh", "dsh")]
    image_dir = tmp_path / "image"
    figures = results_figures.render_figures(records, str(image_dir), LABELS, PAPER)
    names = [name for name, _ in figures]
    assert names == ["reproduce_table2_gamma.png", "reproduce_pr_cifar10_cifar10-cpu_32bits.png"]
    stamps = {name: os.stat(image_dir / name).st_mtime_ns for name in names}
    assert all((image_dir / name).read_bytes().startswith(b"\x89PNG") for name in names)
    os.utime(image_dir / names[0], ns=(1, 1))
    assert results_figures.render_figures(records, str(image_dir), LABELS, PAPER) == figures
    assert os.stat(image_dir / names[0]).st_mtime_ns == 1  # same bytes: not written again
    assert os.stat(image_dir / names[1]).st_mtime_ns == stamps[names[1]]
    text = render_report([], figures=figures)
    assert "No reproduction results yet" in text
    text = render_report([dict(r, cell="c", protocol="ssdh", wall_seconds=1.0, git={}, machine={})
                          for r in records], figures=figures)
    assert "![Table 2: each γ's seeds (dots), their mean ± sd, and the paper's values](image/" \
           "reproduce_table2_gamma.png)" in text
