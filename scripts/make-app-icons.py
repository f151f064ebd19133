"""Draws the app's icons (tastebud/app/static/icons): a leaf-green tile with a white note.
Run once when the design changes: `python scripts/make-app-icons.py`."""

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "tastebud" / "app" / "static" / "icons"
GREEN = (31, 111, 92, 255)
WHITE = (255, 255, 255, 255)


def icon(size: int, *, maskable: bool) -> Image.Image:
    image = Image.new("RGBA", (size, size), GREEN if maskable else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if not maskable:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=GREEN)
    # A maskable icon keeps its drawing inside the central 80% safe zone.
    scale = size * (0.6 if maskable else 0.75)
    left = (size - scale) / 2
    top = (size - scale) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return left + x * scale, top + y * scale

    head = 0.16
    for cx in (0.3, 0.72):
        x, y = at(cx, 0.78)
        r = head * scale
        draw.ellipse((x - r * 1.15, y - r, x + r * 1.15, y + r), fill=WHITE)
        stem_x = x + r * 1.15 - scale * 0.05
        draw.rectangle((stem_x, top + 0.2 * scale, stem_x + scale * 0.05, y), fill=WHITE)
    draw.polygon([at(0.41, 0.14), at(0.88, 0.02), at(0.88, 0.2), at(0.41, 0.32)], fill=WHITE)
    return image


OUT.mkdir(parents=True, exist_ok=True)
icon(192, maskable=False).save(OUT / "icon-192.png")
icon(512, maskable=False).save(OUT / "icon-512.png")
icon(512, maskable=True).save(OUT / "icon-maskable-512.png")
print(f"wrote icons to {OUT}")
