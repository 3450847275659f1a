"""The figures of the reproduction report, drawn from result records (`results/<table>/<cell>.json`) alone.

`render_figures(records, image_dir)` writes, for what the records hold:

- `reproduce_table2_gamma.png`: mAP@1000 and precision within radius 2 against γ (every seed a dot, the mean with
  its sample standard deviation as an error bar, one series per preset), the paper's Table 2 dashed;
- `reproduce_precision_vs_bits_<data>_<preset>.png`: precision within radius 2 against code length, one line per
  method (mean over seeds), from every table of the default procedure;
- `reproduce_pr_<data>_<preset>_<bits>bits.png`: the precision-recall curve of Hamming-ball retrieval (radius
  0..bits) of each method's lowest seed, from the curves the runner stores in each record.

`<data>` is the dataset, followed by the protocol when it is not the default `ssdh` (`cifar10_dpsh`). Records of
different protocols (other training images, database and queries) or presets (other networks and budgets) never
share a figure, nor a line or a mean.

Figures are rendered in memory and a file is replaced only when its bytes change, so rendering the same records
twice leaves the folder as it was. matplotlib is imported inside the functions.
"""

import io
import os
import statistics

from saeh import defaults
from saeh.atomic import atomic_path

FIGURE_PREFIX = "reproduce_"  # every figure of the report, and only those, is image/reproduce_*.png
GAMMA_FIGURE = f"{FIGURE_PREFIX}table2_gamma.png"
PRESET_COLOURS = ("tab:blue", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:gray")
MAP, PRECISION = "map@1000", "precision@r2"


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure):
    buffer = io.BytesIO()
    # No "Software" entry: the bytes then depend on the drawing only, not on the matplotlib version string.
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _write_if_changed(path, data):
    """Write `data` to `path` unless it holds those bytes already; True when written."""
    if os.path.exists(path):
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
    return True


def _line_style(number):
    """The colour and dash of a figure's `number`-th method: matplotlib's ten colours, then dashed, then dotted, so
    that no two of up to 30 methods look alike."""
    return {"color": f"C{number % 10}", "linestyle": ("-", "--", ":")[number // 10 % 3]}


def _label(labels, method):
    return labels.get(method, method)


def gamma_figure(records, paper, table="table2-gamma"):
    """Table 2 as a figure, or None without records of `table`. `paper`: the published `table2_gamma` entry."""
    records = [r for r in records if r["table"] == table and r["procedure"] == "default"]
    if not records:
        return None
    by_preset = {}  # {preset: {gamma: records}}: presets differ in network and budget, so never share a mean
    for record in records:
        by_preset.setdefault(record["preset"], {}).setdefault(float(record["gamma"]), []).append(record)
    gammas = sorted({gamma for by_gamma in by_preset.values() for gamma in by_gamma}
                    | {float(g) for g in paper["gamma"]})
    position = {gamma: index for index, gamma in enumerate(gammas)}
    figure = _figure(10, 3.8)
    panels = ((MAP, "map_at_1000", "mAP@1000 (%)"), (PRECISION, "precision_radius_2", "precision, radius ≤ 2 (%)"))
    for index, (score, paper_key, title) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        for number, (preset, by_gamma) in enumerate(sorted(by_preset.items())):
            colour = PRESET_COLOURS[number % len(PRESET_COLOURS)]
            for gamma, runs in sorted(by_gamma.items()):
                values = [100 * run["scores"][score] for run in runs]
                axes.plot([position[gamma]] * len(values), values, "o", color=colour, alpha=0.35, markersize=4)
            means = [(position[g], statistics.fmean([100 * r["scores"][score] for r in runs]),
                      statistics.stdev([100 * r["scores"][score] for r in runs]) if len(runs) > 1 else 0.0)
                     for g, runs in sorted(by_gamma.items())]
            axes.errorbar([m[0] for m in means], [m[1] for m in means], yerr=[m[2] for m in means], fmt="o-",
                          color=colour, capsize=4, label=f"ours ({preset}), mean ± sd over seeds")
        axes.plot([position[float(g)] for g in paper["gamma"]], paper[paper_key], "s--", color="tab:orange",
                  label="paper (stack_num 18, 90 epochs)")
        axes.set_xticks(range(len(gammas)), [f"{g:g}" for g in gammas])
        axes.set(xlabel="γ (decoder weight; 0 = SAEH⁻)", ylabel=title, title=title)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    data = sorted({f"{record['dataset']}, {record['bits']} bits" for record in records})
    figure.suptitle(f"Table 2: SAEH on {'; '.join(data)}, protocol ssdh (paper: {paper['dataset']}, "
                    f"{paper['bits']} bits)", fontsize=10)
    return figure


def panel(record):
    """The figure a record belongs to: (its dataset, with its protocol when that is not the default one; its
    preset)."""
    protocol = record.get("protocol") or defaults.PROTOCOL
    data = record["dataset"] if protocol == defaults.PROTOCOL else f"{record['dataset']}_{protocol}"
    return data, record["preset"]


def panel_name(panel_key):
    """A `panel` as part of a file name: "cifar10_dpsh_cifar10-table"."""
    return "_".join(panel_key)


def _title(panel_key):
    """A `panel` in words: "cifar10, protocol dpsh, preset cifar10-table". The protocol is matched as a known
    suffix, so that a dataset whose own name holds an underscore stays whole."""
    from saeh.data.protocols import PROTOCOL_NAMES

    data, preset = panel_key
    for protocol in PROTOCOL_NAMES:
        if protocol != defaults.PROTOCOL and data.endswith(f"_{protocol}"):
            data = f"{data[:-len(protocol) - 1]}, protocol {protocol}"
            break
    return f"{data}, preset {preset}"


def precision_vs_bits_figures(records, labels):
    """{panel: figure} of precision within radius 2 against bits, one line per method, for panels with at least
    two code lengths among the records of the default procedure (γ cells other than SAEH's own left out)."""
    points = {}
    for record in records:
        if "ablation" in record or record["procedure"] != "default" or record["table"] == "table2-gamma":
            continue
        key = (panel(record), record["method"], record["bits"])
        points.setdefault(key, {})[record["seed"]] = record["scores"][PRECISION]
    figures = {}
    for data_panel in sorted({key[0] for key in points}):
        bits = sorted({key[2] for key in points if key[0] == data_panel})
        if len(bits) < 2:
            continue
        figure = _figure(5.8, 4.5)
        axes = figure.add_subplot()
        for number, method in enumerate(sorted({key[1] for key in points if key[0] == data_panel})):
            pairs = sorted((b, 100 * statistics.fmean(points[(data_panel, m, b)].values()))
                           for (d, m, b) in points if d == data_panel and m == method)
            axes.plot([b for b, _ in pairs], [v for _, v in pairs], marker="o", label=_label(labels, method),
                      **_line_style(number))
        axes.set_xticks(bits)
        axes.set(xlabel="bits", ylabel="precision, Hamming radius ≤ 2 (%)", ylim=(0, 102),
                 title=f"{_title(data_panel)}: precision within radius 2 vs code length (mean over seeds)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        figures[data_panel] = figure
    return figures


def pr_figures(records, labels):
    """{(panel, bits): figure} of the PR curves by Hamming radius of each method's lowest seed (default
    procedure), for the (panel, bits) with curves of at least two methods."""
    chosen = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        curve = (record.get("curves") or {}).get("pr_by_radius")
        if "ablation" in record or record["procedure"] != "default" or record["table"] == "table2-gamma" or not curve:
            continue
        chosen.setdefault((panel(record), record["bits"]), {}).setdefault(record["method"], (record, curve))
    figures = {}
    for (data_panel, bits), by_method in sorted(chosen.items()):
        if len(by_method) < 2:
            continue
        figure = _figure(5.8, 4.8)
        axes = figure.add_subplot()
        for number, (method, (record, curve)) in enumerate(sorted(by_method.items())):
            (line,) = axes.plot(curve["recall"], curve["precision"], marker=".", markersize=3, **_line_style(number),
                                label=f"{_label(labels, method)} (seed {record['seed']})")
            if len(curve["recall"]) > 2:  # radius 2, the usual operating point
                axes.plot(curve["recall"][2], curve["precision"][2], "o", color=line.get_color(), markersize=6)
        axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
                 title=f"{_title(data_panel)}, {bits} bits: PR by Hamming radius 0..{bits} (dot: radius 2)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
        figures[(data_panel, bits)] = figure
    return figures


def render_figures(records, image_dir, labels, paper_table2):
    """Draw every figure the records allow into `image_dir`; returns [(file name, caption)] in a stable order,
    and writes only files whose bytes change."""
    drawn = []
    figure = gamma_figure(records, paper_table2)
    if figure is not None:
        drawn.append((GAMMA_FIGURE, "Table 2: each γ's seeds (dots), their mean ± sd, and the paper's values",
                      figure))
    for data_panel, figure in precision_vs_bits_figures(records, labels).items():
        drawn.append((f"{FIGURE_PREFIX}precision_vs_bits_{panel_name(data_panel)}.png",
                      f"{_title(data_panel)}: precision within Hamming radius 2 against code length", figure))
    for (data_panel, bits), figure in pr_figures(records, labels).items():
        drawn.append((f"{FIGURE_PREFIX}pr_{panel_name(data_panel)}_{bits}bits.png",
                      f"{_title(data_panel)}, {bits} bits: precision-recall of Hamming-ball retrieval", figure))
    for name, _, figure in drawn:
        _write_if_changed(os.path.join(image_dir, name), png_bytes(figure))
    return [(name, caption) for name, caption, _ in drawn]


def remove_stale_figures(image_dir, drawn, log):
    """Remove the report's figures in `image_dir` whose names are not in `drawn`: a figure renamed, or left without
    records, would otherwise stay in the folder beside the new ones."""
    if not os.path.isdir(image_dir):
        return
    for name in sorted(os.listdir(image_dir)):
        if name.startswith(FIGURE_PREFIX) and name.endswith(".png") and name not in drawn:
            os.remove(os.path.join(image_dir, name))
            log(f"removed {os.path.join(os.path.basename(image_dir), name)}: the report no longer draws it")
