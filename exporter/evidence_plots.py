"""Plots of an exhibit as small self-contained SVG, drawn with numpy (no plotting library).

waveform_svg: the failing clip's waveform (min/max per pixel column) above its 10 ms energy
in dBFS, with the baseline clip's energy dashed over it. f0_svg: the voiced F0 contour of the
failing clip over its template's, both on the relative position within the voiced frames (the
contours keep voiced frames only, so they carry no time axis). Every text is ours and escaped.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import numpy as np

from tts_sentinel.exporter.audio.checks import frame_rms
from tts_sentinel.exporter.audio.wav import Audio

WIDTH, HEIGHT = 720, 270
LEFT, RIGHT = 56, 24
ENERGY_FLOOR_DBFS = -80.0
CLIP_COLOUR, BASELINE_COLOUR = "#c0392b", "#2c6fbb"
_FONT = 'font-family="sans-serif" font-size="11"'


def _svg(body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{escape(title)}</title>'
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>' + "".join(body) + "</svg>\n")


def _text(x: float, y: float, text: str, anchor: str = "start", colour: str | None = None) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {_FONT} fill="{colour or "#333"}">'
            f"{escape(text)}</text>")


def _polyline(xs: np.ndarray, ys: np.ndarray, colour: str, dashed: bool = False) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.3"{dash}/>'


def _frame(top: float, bottom: float, label: str, ticks: list[tuple[float, str]]) -> list[str]:
    """A panel box with its y label and tick labels ((y, text) pairs)."""
    out = [f'<rect x="{LEFT}" y="{top:.1f}" width="{WIDTH - LEFT - RIGHT}" height="{bottom - top:.1f}" '
           'fill="none" stroke="#999" stroke-width="0.6"/>', _text(LEFT, top - 4, label)]
    for y, text in ticks:
        out.append(f'<line x1="{LEFT - 3}" x2="{LEFT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999"/>')
        out.append(_text(LEFT - 5, y + 4, text, "end"))
    return out


def _legend(entries: list[tuple[str, str]]) -> list[str]:
    """Legend entries right-aligned on the top line, the last one rightmost."""
    out, x = [], WIDTH - RIGHT
    for text, colour in reversed(entries):
        out.append(_text(x, 13, text, "end", colour))
        x -= 7 * len(text) + 16  # about 6-7 px per character at 11 px
    return out


def energy_dbfs(audio: Audio, frame_seconds: float = 0.01) -> np.ndarray:
    """10 ms RMS in dBFS, floored at ENERGY_FLOOR_DBFS (an all-zero frame sits on the floor)."""
    rms = frame_rms(audio.samples, max(1, int(round(frame_seconds * audio.sample_rate))))
    with np.errstate(divide="ignore"):
        db = 20.0 * np.log10(rms)
    return np.maximum(np.nan_to_num(db, nan=ENERGY_FLOOR_DBFS, neginf=ENERGY_FLOOR_DBFS), ENERGY_FLOOR_DBFS)


def waveform_svg(clip: Audio, baseline: Audio | None = None, title: str = "waveform and energy") -> str:
    """Waveform of `clip` (top) and the energy of `clip` and `baseline` (bottom), on one time axis."""
    plot_w = WIDTH - LEFT - RIGHT
    span = max(clip.duration_seconds, baseline.duration_seconds if baseline else 0.0, 0.01)
    body: list[str] = []
    # Top panel: min/max of the samples in each pixel column.
    top, bottom = 34.0, 120.0
    mid, half = (top + bottom) / 2, (bottom - top) / 2
    body += _frame(top, bottom, "amplitude", [(top, "1"), (mid, "0"), (bottom, "-1")])
    columns = max(1, int(plot_w * clip.duration_seconds / span))
    x = np.asarray(clip.samples, dtype=np.float64)
    if len(x):
        edges = np.linspace(0, len(x), columns + 1).astype(int)
        lo = np.array([x[a:b].min() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
        hi = np.array([x[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
        xs = LEFT + np.arange(columns) * plot_w / columns
        ys_hi = mid - np.clip(hi, -1, 1) * half
        ys_lo = mid - np.clip(lo, -1, 1) * half
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(np.r_[xs, xs[::-1]], np.r_[ys_hi, ys_lo[::-1]],
                                                           strict=True))
        body.append(f'<polygon points="{pts}" fill="{CLIP_COLOUR}" fill-opacity="0.75" stroke="{CLIP_COLOUR}" '
                    'stroke-width="0.5"/>')
    # Bottom panel: energy in dBFS.
    top, bottom = 152.0, 236.0
    body += _frame(top, bottom, "energy dBFS", [(top, "0"), ((top + bottom) / 2, "-40"), (bottom, "-80")])

    def energy_line(audio: Audio, colour: str, dashed: bool) -> str | None:
        db = energy_dbfs(audio)
        if not len(db):
            return None
        step = max(1, len(db) // plot_w)  # at most one point per pixel: small files
        db = db[: len(db) // step * step].reshape(-1, step).max(axis=1) if step > 1 else db
        t = (np.arange(len(db)) + 0.5) * step * 0.01
        xs = LEFT + t / span * plot_w
        ys = top + (db / ENERGY_FLOOR_DBFS) * (bottom - top)
        return _polyline(xs, ys, colour, dashed)

    for audio, colour, dashed in ((baseline, BASELINE_COLOUR, True), (clip, CLIP_COLOUR, False)):
        if audio is not None and (line := energy_line(audio, colour, dashed)):
            body.append(line)
    for i in range(6):
        seconds = span * i / 5
        body.append(_text(LEFT + plot_w * i / 5, 252, f"{seconds:.1f}s", "middle"))
    legend = [(f"failing clip ({clip.duration_seconds:.2f}s)", CLIP_COLOUR)]
    if baseline is not None:
        legend.append((f"- - baseline energy ({baseline.duration_seconds:.2f}s)", BASELINE_COLOUR))
    body += _legend(legend)
    return _svg(body, title)


def f0_svg(f0: np.ndarray | None, template_f0: np.ndarray | None, title: str = "F0 contour") -> str:
    """The clip's voiced F0 (Hz) over the template's, on relative position 0..1."""
    plot_w = WIDTH - LEFT - RIGHT
    top, bottom = 34.0, 236.0
    curves = [(c, colour, dashed) for c, colour, dashed in ((template_f0, BASELINE_COLOUR, True),
                                                             (f0, CLIP_COLOUR, False))
              if c is not None and len(c)]
    values = np.concatenate([c for c, _, _ in curves]) if curves else np.array([100.0, 300.0])
    lo, hi = float(np.min(values)) * 0.9, float(np.max(values)) * 1.1
    if hi - lo < 1.0:
        lo, hi = lo - 1.0, hi + 1.0
    ticks = [(bottom - (v - lo) / (hi - lo) * (bottom - top), f"{v:.0f}") for v in np.linspace(lo, hi, 5)]
    body = _frame(top, bottom, "F0 Hz", ticks)
    for curve, colour, dashed in curves:
        xs = LEFT + np.linspace(0, 1, len(curve)) * plot_w
        ys = bottom - (np.asarray(curve, dtype=np.float64) - lo) / (hi - lo) * (bottom - top)
        if len(curve) > plot_w:  # one point per pixel column is enough
            keep = np.linspace(0, len(curve) - 1, plot_w).astype(int)
            xs, ys = xs[keep], ys[keep]
        body.append(_polyline(xs, ys, colour, dashed))
    for i in range(6):
        body.append(_text(LEFT + plot_w * i / 5, 252, f"{i * 20}%", "middle"))
    body.append(_text(WIDTH - RIGHT, 266, "position within the voiced frames", "end"))
    n = 0 if f0 is None else len(f0)
    legend = [(f"failing clip ({n} voiced frames)" if n else "failing clip: no voiced frames", CLIP_COLOUR)]
    if template_f0 is not None and len(template_f0):
        legend.append((f"- - template ({len(template_f0)} voiced frames)", BASELINE_COLOUR))
    body += _legend(legend)
    return _svg(body, title)
