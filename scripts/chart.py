#!/usr/bin/env python3
"""Draw docs/chart.svg from criterion's output: time per call against n, log-log.

Two panels, one line per tool:
  * gradient of extended Rosenbrock (benches/gradient.rs, groups rosen_n10 ... rosen_n100000);
  * dense Hessian of extended Rosenbrock (benches/hessian.rs, groups rosen_n10 ... rosen_n1000).

Both benches name their groups rosen_nN, so both write under <criterion-dir>/rosen_nN/; the
tool ids inside a group differ between the benches (only `f`, the function alone at f64,
is shared, and both benches time the same function at the same point).

Each point is criterion's estimate read from
<criterion-dir>/<group>/<tool>/new/estimates.json (the median by default).

Python 3 standard library only: the SVG is written by hand. BENCHMARKS.md ("Redrawing the
chart") has the commands that produce the data.
"""

import argparse
import json
import math
import os
import re
import sys
from xml.sax.saxutils import escape

# ---------------------------------------------------------------------------------------
# What is drawn: per panel, the tools (criterion ids) in legend order, with their style.
# Colours: mixad blue, echidna orange, num-dual green, finite differences and f grey
# (Okabe-Ito palette, readable by colour-blind readers). Solid lines are the reusable form
# (recorded tape / prepared), dashed the one-shot form; the markers differ too.

BLUE, SKY, ORANGE, VERMILION, GREEN, GREY = (
    "#0072B2",
    "#56B4E9",
    "#E69F00",
    "#D55E00",
    "#009E73",
    "#777777",
)

PANELS = [
    {
        "title": "Gradient (benches/gradient.rs)",
        "bench": "gradient",
        "tools": [
            ("mixad_recorded", "mixad, recorded (Recording)", BLUE, "", "circle"),
            ("mixad_reverse", "mixad, one-shot reverse", BLUE, "6,4", "square"),
            ("mixad_forward", "mixad, forward duals", SKY, "2,3", "triangle"),
            ("echidna_tape", "echidna, recorded tape", ORANGE, "", "diamond"),
            ("echidna_grad", "echidna, one-shot", VERMILION, "6,4", "square"),
            ("num_dual", "num-dual (DualDVec64)", GREEN, "", "triangle"),
            ("f", "f alone, for scale", GREY, "3,3", "circle"),
        ],
    },
    {
        "title": "Dense Hessian (benches/hessian.rs)",
        "bench": "hessian",
        "tools": [
            ("mixad_hessian_1t", "mixad, recorded, 1 thread", BLUE, "", "circle"),
            ("mixad_hessian_all", "mixad, recorded, all threads", SKY, "6,4", "square"),
            ("echidna_hessian_8", "echidna, 8 lanes", ORANGE, "", "diamond"),
            ("echidna_hessian", "echidna, 1 column/sweep", VERMILION, "6,4", "square"),
            ("num_dual_hessian", "num-dual (Dual2DVec64)", GREEN, "", "triangle"),
            ("fd_hessian", "finite differences (2n grads)", GREY, "3,3", "circle"),
        ],
    },
]

GROUP_RE = re.compile(r"^rosen_n(\d+)$")

# Layout (px). The SVG scales to the README's width; 960 wide keeps 13 px text readable
# when GitHub shows it at about 830 px.
WIDTH = 960
PANEL_W = WIDTH / 2
PLOT_LEFT = 70  # inside a panel: room for the time labels
PLOT_RIGHT = 30
TOP = 58  # title and subtitle above the panels
PANEL_TITLE_H = 24
PLOT_H = 290
X_LABELS_H = 44
LEGEND_ROW = 18
FONT = "font-family=\"Helvetica, Arial, sans-serif\""


def parse_args(argv):
    default_target = os.environ.get("CARGO_TARGET_DIR", "target")
    p = argparse.ArgumentParser(
        description="Draw time against n (log-log) for the gradient and dense-Hessian "
        "benches of mixad and its peers, from criterion's estimates.json files, as SVG.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Produce the data first (BENCHMARKS.md, 'Redrawing the chart'):\n"
        "  MIXAD_RATIOS=0 cargo bench -p mixad-benches --bench gradient -- rosen\n"
        "  MIXAD_RATIOS=0 cargo bench -p mixad-benches --bench hessian -- rosen_n",
    )
    p.add_argument(
        "--criterion-dir",
        default=os.path.join(default_target, "criterion"),
        help="criterion's output directory (default: $CARGO_TARGET_DIR/criterion, "
        "else target/criterion; now %(default)s)",
    )
    p.add_argument("--out", default="docs/chart.svg", help="SVG to write (default: %(default)s)")
    p.add_argument(
        "--statistic",
        default="median",
        choices=["median", "mean", "slope"],
        help="which criterion estimate to plot (default: %(default)s)",
    )
    p.add_argument(
        "--note",
        default="",
        help="one line printed under the title, e.g. the commit, date and machine",
    )
    return p.parse_args(argv)


def read_estimate(path, statistic):
    """The point estimate in seconds, or None if criterion recorded none (e.g. no slope
    under flat sampling)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    est = data.get(statistic)
    if not est or est.get("point_estimate") is None:
        return None
    return est["point_estimate"] * 1e-9  # criterion stores nanoseconds


def collect(criterion_dir, statistic):
    """{tool: [(n, seconds), ...]} over every rosen_nN group, sorted by n."""
    series = {}
    for group in sorted(os.listdir(criterion_dir)):
        m = GROUP_RE.match(group)
        if not m:
            continue
        n = int(m.group(1))
        gdir = os.path.join(criterion_dir, group)
        for tool in os.listdir(gdir):
            path = os.path.join(gdir, tool, "new", "estimates.json")
            if os.path.isfile(path):
                t = read_estimate(path, statistic)
                if t is not None and t > 0:
                    series.setdefault(tool, []).append((n, t))
    for pts in series.values():
        pts.sort()
    return series


# ---------------------------------------------------------------------------------------
# Formatting.

SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def fmt_n(exp):
    return {0: "1", 1: "10", 2: "100"}.get(exp, "10" + str(exp).translate(SUPERSCRIPT))


def fmt_time(exp):
    """10^exp seconds as '100 ns', '1 µs', '10 ms', ..."""
    for unit, base in (("s", 0), ("ms", -3), ("µs", -6), ("ns", -9)):
        if exp >= base:
            return f"{10 ** (exp - base)} {unit}"
    return f"{10 ** (exp + 12)} ps"


def attr(**kw):
    return " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in kw.items())


def num(v):
    return f"{v:.1f}"


# ---------------------------------------------------------------------------------------
# Drawing.


def marker(shape, x, y, colour):
    s = 3.6
    common = f'fill="{colour}" stroke="white" stroke-width="0.8"'
    if shape == "square":
        return f'<rect x="{num(x - s)}" y="{num(y - s)}" width="{num(2 * s)}" height="{num(2 * s)}" {common}/>'
    if shape == "triangle":
        pts = [(x, y - 1.25 * s), (x - 1.15 * s, y + 0.85 * s), (x + 1.15 * s, y + 0.85 * s)]
    elif shape == "diamond":
        pts = [(x, y - 1.35 * s), (x + 1.1 * s, y), (x, y + 1.35 * s), (x - 1.1 * s, y)]
    else:
        return f'<circle cx="{num(x)}" cy="{num(y)}" r="{num(s)}" {common}/>'
    return f'<polygon points="{" ".join(f"{num(a)},{num(b)}" for a, b in pts)}" {common}/>'


def draw_panel(out, panel, series, x0, y0, legend_rows):
    tools = [t for t in panel["tools"] if t[0] in series]
    pts = [p for t in tools for p in series[t[0]]]
    ns = [n for n, _ in pts]
    ts = [t for _, t in pts]
    xlo, xhi = math.floor(math.log10(min(ns))), math.ceil(math.log10(max(ns)))
    ylo, yhi = math.floor(math.log10(min(ts))), math.ceil(math.log10(max(ts)))
    if xhi == xlo:
        xhi += 1
    if yhi == ylo:
        yhi += 1

    left, right = x0 + PLOT_LEFT, x0 + PANEL_W - PLOT_RIGHT
    top = y0 + PANEL_TITLE_H
    bottom = top + PLOT_H

    def px(n):
        return left + (math.log10(n) - xlo) / (xhi - xlo) * (right - left)

    def py(t):
        return bottom - (math.log10(t) - ylo) / (yhi - ylo) * (bottom - top)

    out.append(
        f'<text x="{num((left + right) / 2)}" y="{num(y0 + 15)}" text-anchor="middle" '
        f'font-size="15" font-weight="bold" {FONT}>{escape(panel["title"])}</text>'
    )
    # Grid: decades solid, 2-9 faint.
    for e in range(xlo, xhi + 1):
        for k in range(1, 10) if e < xhi else [1]:
            x = px(k * 10**e)
            strong = k == 1
            out.append(
                f'<line x1="{num(x)}" y1="{num(top)}" x2="{num(x)}" y2="{num(bottom)}" '
                f'stroke="{"#cccccc" if strong else "#eeeeee"}" stroke-width="1"/>'
            )
            if strong:
                out.append(
                    f'<text x="{num(x)}" y="{num(bottom + 17)}" text-anchor="middle" '
                    f'font-size="13" {FONT}>{fmt_n(e)}</text>'
                )
    for e in range(ylo, yhi + 1):
        for k in range(1, 10) if e < yhi else [1]:
            y = py(k * 10**e)
            strong = k == 1
            out.append(
                f'<line x1="{num(left)}" y1="{num(y)}" x2="{num(right)}" y2="{num(y)}" '
                f'stroke="{"#cccccc" if strong else "#eeeeee"}" stroke-width="1"/>'
            )
            if strong:
                out.append(
                    f'<text x="{num(left - 6)}" y="{num(y + 4.5)}" text-anchor="end" '
                    f'font-size="13" {FONT}>{fmt_time(e)}</text>'
                )
    out.append(
        f'<rect x="{num(left)}" y="{num(top)}" width="{num(right - left)}" '
        f'height="{num(bottom - top)}" fill="none" stroke="#444444" stroke-width="1"/>'
    )
    # Axis labels.
    out.append(
        f'<text x="{num((left + right) / 2)}" y="{num(bottom + 36)}" text-anchor="middle" '
        f'font-size="13" {FONT}>n (number of inputs)</text>'
    )
    cy = (top + bottom) / 2
    out.append(
        f'<text x="{num(x0 + 14)}" y="{num(cy)}" text-anchor="middle" font-size="13" '
        f'transform="rotate(-90 {num(x0 + 14)} {num(cy)})" {FONT}>time per call</text>'
    )
    # Lines, then markers on top.
    for tool, _, colour, dash, shape in tools:
        path = " ".join(f"{num(px(n))},{num(py(t))}" for n, t in series[tool])
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width = 1.5 if tool in ("f", "fd_hessian") else 2.2
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}"{dash_attr} stroke-linejoin="round"/>'
        )
    for tool, _, colour, _, shape in tools:
        for n, t in series[tool]:
            out.append(marker(shape, px(n), py(t), colour))
    # Legend: two columns under the plot.
    ly = bottom + X_LABELS_H + 8
    col_w = (PANEL_W - 24) / 2
    for i, (tool, label, colour, dash, shape) in enumerate(tools):
        row, col = i // 2, i % 2
        lx = x0 + 24 + col * col_w
        yy = ly + row * LEGEND_ROW
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{num(lx)}" y1="{num(yy)}" x2="{num(lx + 26)}" y2="{num(yy)}" '
            f'stroke="{colour}" stroke-width="2.2"{dash_attr}/>'
        )
        out.append(marker(shape, lx + 13, yy, colour))
        out.append(
            f'<text x="{num(lx + 32)}" y="{num(yy + 4.5)}" font-size="12.5" {FONT}>'
            f"{escape(label)}</text>"
        )
    missing = [t[0] for t in panel["tools"] if t[0] not in series]
    return missing


def render(series, note, statistic):
    shown = [[t for t in p["tools"] if t[0] in series] for p in PANELS]
    legend_rows = max((len(s) + 1) // 2 for s in shown)
    height = TOP + PANEL_TITLE_H + PLOT_H + X_LABELS_H + legend_rows * LEGEND_ROW + 12
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{num(height)}" '
        f'viewBox="0 0 {WIDTH} {num(height)}">',
        f'<rect width="{WIDTH}" height="{num(height)}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="18" font-weight="bold" '
        f"{FONT}>Extended Rosenbrock: time per call against n (log–log; lower is better)"
        "</text>",
    ]
    sub = f"criterion {statistic} per call"
    if note:
        sub += " · " + note
    out.append(
        f'<text x="{WIDTH / 2}" y="44" text-anchor="middle" font-size="13" fill="#444444" '
        f"{FONT}>{escape(sub)}</text>"
    )
    missing = {}
    for i, panel in enumerate(PANELS):
        if shown[i]:
            missing[panel["bench"]] = draw_panel(
                out, panel, series, i * PANEL_W, TOP, legend_rows
            )
        else:
            missing[panel["bench"]] = [t[0] for t in panel["tools"]]
    out.append("</svg>")
    return "\n".join(out) + "\n", missing


def main(argv=None):
    args = parse_args(argv)
    cdir = args.criterion_dir
    fix = (
        "Run the benches first (BENCHMARKS.md, 'Redrawing the chart'):\n"
        "  MIXAD_RATIOS=0 cargo bench -p mixad-benches --bench gradient -- rosen\n"
        "  MIXAD_RATIOS=0 cargo bench -p mixad-benches --bench hessian -- rosen_n\n"
        "with the same CARGO_TARGET_DIR, or pass --criterion-dir."
    )
    if not os.path.isdir(cdir):
        sys.exit(f"chart.py: no criterion output: directory {cdir} does not exist.\n{fix}")
    series = collect(cdir, args.statistic)
    problems = []
    for panel in PANELS:
        if not any(t[0] in series for t in panel["tools"] if t[0] != "f"):
            ids = ", ".join(t[0] for t in panel["tools"] if t[0] != "f")
            problems.append(
                f"  {panel['title']}: no {cdir}/rosen_n<N>/<tool>/new/estimates.json "
                f"with a {args.statistic} estimate for any of {ids}"
            )
    if problems:
        sys.exit("chart.py: missing data:\n" + "\n".join(problems) + "\n" + fix)

    svg, missing = render(series, args.note, args.statistic)
    for bench, tools in missing.items():
        if tools:
            print(
                f"chart.py: warning: no data for {', '.join(tools)} "
                f"(benches/{bench}.rs); drawn without them",
                file=sys.stderr,
            )
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(svg)
    points = sum(len(v) for k, v in series.items() if any(k == t[0] for p in PANELS for t in p["tools"]))
    print(f"chart.py: wrote {args.out} ({points} points from {cdir})")


if __name__ == "__main__":
    main()
