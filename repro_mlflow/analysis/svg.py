"""A few drawing primitives written straight as SVG text: no plotting library to import, no raster to encode.

The report's figures (plots.py) are a handful of rectangles, points, lines and labels; writing them as
SVG costs milliseconds and the browser draws them sharp at any zoom. Colour maps are matplotlib's
(viridis, RdYlGn, tab10/tab20), sampled here so the figures look as they did.
"""

from __future__ import annotations

import html
import math

FONT = "DejaVu Sans,Verdana,Arial,sans-serif"

# matplotlib's viridis and RdYlGn at evenly spaced points (linear interpolation in between)
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725")
RDYLGN = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63",
          "#1a9850", "#006837")
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf")
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
         "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
         "#17becf", "#9edae5")


def _rgb(hexcolour: str) -> tuple[int, int, int]:
    return int(hexcolour[1:3], 16), int(hexcolour[3:5], 16), int(hexcolour[5:7], 16)


def colour(stops: tuple[str, ...], x: float) -> str:
    """The colour at `x` in [0, 1] of a map given by evenly spaced stops."""
    x = min(max(x, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    t = x - i
    a, b = _rgb(stops[i]), _rgb(stops[i + 1])
    return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(a, b))


def light(hexcolour: str) -> bool:
    """Whether black text reads better than white on this colour."""
    r, g, b = _rgb(hexcolour)
    return 0.299 * r + 0.587 * g + 0.114 * b > 140


def text_width(s: str, size: float) -> float:
    """An estimate of a label's width in pixels (DejaVu Sans averages about 0.6 em a character)."""
    return 0.6 * size * len(s)


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        out.append(round(first + k * step, 12))
        k += 1
    return out


class Canvas:
    """Elements appended as SVG text; `svg()` wraps them with the size they need."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str | None = None,
             title: str | None = None) -> None:
        s = f' stroke="{stroke}"' if stroke else ""
        t = f"<title>{esc(title)}</title>" if title else ""
        end = f">{t}</rect>" if t else "/>"
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"{s}{end}')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#000", width: float = 1) -> None:
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
                          f'stroke-width="{width}"/>')

    def circle(self, x: float, y: float, r: float, fill: str, opacity: float = 1.0) -> None:
        self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" fill-opacity="{opacity}" '
                          f'shape-rendering="auto"/>')

    def text(self, x: float, y: float, s: str, size: float = 10, anchor: str = "start", rotate: float = 0,
             fill: str = "#000", bold: bool = False, middle: bool = True) -> None:
        rot = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        b = ' font-weight="bold"' if bold else ""
        base = ' dominant-baseline="central"' if middle else ""
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
                          f'{base}{b}{rot}>{esc(s)}</text>')

    def colourbar(self, x: float, y: float, h: float, stops: tuple[str, ...], lo: float, hi: float,
                  label: str, ident: str) -> None:
        """A vertical colour bar from `lo` (bottom) to `hi` (top), its ticks, and its label beside it."""
        grad = "".join(f'<stop offset="{i / (len(stops) - 1):.3f}" stop-color="{c}"/>'
                       for i, c in enumerate(reversed(stops)))
        self.parts.append(f'<defs><linearGradient id="{ident}" x1="0" y1="0" x2="0" y2="1">{grad}'
                          f"</linearGradient></defs>")
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="14" height="{h:.1f}" fill="url(#{ident})" '
                          f'stroke="#444"/>')
        for t in nice_ticks(lo, hi, 5) if hi > lo else [lo]:
            ty = y + h - (t - lo) / (hi - lo) * h if hi > lo else y + h / 2
            self.line(x + 14, ty, x + 18, ty)
            self.text(x + 20, ty, f"{t:.6g}", 9)
        self.text(x + 75, y + h / 2, label, 10, "middle", rotate=90)

    def svg(self) -> bytes:
        w, h = math.ceil(self.width), math.ceil(self.height)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
                f'font-family="{FONT}" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/>'
                + "".join(self.parts) + "</svg>").encode()
