"""Synthetic out-of-distribution images: noise, blanks, gradients, patterns, documents,
screenshots, charts, fluorescence-like micrographs and X-ray-like projections.

Several are built to look like a brain slice to simple statistics (a bright ring on black, a
radial gradient, a dark terminal window, bright blobs on a dark background), because those are
the uploads a gate based on brightness alone would let through. Every image comes from a seeded
generator, so the set is the same on every machine.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from training.ood_package_images import OodImage, to_uint8

Colour = tuple[int, ...]
WORDS = (
    "patient report scan result normal follow up contrast series image table total date "
    "invoice amount summary page figure method model data value review signed clinic"
).split()


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-1.0, 1.0, size)
    return np.meshgrid(axis, axis)


def _noise_images(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    for size in (64, 256, 512):
        yield f"uniform-grey-{size}", Image.fromarray(rng.integers(0, 256, (size, size), np.uint8))
        yield f"uniform-rgb-{size}", Image.fromarray(
            rng.integers(0, 256, (size, size, 3), np.uint8))
        gaussian = rng.normal(128, 40, (size, size))
        yield f"gaussian-{size}", Image.fromarray(to_uint8(gaussian, 0, 255))
        salt = (rng.random((size, size)) < 0.05).astype(np.float64)
        yield f"salt-pepper-{size}", Image.fromarray(to_uint8(salt, 0, 1))
    smooth = Image.fromarray(rng.integers(0, 256, (16, 16), np.uint8)).resize((256, 256))
    yield "smooth-noise", smooth.filter(ImageFilter.GaussianBlur(6))


def _flat_images() -> Iterator[tuple[str, Image.Image]]:
    for value in (0, 30, 128, 220, 255):
        yield f"blank-{value}", Image.new("L", (256, 256), value)
    for colour in ((255, 0, 0), (0, 128, 255), (30, 200, 60)):
        yield "blank-rgb-" + "-".join(map(str, colour)), Image.new("RGB", (256, 256), colour)


def _gradient_images() -> Iterator[tuple[str, Image.Image]]:
    x, y = _grid(256)
    radius = np.hypot(x, y)
    yield "gradient-horizontal", Image.fromarray(to_uint8(x, -1, 1))
    yield "gradient-vertical", Image.fromarray(to_uint8(y, -1, 1))
    yield "gradient-diagonal", Image.fromarray(to_uint8(x + y, -2, 2))
    yield "gradient-radial-bright-centre", Image.fromarray(to_uint8(1 - radius, 0, 1))
    yield "gradient-radial-dark-centre", Image.fromarray(to_uint8(radius, 0, 1.4))
    rgb = np.stack([to_uint8(x, -1, 1), to_uint8(y, -1, 1), to_uint8(-x, -1, 1)], axis=-1)
    yield "gradient-rgb", Image.fromarray(rgb)


def _pattern_images(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    x, y = _grid(256)
    radius = np.hypot(x, y)
    for period in (8, 32):
        yield f"stripes-{period}", Image.fromarray(to_uint8(np.sin(x * 256 / period), -1, 1))
        checks = (np.floor((x + 1) * 128 / period) + np.floor((y + 1) * 128 / period)) % 2
        yield f"checks-{period}", Image.fromarray(to_uint8(checks, 0, 1))
    yield "rings", Image.fromarray(to_uint8(np.sin(radius * 40), -1, 1))
    # A bright ring on black (a skull without a brain) and a filled ellipse (a head silhouette).
    ring = ((radius > 0.7) & (radius < 0.8)).astype(np.float64)
    yield "bright-ring-on-black", Image.fromarray(to_uint8(ring, 0, 1))
    ellipse = ((x / 0.7) ** 2 + (y / 0.85) ** 2 < 1).astype(np.float64) * 0.6
    yield "grey-ellipse-on-black", Image.fromarray(to_uint8(ellipse + ring * 0.4, 0, 1))
    dots = Image.new("L", (256, 256), 0)
    draw = ImageDraw.Draw(dots)
    for cx, cy in rng.integers(0, 256, (60, 2)):
        draw.ellipse((cx - 5, cy - 5, cx + 5, cy + 5), fill=int(rng.integers(100, 256)))
    yield "dots", dots
    hue = (np.arctan2(y, x) / (2 * np.pi) + 0.5) * 255
    wheel = np.stack([hue, np.clip(radius, 0, 1) * 255, np.full_like(x, 255)], axis=-1)
    yield "colour-wheel-hsv", Image.fromarray(wheel.astype(np.uint8), "HSV").convert("RGB")
    bars = np.repeat(np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                               [255, 0, 255], [255, 0, 0], [0, 0, 255]], np.uint8), 37, axis=0)
    yield "colour-bars", Image.fromarray(np.repeat(bars[np.newaxis], 200, axis=0))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(str(w) for w in rng.choice(WORDS, size=words))


def _write_lines(draw: ImageDraw.ImageDraw, rng: np.random.Generator, origin: tuple[int, int],
                 step: int, lines: int, words: int, ink: Colour | None = None) -> None:
    """`lines` random sentences of `words` words, one every `step` pixels down from `origin`;
    without `ink`, each line gets a random light colour (a dark theme's syntax colours)."""
    for line in range(lines):
        fill = ink or tuple(int(c) for c in rng.integers(120, 256, 3))
        draw.text((origin[0], origin[1] + line * step), _sentence(rng, words), fill=fill,
                  font=_font(13))


def _document(rng: np.random.Generator, dark: bool, lines: int) -> Image.Image:
    background, ink = ((20, 20, 24), (220, 220, 220)) if dark else ((255, 255, 255), (20, 20, 20))
    page = Image.new("RGB", (400, 520), background)
    draw = ImageDraw.Draw(page)
    draw.text((24, 20), _sentence(rng, 3).title(), fill=ink, font=_font(22))
    _write_lines(draw, rng, (24, 64), 20, lines, 7, ink)
    return page


def _table(rng: np.random.Generator) -> Image.Image:
    page = Image.new("RGB", (480, 320), "white")
    draw = ImageDraw.Draw(page)
    for row in range(9):
        for col in range(4):
            box = (20 + col * 110, 20 + row * 32, 130 + col * 110, 52 + row * 32)
            draw.rectangle(box, outline=(90, 90, 90), fill=(230, 236, 245) if row == 0 else None)
            text = str(rng.choice(WORDS)) if row == 0 else f"{rng.uniform(0, 999):.1f}"
            draw.text((box[0] + 6, box[1] + 8), text, fill="black", font=_font(13))
    return page


def _screenshot(rng: np.random.Generator, dark: bool) -> Image.Image:
    """An application window: title bar, side bar, buttons and text (light or dark theme)."""
    base, panel, ink = ((30, 31, 34), (43, 45, 48), (200, 200, 200)) if dark else \
        ((245, 246, 248), (225, 228, 233), (30, 30, 30))
    screen = Image.new("RGB", (640, 400), base)
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, 640, 28), fill=(60, 90, 160))
    draw.text((10, 7), "Viewer - " + _sentence(rng, 2), fill="white", font=_font(13))
    draw.rectangle((0, 28, 150, 400), fill=panel)
    _write_lines(draw, rng, (12, 40), 26, 10, 2, ink)
    for button in range(3):
        left = 170 + button * 110
        draw.rounded_rectangle((left, 350, left + 96, 380), 6, fill=(70, 130, 220))
        draw.text((left + 14, 357), str(rng.choice(WORDS)), fill="white", font=_font(13))
    _write_lines(draw, rng, (170, 44), 24, 12, 6, None if dark else ink)
    return screen


def _terminal(rng: np.random.Generator) -> Image.Image:
    screen = Image.new("RGB", (560, 360), "black")
    draw = ImageDraw.Draw(screen)
    for line in range(16):
        draw.text((8, 8 + line * 21), "$ " + _sentence(rng, 5), fill=(180, 255, 180),
                  font=_font(14))
    return screen


def _chart(rng: np.random.Generator, kind: str) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(4, 3), dpi=100)
    if kind == "line":
        axes.plot(np.cumsum(rng.normal(size=(100, 3)), axis=0))
    elif kind == "bar":
        axes.bar(range(8), rng.uniform(1, 10, 8), color="tab:orange")
    else:
        points = rng.normal(size=(2, 200))
        axes.scatter(points[0], points[1], s=8)
    axes.set_title(_sentence(rng, 3))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _document_images(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    for index in range(4):
        yield f"document-{index}", _document(rng, dark=False, lines=20 + 4 * index)
    yield "document-dark", _document(rng, dark=True, lines=22)
    for index in range(2):
        yield f"table-{index}", _table(rng)
        yield f"screenshot-light-{index}", _screenshot(rng, dark=False)
        yield f"screenshot-dark-{index}", _screenshot(rng, dark=True)
        yield f"terminal-{index}", _terminal(rng)
    for kind in ("line", "bar", "scatter"):
        yield f"chart-{kind}", _chart(rng, kind)


def _micrograph(rng: np.random.Generator, colour: int | None) -> Image.Image:
    """Fluorescence-like: soft bright nuclei on a dark background, one channel or grey."""
    cells = Image.new("L", (384, 384), 0)
    draw = ImageDraw.Draw(cells)
    for cx, cy in rng.integers(0, 384, (45, 2)):
        rx, ry = rng.integers(8, 20, 2)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=int(rng.integers(90, 256)))
    grey = np.asarray(cells.filter(ImageFilter.GaussianBlur(3)), np.float64)
    grey = np.clip(grey + rng.normal(0, 6, grey.shape), 0, 255).astype(np.uint8)
    if colour is None:
        return Image.fromarray(grey)
    rgb = np.zeros((*grey.shape, 3), np.uint8)
    rgb[..., colour] = grey
    return Image.fromarray(rgb)


def _stained_section(rng: np.random.Generator) -> Image.Image:
    """Histology-like (H&E): purple nuclei on a pink, fibrous background."""
    tissue = rng.normal(0, 1, (48, 48))
    background = np.asarray(Image.fromarray(to_uint8(tissue)).resize((384, 384)), np.float64)
    pink = np.stack([235 - background * 0.1, 170 - background * 0.3, 200 - background * 0.15],
                    axis=-1)
    section = Image.fromarray(np.clip(pink, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(section)
    for cx, cy in rng.integers(0, 384, (120, 2)):
        rx, ry = rng.integers(4, 10, 2)
        shade = int(rng.integers(60, 120))
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(shade, shade // 2, shade + 60))
    return section.filter(ImageFilter.GaussianBlur(1))


def _microscopy_images(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    for index in range(3):
        yield f"stained-section-{index}", _stained_section(rng)
        yield f"fluorescence-green-{index}", _micrograph(rng, colour=1)
        yield f"fluorescence-blue-{index}", _micrograph(rng, colour=2)
        yield f"fluorescence-grey-{index}", _micrograph(rng, colour=None)


def _xray_images(rng: np.random.Generator) -> Iterator[tuple[str, Image.Image]]:
    """Projection images: a chest-radiograph-like drawing and sinograms of the phantom."""

    x, y = _grid(320)
    body = ((x / 0.85) ** 2 + (y / 0.95) ** 2 < 1).astype(np.float64) * 0.55
    lungs = sum(((x - s) / 0.3) ** 2 + ((y + 0.05) / 0.6) ** 2 < 1 for s in (-0.38, 0.38))
    chest = body - 0.35 * np.asarray(lungs, np.float64)
    for rib in np.linspace(-0.6, 0.5, 7):
        chest += 0.25 * (np.abs(y - rib - 0.15 * x**2) < 0.025)
    chest = np.clip(chest + rng.normal(0, 0.02, chest.shape), 0, 1)
    blurred = Image.fromarray(to_uint8(chest, 0, 1)).filter(ImageFilter.GaussianBlur(3))
    yield "chest-radiograph-like", blurred
    yield "chest-radiograph-like-inverted", Image.eval(blurred, lambda v: 255 - v)
    # Imported by name: scikit-image is untyped, and mypy should not follow it.
    phantom = importlib.import_module("skimage.data").shepp_logan_phantom()
    transform: Any = importlib.import_module("skimage.transform")
    for count in (90, 180):
        sinogram = transform.radon(phantom, theta=np.linspace(0.0, 180.0, count), circle=True)
        yield f"phantom-sinogram-{count}", Image.fromarray(to_uint8(sinogram))


SyntheticFamily = tuple[str, Callable[[np.random.Generator], Iterator[tuple[str, Image.Image]]]]

FAMILIES: tuple[SyntheticFamily, ...] = (
    ("textures_patterns", _noise_images),
    ("textures_patterns", lambda rng: _flat_images()),
    ("textures_patterns", lambda rng: _gradient_images()),
    ("textures_patterns", _pattern_images),
    ("documents_screenshots", _document_images),
    ("microscopy", _microscopy_images),
    ("other_modalities", _xray_images),
)


def synthetic_images(seed: int) -> Iterator[OodImage]:
    rng = np.random.default_rng(seed)
    for kind, family in FAMILIES:
        for name, image in family(rng):
            yield OodImage(kind, f"synthetic-{name}", image, "synthetic (seeded)")
