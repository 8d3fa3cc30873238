"""Drop the native libraries a built bundle carries for features lesionviewer never uses (Linux).

    python3 packaging/slim_libs.py dist/lesionviewer/_internal

1. Stubs. The opencv-python-headless wheel links cv2 to FFmpeg (video I/O, with its codecs,
   OpenSSL and libdrm) and to its own OpenBLAS (cv2.solve, SVD, gemm): ~78 MB that lesionviewer
   never runs, since it reads no video and calls none of OpenCV's linear algebra
   (tests/test_bundle_opencv.py keeps the app's cv2 calls to a list checked against these
   stubs). pillow-heif's libheif links the x265 HEVC *encoder* (23 MB); the app only reads
   HEIC. The loader and Python (RTLD_NOW) still want every symbol imported from those
   libraries, so each is replaced by a tiny library of the same name and symbol versions:
   OpenCV's stubs print which function was called and abort (a video or LAPACK call fails
   loudly, never silently); x265's return 0, which libheif reads as "no HEVC encoder".
2. Qt plugins: the GTK3 platform theme (it drags the build machine's GTK, cairo and pango
   into the bundle, ~12 MB, which can clash with the workstation's own GTK; Qt falls back to
   its own style and file dialog, or the desktop portal) and the TUIO touch plugin (touch
   events over UDP: the only thing that needs QtNetwork and Kerberos here).
3. Libraries that only the removed ones needed are deleted (never one nothing needed before:
   it may be loaded by name at run time).

Needs `cc` and `readelf`; without them step 1 is skipped and says so. Safe to run twice (a stub
is recognised by a marker symbol and left alone).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

# (module that imports from the libraries, folder of the libraries, library name prefixes,
#  the functions to stub (the libraries' own API: x265 also exports a libstdc++ function that
#  libheif then binds to, which must come from libstdc++ instead), what a call does)
STUBS = [
    ("cv2/cv2*.so", "opencv_python_headless.libs",
     ("libavcodec", "libavformat", "libavutil", "libswscale", "libopenblas"),
     r"(av|avcodec|avformat|avio|sws|swscale)_\w+|cblas_\w+|[sdcz][a-z]{2,5}_", "abort"),
    ("pillow_heif.libs/libheif*.so*", "pillow_heif.libs", ("libx265",), r"x265_\w+", "return 0"),
]
QT_PLUGINS_REMOVED = ["platformthemes/libqgtk3.so", "generic/libqtuiotouchplugin.so"]
MARK = "lesionviewer_stub_library"  # a symbol every stub defines, to recognise one


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def needed(lib: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", readelf("-d", str(lib)))


def soname(lib: Path) -> str:
    found = re.search(r"\(SONAME\)\s+Library soname: \[(.+?)\]", readelf("-d", str(lib)))
    return found.group(1) if found else lib.name


def dynsyms(lib: Path) -> list[tuple[str, str, str]]:
    """(type, section index, name@version) of each dynamic symbol."""
    rows = []
    for line in readelf("--dyn-syms", str(lib)).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].endswith(":") and parts[0][:-1].isdigit():
            rows.append((parts[3], parts[6], parts[7]))
    return rows


def imports_from(module: Path, lib: Path, api: str) -> dict[str, str]:
    """The functions named like `api` (a regular expression) that `module` leaves undefined and
    `lib` defines: name -> version ('' if none)."""
    defined = {}  # (name, version) -> type; a symbol `module` wants from another library with
    for kind, ndx, name in dynsyms(lib):  # the same name (libstdc++'s, say) must not match
        if ndx != "UND":
            base, _, version = name.partition("@")
            defined[base, version.lstrip("@")] = kind
    wanted = {}
    for _, ndx, name in dynsyms(module):
        base, _, version = name.partition("@")
        version = version.lstrip("@")
        if ndx == "UND" and (base, version) in defined and re.fullmatch(api, base):
            if defined[base, version] != "FUNC":
                raise SystemExit(f"slim_libs: {module.name} imports the data symbol {base} from "
                                 f"{lib.name}; cannot stub it")
            wanted[base] = version
    return wanted


def build_stub(lib: Path, symbols: dict[str, str], on_call: str, work: Path) -> Path:
    source = ["#include <stdio.h>", "#include <stdlib.h>", f"int {MARK} = 1;"]
    if on_call == "abort":
        source += [
            "static void refuse(const char *name) {",
            f'  fprintf(stderr, "lesionviewer: %s from {lib.name} was called, but this bundle leaves '
            'that library out (see docs/installer.md)\\n", name);',
            "  abort();", "}"]
        source += [f'void {name}(void) {{ refuse("{name}"); }}' for name in sorted(symbols)]
    else:
        source += [f"long {name}(void) {{ return 0; }}" for name in sorted(symbols)]
    by_version = defaultdict(list)
    for name, version in symbols.items():
        by_version[version].append(name)
    by_version[next(iter(sorted(by_version)), "")].append(MARK)
    script = [f"{version} {{ global: {' '.join(n + ';' for n in sorted(names))} local: *; }};"
              for version, names in sorted(by_version.items())]
    (work / "stub.c").write_text("\n".join(source) + "\n")
    (work / "stub.map").write_text("\n".join(script) + "\n")
    out = work / lib.name
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-s", "-o", str(out), str(work / "stub.c"),
                    f"-Wl,-soname,{soname(lib)}", f"-Wl,--version-script={work / 'stub.map'}"],
                   check=True)
    return out


def is_stub(lib: Path) -> bool:
    return any(name.split("@")[0] == MARK for _, ndx, name in dynsyms(lib) if ndx != "UND")


def shared_objects(internal: Path) -> list[Path]:
    return [p for p in internal.rglob("*.so*") if p.is_file() and not p.is_symlink()]


def wanted_names(internal: Path) -> set[str]:
    return {name for f in shared_objects(internal) for name in needed(f)}


def stub_libraries(internal: Path) -> None:
    if not (shutil.which("cc") and shutil.which("readelf")):
        print("slim_libs: no cc or readelf: OpenCV's FFmpeg and OpenBLAS and x265 stay (~100 MB)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for module_glob, folder, prefixes, api, on_call in STUBS:
            modules = sorted(internal.glob(module_glob))
            if not modules or not (internal / folder).is_dir():
                print(f"slim_libs: no {module_glob} or {folder}: nothing to stub there")
                continue
            for lib in sorted((internal / folder).iterdir()):
                if lib.name.startswith(prefixes) and not is_stub(lib):
                    symbols = imports_from(modules[0], lib, api)
                    size = lib.stat().st_size
                    shutil.copyfile(build_stub(lib, symbols, on_call, Path(tmp)), lib)
                    print(f"slim_libs: {folder}/{lib.name} ({size / 1e6:.1f} MB): "
                          f"{len(symbols)} functions stubbed ({on_call})")


def main(internal: Path) -> int:
    if not (internal / "base_library.zip").is_file():
        raise SystemExit(f"slim_libs: {internal} is not a bundle's _internal folder")
    before_bytes = sum(p.stat().st_size for p in shared_objects(internal))
    wanted_before = wanted_names(internal)
    stub_libraries(internal)
    for plugin in QT_PLUGINS_REMOVED:
        path = internal / "PySide6" / "Qt" / "plugins" / plugin
        if path.exists():
            path.unlink()
            print(f"slim_libs: Qt plugin {plugin} removed")
    while True:  # only what the removed files needed, transitively
        wanted = wanted_names(internal)
        orphans = [p for p in shared_objects(internal)
                   if p.name in wanted_before and p.name not in wanted and soname(p) not in wanted]
        if not orphans:
            break
        for p in orphans:
            print(f"slim_libs: {p.relative_to(internal)} removed (only removed libraries needed it)")
            p.unlink()
    after_bytes = sum(p.stat().st_size for p in shared_objects(internal))
    print(f"slim_libs: shared libraries {before_bytes / 1e6:.0f} MB -> {after_bytes / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist/lesionviewer/_internal")))
