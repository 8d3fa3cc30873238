"""Make the bad-input corpus: files a clinic's disk really holds, built at test time (no binaries
checked in). ``python tests/data/make_bad_corpus.py OUT_DIR`` writes it for a look by hand.

:func:`make_corpus` writes ``<root>/corpus`` (every kind of odd file, one or a few of each, in
one folder tree) and ``<root>/many`` (500 entries, photos mixed with junk), and returns one
:class:`BadInput` per entry saying what it is and what lesionviewer must do with it:

- ``opens``: decoded to an upright RGB photo of ``size`` (width, height) and analysed;
- ``refused``: one sentence naming the file, mentioning ``reason``; nothing written for it;
- ``not listed``: a folder scan passes over it (not a photo's name, a mask, hidden, a folder).
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OPENS, REFUSED, NOT_LISTED = "opens", "refused", "not listed"
MANY = 500


@dataclasses.dataclass(frozen=True)
class BadInput:
    name: str  # POSIX path relative to the corpus root ("corpus/...", "many/...")
    what: str  # for the table in docs/bad_inputs.md
    expect: str  # OPENS, REFUSED or NOT_LISTED
    reason: str = ""  # REFUSED: a word the message must hold
    size: tuple[int, int] | None = None  # OPENS: (width, height) after orientation
    group: str = ""  # items summarised as one row in the table share a group


def photo(height: int = 36, width: int = 48, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8 RGB: skin with a brown disk and some noise (deterministic)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    disk = np.hypot(yy - height / 2, xx - width / 2) < min(height, width) / 3
    rgb = np.where(disk[..., None], (95, 55, 45), (205, 160, 140)).astype(np.float64)
    return np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    data = bytearray(data)
    frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, height, width)
    return bytes(data)


def _patch_png_size(data: bytes, width: int, height: int) -> bytes:
    data = bytearray(data)
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # IHDR's CRC stays valid
    return bytes(data)


def _png16(rgb16: np.ndarray) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".png", rgb16[..., ::-1] if rgb16.ndim == 3 else rgb16)
    assert ok
    return buffer.tobytes()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_corpus(root: str | os.PathLike, many: int = MANY) -> list[BadInput]:
    """Write the corpus under ``root`` (created) and return what each entry is (see above)."""
    import tifffile

    root = Path(root)
    c = root / "corpus"
    items: list[BadInput] = []
    rgb = photo()
    h, w = rgb.shape[:2]

    def add(name, data, what, expect, reason="", size=None, group=""):
        if data is not None:
            _write(root / name, data)
        items.append(BadInput(name, what, expect, reason, size, group))

    good = _jpeg(rgb)
    add("corpus/plain.jpg", good, "an ordinary JPEG (the control)", OPENS, size=(w, h))
    # --- empty, cut short, not an image at all
    add("corpus/empty.jpg", b"", "zero bytes", REFUSED, "empty")
    add("corpus/truncated.jpg", good[: len(good) * 6 // 10], "JPEG cut at 60 %", REFUSED, "damaged")
    add("corpus/truncated.png", _png(Image.fromarray(rgb))[:400], "PNG cut short", REFUSED, "damaged")
    add("corpus/truncated16.png", _png16(rgb.astype(np.uint16) * 257)[:500], "16-bit PNG cut short",
        REFUSED, "damaged")
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, rgb, photometric="rgb")
    add("corpus/truncated.tif", tiff.getvalue()[:1000], "TIFF cut short", REFUSED, "damaged")
    bad_crc = bytearray(_png(Image.fromarray(rgb)))
    bad_crc[60] ^= 0xFF
    add("corpus/bad-crc.png", bytes(bad_crc), "PNG with a flipped byte (CRC fails)", REFUSED, "damaged")
    add("corpus/notes.jpg", b"Patient notes, not a photo.\n" * 20, "text named .jpg", REFUSED,
        "not an image")
    add("corpus/garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
        "JPEG signature followed by garbage", REFUSED, "damaged")
    add("corpus/claims-110MP.jpg", _patch_jpeg_size(good, 10000, 11000),
        "JPEG whose header claims 10000 x 11000 (1 KB of data)", REFUSED, "damaged")
    # --- sizes
    add("corpus/bomb.png", _patch_png_size(_png(Image.new("L", (64, 64))), 100_000, 100_000),
        "decompression bomb: PNG header claims 100000 x 100000", REFUSED, "too large")
    add("corpus/huge-30000.jpg", _patch_jpeg_size(good, 30000, 30000),
        "JPEG header claims 30000 x 30000", REFUSED, "too large")
    add("corpus/one-pixel.png", _png(Image.new("RGB", (1, 1), (120, 80, 60))), "1 x 1 pixel", OPENS,
        size=(1, 1))
    add("corpus/strip.png", _png(Image.fromarray(photo(1, 300))), "1 x 300 strip", OPENS, size=(300, 1))
    # --- layouts that must decode to the same kind of RGB photo
    add("corpus/wrong-ext-png.jpg", _png(Image.fromarray(rgb)), "PNG named .jpg", OPENS, size=(w, h),
        group="wrong extension")
    add("corpus/wrong-ext-jpeg.png", good, "JPEG named .png", OPENS, size=(w, h), group="wrong extension")
    add("corpus/wrong-ext-tiff.jpeg", tiff.getvalue(), "TIFF named .jpeg", OPENS, size=(w, h),
        group="wrong extension")
    add("corpus/rgb16.png", _png16(rgb.astype(np.uint16) * 257), "16-bit RGB PNG", OPENS, size=(w, h))
    add("corpus/grey16.png", _png16(rgb[..., 0].astype(np.uint16) * 257), "16-bit greyscale PNG", OPENS,
        size=(w, h))
    tiff16 = io.BytesIO()
    tifffile.imwrite(tiff16, rgb.astype(np.uint16) * 257, photometric="rgb")
    add("corpus/rgb16.tif", tiff16.getvalue(), "16-bit RGB TIFF", OPENS, size=(w, h))
    add("corpus/cmyk.jpg", _cmyk_jpeg(rgb), "CMYK JPEG", OPENS, size=(w, h))
    cmyk_tiff = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk_tiff, "TIFF")
    add("corpus/cmyk.tif", cmyk_tiff.getvalue(), "CMYK TIFF", OPENS, size=(w, h))
    rgba = np.dstack([rgb, np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)])
    add("corpus/alpha.png", _png(Image.fromarray(rgba, "RGBA")), "RGBA PNG (alpha ramp)", OPENS,
        size=(w, h))
    add("corpus/grey.jpg", _jpeg(rgb[..., 0]), "greyscale JPEG", OPENS, size=(w, h))
    add("corpus/palette.png", _png(Image.fromarray(rgb).convert("P")), "palette PNG", OPENS, size=(w, h))
    add("corpus/palette-transparent.png", _png(Image.fromarray(rgb).convert("P"), transparency=0),
        "palette PNG with a transparent colour", OPENS, size=(w, h))
    add("corpus/progressive.jpg", _jpeg(rgb, progressive=True), "progressive JPEG", OPENS, size=(w, h))
    add("corpus/bilevel.tif", _tiff_bilevel(rgb), "1-bit TIFF", OPENS, size=(w, h))
    add("corpus/photo.heic", _heic(rgb), "HEIC", OPENS, size=(w, h))
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        size = (h, w) if orientation >= 5 else (w, h)
        add(f"corpus/exif-{orientation}.jpg", _jpeg(rgb, exif=exif.tobytes()),
            f"EXIF orientation {orientation}", OPENS, size=size, group="EXIF orientations 2-8")
    frames = [Image.fromarray(photo(seed=s)) for s in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100)
    add("corpus/animated.gif", gif.getvalue(), "animated GIF (3 frames; .gif is not a photo suffix)",
        NOT_LISTED)
    webp = io.BytesIO()
    frames[0].save(webp, "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    add("corpus/animated.webp", webp.getvalue(), "animated WebP (3 frames): the first is used", OPENS,
        size=(w, h))
    pages = io.BytesIO()
    with tifffile.TiffWriter(pages) as writer:
        for s in range(3):
            writer.write(photo(seed=s), photometric="rgb")
    add("corpus/pages.tif", pages.getvalue(), "multi-page TIFF (3 pages): the first is used", OPENS,
        size=(w, h))
    # --- names and paths
    add("corpus/läsion 日本.jpg", good, "Unicode and a space in the name", OPENS, size=(w, h),
        group="unicode/space/quote names")
    add("corpus/it's \"quoted\" $HOME.jpg", good, "quotes and a $ in the name", OPENS, size=(w, h),
        group="unicode/space/quote names")
    add("corpus/sub folder/ünïcode dir/inner.jpg", good, "Unicode and spaces in the folders", OPENS,
        size=(w, h), group="unicode/space/quote names")
    add("corpus/" + "n" * 240 + ".jpg", good, "a 244-character name", OPENS, size=(w, h))
    add("corpus/plain_mask.png", _png(Image.new("L", (w, h))), "a reference mask beside a photo",
        NOT_LISTED)
    add("corpus/.hidden.jpg", good, "a hidden file", NOT_LISTED)
    add("corpus/folder.jpg/inside.jpg", good, "a folder named folder.jpg (the photo in it opens)", OPENS,
        size=(w, h))
    add("corpus/folder.jpg", None, "a folder named like a photo", NOT_LISTED)
    # --- links and special files
    os.symlink("loop_b.jpg", c / "loop_a.jpg")
    os.symlink("loop_a.jpg", c / "loop_b.jpg")
    add("corpus/loop_a.jpg", None, "symlink loop (loop_a.jpg -> loop_b.jpg -> loop_a.jpg)", REFUSED,
        "link loop", group="symlink loop")
    add("corpus/loop_b.jpg", None, "symlink loop, the other end", REFUSED, "link loop", group="symlink loop")
    os.symlink("gone.jpg", c / "dangling.jpg")
    add("corpus/dangling.jpg", None, "link to a file that does not exist", REFUSED, "does not exist")
    os.symlink(".", c / "self-folder")
    add("corpus/self-folder", None, "link to its own folder (not followed)", NOT_LISTED)
    os.symlink("plain.jpg", c / "link-to-plain.jpg")
    add("corpus/link-to-plain.jpg", None, "link to a good photo", OPENS, size=(w, h))
    if hasattr(os, "mkfifo"):
        os.mkfifo(c / "pipe.jpg")
        add("corpus/pipe.jpg", None, "FIFO named .jpg (opening it would block)", REFUSED, "named pipe")
    add("corpus/read-only/inside.jpg", good, "a photo in a read-only folder", OPENS, size=(w, h))
    (c / "read-only").chmod(0o555)
    items += _many(root / "many", many)
    return items


def _many(folder: Path, count: int) -> list[BadInput]:
    """``count`` entries: mostly small photos, with junk mixed in at fixed places."""
    folder.mkdir(parents=True)
    good = _jpeg(photo(24, 32, 7))
    png = _png(Image.fromarray(photo(24, 32, 8)))
    items = []
    for i in range(count):
        kind = i % 10
        if kind == 3:
            name, data, expect, reason = f"junk{i:03d}.txt", b"not a photo", NOT_LISTED, ""
        elif kind == 5:
            name, data, expect, reason = f"empty{i:03d}.jpg", b"", REFUSED, "empty"
        elif kind == 7:
            name, data, expect, reason = f"text{i:03d}.png", b"hello", REFUSED, "not an image"
        elif kind == 9:
            name, data, expect, reason = f"case{i:03d}_mask.png", png, NOT_LISTED, ""
        else:
            name, data, expect, reason = f"case{i:03d}.{'png' if kind == 1 else 'jpg'}", \
                png if kind == 1 else good, OPENS, ""
        (folder / name).write_bytes(data)
        items.append(BadInput(f"many/{name}", "a folder of 500 entries mixed with junk", expect, reason,
                              (32, 24) if expect == OPENS else None, group="500-entry folder"))
    return items


def _cmyk_jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _tiff_bilevel(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb[..., 0] > 128).save(buffer, "TIFF")
    return buffer.getvalue()


def _heic(rgb: np.ndarray) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "HEIF")
    return buffer.getvalue()


def restore_permissions(root: str | os.PathLike) -> None:
    """Make the read-only folder writable again (so pytest can delete its tmp_path)."""
    folder = Path(root) / "corpus" / "read-only"
    if folder.is_dir():
        folder.chmod(0o755)


def io_outcomes(root: str | os.PathLike, items: list[BadInput]) -> dict[str, tuple[str, str]]:
    """What lesionviewer's io layer does with each entry: ``{name: (outcome, message)}``, the
    outcome being OPENS (message "W x H"), REFUSED (message: the one sentence) or NOT_LISTED.
    Anything else (an exception other than ImageLoadError) is left to propagate."""
    from lesionviewer.io.images import ImageLoadError, find_images, load_image

    root = Path(root)
    listed = {p.relative_to(root).as_posix() for folder in ("corpus", "many")
              for p in find_images(root / folder)}
    outcomes = {}
    for item in items:
        if item.name not in listed:
            outcomes[item.name] = (NOT_LISTED, "")
            continue
        try:
            image = load_image(root / item.name)
        except ImageLoadError as exc:
            outcomes[item.name] = (REFUSED, str(exc))
        else:
            outcomes[item.name] = (OPENS, f"{image.width} x {image.height}")
    return outcomes


def render_table(items: list[BadInput], outcomes: dict[str, tuple[str, str]]) -> str:
    """The Markdown table of docs/bad_inputs.md: one row per entry (one per group of the
    500-entry folder), what was expected, what the io layer did, and the message."""
    rows, handled, done_groups = [], 0, set()
    for item in items:
        handled += outcomes[item.name][0] == item.expect
    for item in items:
        if item.name.startswith("many/"):
            kind = _kind_of(item)
            if kind in done_groups:
                continue
            done_groups.add(kind)
            same = [i for i in items if i.name.startswith("many/") and _kind_of(i) == kind]
            what = f"500-entry folder: {len(same)} x {kind}"
            example = outcomes[same[0].name]
            got = {outcomes[i.name][0] for i in same}
            outcome = got.pop() if len(got) == 1 else "mixed: " + ", ".join(sorted(got))
            rows.append((what, f"`{same[0].name}` ...", item.expect, outcome, example[1]))
            continue
        outcome, message = outcomes[item.name]
        name = item.name if len(item.name) < 60 else item.name[:40] + "...(244 chars).jpg"
        rows.append((item.what, f"`{name}`", item.expect, outcome, message))
    lines = [
        f"**{len(items)} entries tried, {handled} handled as expected** "
        f"({sum(1 for i in items if not i.name.startswith('many/'))} in `corpus/`, "
        f"{sum(1 for i in items if i.name.startswith('many/'))} in `many/`).",
        "",
        "| what | entry | expected | io layer gives | message |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"


def _kind_of(item: BadInput) -> str:
    name = item.name.rsplit("/", 1)[-1]
    if item.expect == OPENS:
        return "small photos (JPEG and PNG)"
    if name.startswith("junk"):
        return "`.txt` files"
    if "_mask" in name:
        return "reference masks"
    if name.startswith("empty"):
        return "empty `.jpg` files"
    return "text files named `.png`"


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-corpus")
    corpus = make_corpus(out)
    print(render_table(corpus, io_outcomes(out, corpus)))
