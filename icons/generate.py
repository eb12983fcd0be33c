#!/usr/bin/env python3
"""Generate the Roomler app icons with the Python standard library only.

The logo is a blue rounded square with a white "R" built from a stem, a bowl
with a rounded right side, and a slanted leg. Each size is drawn from the
shape itself, not scaled down from a larger image, with supersampling for
smooth edges.

Outputs, next to this script:
  icon.png (512x512), 32x32.png, 128x128.png, 128x128@2x.png (256x256),
  icon.ico (PNG entries of 16 to 256 px), icon.icns (PNG entries of 16 to 512 px).

Run: python3 icons/generate.py
"""

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent

# Colours of the background gradient, top to bottom, and of the letter.
TOP = (33, 150, 243)
BOTTOM = (21, 101, 192)
LETTER = (255, 255, 255)

# The background square in unit coordinates: inset so the icon sits on the
# usual grid of desktop icons, and its corner radius.
INSET = 0.06
CORNER = 0.19


def rounded_rect(x, y, left, top, right, bottom, radius):
    """Return whether (x, y) lies inside a rectangle with corners rounded by radius."""
    if x < left or x > right or y < top or y > bottom:
        return False
    cx = min(max(x, left + radius), right - radius)
    cy = min(max(y, top + radius), bottom - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def right_rounded_rect(x, y, left, top, right, bottom, radius):
    """Return whether (x, y) lies inside a rectangle rounded on its right side only."""
    if x < left or x > right or y < top or y > bottom:
        return False
    if x <= right - radius:
        return True
    cy = min(max(y, top + radius), bottom - radius)
    return (x - (right - radius)) ** 2 + (y - cy) ** 2 <= radius**2


def in_letter(x, y):
    """Return whether (x, y) lies on the "R"."""
    stem = 0.31 <= x <= 0.43 and 0.24 <= y <= 0.76
    bowl = right_rounded_rect(x, y, 0.31, 0.24, 0.68, 0.55, 0.155) and not (
        right_rounded_rect(x, y, 0.43, 0.35, 0.565, 0.44, 0.045)
    )
    # The leg is a parallelogram from the bowl's lower edge to the baseline, so
    # its foot is flat like the stem's.
    leg_left = 0.445 + (y - 0.50) * (0.585 - 0.445) / (0.76 - 0.50)
    leg = 0.50 <= y <= 0.76 and leg_left <= x <= leg_left + 0.13
    return stem or bowl or leg


def sample(x, y):
    """Return the colour at (x, y) in unit coordinates as (r, g, b), or None outside the icon."""
    if not rounded_rect(x, y, INSET, INSET, 1 - INSET, 1 - INSET, CORNER):
        return None
    if in_letter(x, y):
        return LETTER
    t = (y - INSET) / (1 - 2 * INSET)
    return tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM))


def render(size):
    """Render the logo at size x size pixels as RGBA rows."""
    # Small sizes need more samples per pixel for clean edges. Large ones have
    # enough pixels, and 16 samples each would be slow in pure Python.
    grid = 4 if size <= 256 else 2
    samples = grid * grid
    rows = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            red = green = blue = covered = 0
            for sy in range(grid):
                for sx in range(grid):
                    colour = sample(
                        (px + (sx + 0.5) / grid) / size,
                        (py + (sy + 0.5) / grid) / size,
                    )
                    if colour is not None:
                        red += colour[0]
                        green += colour[1]
                        blue += colour[2]
                        covered += 1
            if covered:
                # Colours are averaged over the covered samples only, so edges
                # fade out in alpha instead of darkening.
                row += bytes(
                    (
                        round(red / covered),
                        round(green / covered),
                        round(blue / covered),
                        round(255 * covered / samples),
                    )
                )
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return rows


def png(rows):
    """Encode RGBA rows as a PNG file (colour type 6, 8 bits per channel)."""
    height = len(rows)
    width = len(rows[0]) // 4

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    # Filter type 0 (none) before each row.
    raw = b"".join(b"\0" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def ico(images):
    """Build a Windows .ico whose entries are PNG files, keyed by size in pixels."""
    sizes = sorted(images)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    directory = b""
    data = b""
    for size in sizes:
        encoded = images[size]
        # A width or height of 0 in the directory means 256.
        side = 0 if size >= 256 else size
        directory += struct.pack(
            "<BBBBHHII", side, side, 0, 0, 1, 32, len(encoded), offset + len(data)
        )
        data += encoded
    return header + directory + data


# The PNG-based icns element types and the pixel size of each.
ICNS_TYPES = [
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
]


def icns(images):
    """Build a macOS .icns whose elements are PNG files."""
    body = b""
    for kind, size in ICNS_TYPES:
        encoded = images[size]
        body += kind + struct.pack(">I", 8 + len(encoded)) + encoded
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main():
    sizes = sorted({16, 24, 32, 48, 64, 128, 256, 512} | {s for _, s in ICNS_TYPES})
    images = {}
    for size in sizes:
        images[size] = png(render(size))
        print(f"rendered {size}x{size}")

    (OUT / "icon.png").write_bytes(images[512])
    (OUT / "32x32.png").write_bytes(images[32])
    (OUT / "128x128.png").write_bytes(images[128])
    (OUT / "128x128@2x.png").write_bytes(images[256])
    ico_sizes = [16, 24, 32, 48, 64, 128, 256]
    (OUT / "icon.ico").write_bytes(ico({size: images[size] for size in ico_sizes}))
    (OUT / "icon.icns").write_bytes(icns(images))
    print(f"wrote the icons to {OUT}")


if __name__ == "__main__":
    main()
