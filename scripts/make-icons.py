#!/usr/bin/env python3
"""Draws Kaunter's app icon (a counter under a teal tile) and writes the PNG, ICO and ICNS files
Tauri bundles, with the standard library only. Run from the repository root."""
import struct, zlib, pathlib

OUT = pathlib.Path("src-tauri/icons")

def pixel(x, y, n):
    u, v = x / n, y / n
    r = 0.18  # corner radius of the tile, as a fraction
    cx = min(max(u, r), 1 - r); cy = min(max(v, r), 1 - r)
    if (u - cx) ** 2 + (v - cy) ** 2 > r * r:
        return (0, 0, 0, 0)
    teal = (13, 115, 119, 255)
    white = (250, 250, 247, 255)
    if 0.22 <= u <= 0.78 and 0.56 <= v <= 0.64:   # counter top
        return white
    if 0.28 <= u <= 0.72 and 0.64 < v <= 0.80:    # counter front
        return (white if not (0.46 <= u <= 0.54) else teal)
    if (u - 0.5) ** 2 + (v - 0.36) ** 2 <= 0.11 ** 2:  # the person at the desk
        return white
    return teal

def png(n):
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y, n)) for x in range(n)) for y in range(n))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))

def ico(images):
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for n, data in images:
        entries += struct.pack("<BBBBHHII", n % 256, n % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data); blobs += data
    return header + entries + blobs

def icns(images):
    body = b"".join(kind + struct.pack(">I", 8 + len(data)) + data for kind, data in images)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body

OUT.mkdir(parents=True, exist_ok=True)
sizes = {n: png(n) for n in (16, 32, 64, 128, 256, 512)}
(OUT / "32x32.png").write_bytes(sizes[32])
(OUT / "128x128.png").write_bytes(sizes[128])
(OUT / "128x128@2x.png").write_bytes(sizes[256])
(OUT / "icon.png").write_bytes(sizes[512])
(OUT / "icon.ico").write_bytes(ico([(16, sizes[16]), (32, sizes[32]), (64, sizes[64]), (256, sizes[256])]))
(OUT / "icon.icns").write_bytes(icns([(b"icp4", sizes[16]), (b"icp5", sizes[32]), (b"ic07", sizes[128]), (b"ic08", sizes[256]), (b"ic09", sizes[512])]))
print("icons written to", OUT)
