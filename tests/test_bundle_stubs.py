"""The bundle replaces OpenCV's FFmpeg and OpenBLAS with stubs that abort, and pillow-heif's
x265 encoder with one that says "no encoder" (packaging/slim_libs.py, ~100 MB): lesionviewer
must call only OpenCV functions that need neither, and still read HEIC. The first test keeps
the app's cv2 calls to the checked list below; the second runs every one of them against a
stubbed copy of the installed cv2 (a stub reached aborts the child process) and shows a stub
still stops video I/O loudly; the third reads a HEIC photo with a stubbed pillow-heif.

A new cv2 function in lesionviewer: add it to CHECKED with a call in EXERCISE; if it then
aborts, it needs OpenCV's video or linear algebra and the bundle must keep those libraries."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CODE = [p for p in (ROOT / "lesionviewer").rglob("*.py") if "cluster" not in p.parts]

# Each checked function with a call the stubbed cv2 must survive (img: 64x64 uint8 square,
# bgr: 64x64x3 uint8, f: float32 map, box: int32 contour).
EXERCISE = {
    "LUT": "cv2.LUT(img, np.arange(256, dtype=np.uint8)[::-1].copy())",
    "GaussianBlur": "cv2.GaussianBlur(f, (5, 5), 1.5)",
    "applyColorMap": "cv2.applyColorMap(img, cv2.COLORMAP_VIRIDIS)",
    "arcLength": "cv2.arcLength(box, True)",
    "connectedComponents": "cv2.connectedComponents(img)",
    "connectedComponentsWithStats": "cv2.connectedComponentsWithStats(img, connectivity=8)",
    "convexHull": "cv2.convexHull(box)",
    "cvtColor": "cv2.cvtColor(bgr, cv2.COLOR_RGB2GRAY), cv2.cvtColor(bgr.astype(np.float32) / 255, "
                "cv2.COLOR_RGB2LAB), cv2.cvtColor(bgr, cv2.COLOR_RGB2BGR)",
    "dilate": "cv2.dilate(img, kernel)",
    "distanceTransform": "cv2.distanceTransform(img, cv2.DIST_L2, 5), cv2.distanceTransform(img, cv2.DIST_L2, 3)",
    "drawContours": "cv2.drawContours(bgr.copy(), [box], -1, (255, 0, 0), 2)",
    "erode": "cv2.erode(img, kernel)",
    "fillPoly": "cv2.fillPoly(img.copy(), [box], 1)",
    "findContours": "cv2.findContours(img, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)",
    "findNonZero": "cv2.findNonZero(img)",
    "getStructuringElement": "cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))",
    "imdecode": "[cv2.imdecode(cv2.imencode(ext, bgr)[1], flag) for ext in ('.png', '.jpg', '.tif', "
                "'.bmp', '.webp') for flag in (cv2.IMREAD_COLOR, cv2.IMREAD_GRAYSCALE, cv2.IMREAD_UNCHANGED)]",
    "imencode": "cv2.imencode('.png', img, [cv2.IMWRITE_PNG_BILEVEL, 1]), "
                "cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])",
    "imread": "cv2.imwrite(str(out / 'a.png'), bgr) and cv2.imread(str(out / 'a.png'), cv2.IMREAD_COLOR)",
    "imwrite": "cv2.imwrite(str(out / 'b.jpg'), bgr)",
    "integral": "cv2.integral(img)",
    "morphologyEx": "cv2.morphologyEx(img, cv2.MORPH_CLOSE, kernel)",
    "putText": "cv2.putText(bgr.copy(), 'ISIC_0000068', (2, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)",
    "remap": "cv2.remap(f, *np.meshgrid(np.arange(64, dtype=np.float32) * 0.9, np.arange(64, dtype=np.float32)), "
             "cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)",
    "warpAffine": "cv2.warpAffine(img, cv2.getRotationMatrix2D((32, 32), 15, 1.1), (64, 64), "
                  "flags=cv2.INTER_NEAREST), cv2.warpAffine(f, np.float32([[1, 0.1, 2], [0, 1, -3]]), (64, 64))",
    "resize": "[cv2.resize(f, (37, 23), interpolation=i) for i in (cv2.INTER_AREA, cv2.INTER_LINEAR, "
              "cv2.INTER_NEAREST, cv2.INTER_CUBIC)]",
}
CHECKED = set(EXERCISE)


def cv2_functions_used() -> dict[str, set[str]]:
    """Callable cv2 attributes named anywhere in the shipped code -> the files naming them."""
    used: dict[str, set[str]] = {}
    for path in SHIPPED_CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "cv2":
                for alias in node.names:
                    used.setdefault(alias.name, set()).add(path.name)
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "cv2" and callable(getattr(cv2, node.attr, None))):
                used.setdefault(node.attr, set()).add(path.name)
    return used


def test_the_app_calls_only_opencv_functions_checked_against_the_stubs():
    used = cv2_functions_used()
    assert used, "no cv2 use found: the scan is broken"
    unchecked = {name: sorted(files) for name, files in used.items() if name not in CHECKED}
    assert not unchecked, f"cv2 functions not checked against the bundle's stubs: {unchecked}"


needs_cc = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("cc")
                              or not shutil.which("readelf"), reason="the stubs are built on Linux with cc")


def slim(internal: Path) -> None:
    """Run packaging/slim_libs.py on a folder laid out like the bundle's _internal."""
    (internal / "base_library.zip").touch()
    built = subprocess.run([sys.executable, str(ROOT / "packaging" / "slim_libs.py"), str(internal)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "functions stubbed" in built.stdout


@pytest.mark.slow
@needs_cc
def test_every_checked_function_runs_on_a_stubbed_opencv_and_video_io_aborts(tmp_path):
    site = Path(cv2.__file__).resolve().parents[1]
    libs = site / "opencv_python_headless.libs"
    if not libs.is_dir():
        pytest.skip("not the opencv-python-headless wheel layout")
    shutil.copytree(site / "cv2", tmp_path / "cv2")
    shutil.copytree(libs, tmp_path / libs.name)
    slim(tmp_path)
    assert next((tmp_path / libs.name).glob("libavcodec*")).stat().st_size < 100_000  # a stub now

    calls = "\n".join(f"{name}_ = {call}\nprint('ran', {name!r})" for name, call in sorted(EXERCISE.items()))
    script = textwrap.dedent("""\
        import sys
        from pathlib import Path
        import numpy as np
        import cv2
        assert Path(cv2.__file__).resolve().parents[1] == Path(sys.argv[1]).resolve(), cv2.__file__
        out = Path(sys.argv[1])
        img = np.zeros((64, 64), np.uint8); img[16:48, 20:44] = 1
        bgr = np.dstack([img * 200, img * 100, img * 50]).astype(np.uint8)
        f = img.astype(np.float32)
        box = np.array([[20, 16], [43, 16], [43, 47], [20, 47]], np.int32).reshape(-1, 1, 2)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        """) + calls + "\nprint('all ran')\n"
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env)
    assert ran.returncode == 0 and "all ran" in ran.stdout, ran.stdout[-2000:] + ran.stderr[-2000:]

    video = subprocess.run([sys.executable, "-c", "import cv2; cv2.VideoCapture('x.mp4')"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert video.returncode != 0
    assert "this bundle leaves that library out" in video.stderr and "libavcodec" in video.stderr


@pytest.mark.slow
@needs_cc
def test_heic_photos_still_open_with_the_x265_encoder_stubbed(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    site = Path(pillow_heif.__file__).resolve().parents[1]
    if not (site / "pillow_heif.libs").is_dir():
        pytest.skip("not the pillow-heif wheel layout")
    shutil.copytree(site / "pillow_heif", tmp_path / "pillow_heif")
    shutil.copytree(site / "pillow_heif.libs", tmp_path / "pillow_heif.libs")
    slim(tmp_path)
    assert next((tmp_path / "pillow_heif.libs").glob("libx265*")).stat().st_size < 100_000

    pillow_heif.register_heif_opener()  # the real encoder, in this process, writes the photo
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.heic", quality=95)
    script = textwrap.dedent("""\
        import sys
        from pathlib import Path
        import numpy as np
        import pillow_heif
        from PIL import Image
        assert Path(pillow_heif.__file__).resolve().parents[1] == Path(sys.argv[1]).resolve()
        pillow_heif.register_heif_opener()
        with Image.open(Path(sys.argv[1]) / "photo.heic") as im:
            print(im.size, float(np.asarray(im.convert("RGB")).mean()))
        """)
    ran = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr[-2000:]
    size, mean = ran.stdout.split(")")
    assert size == "(64, 48" and abs(float(mean) - pixels.mean()) < 10
