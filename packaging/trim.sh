#!/usr/bin/env bash
# Trim a built one-folder bundle (dist/lesionviewer) of what a clinical workstation never runs.
# Called by packaging/build.sh after PyInstaller; safe to run twice.   bash packaging/trim.sh DIR
set -euo pipefail
BUNDLE=${1:-dist/lesionviewer}
I=$BUNDLE/_internal
[ -d "$I/torch" ] || { echo "trim.sh: $I/torch not found" >&2; exit 1; }

# torch: its C++ test programs, headers, cmake files, test libraries and static libraries.
# torch/bin/torch_shm_manager stays: torch's shared-memory tensors (DataLoader workers) need it.
find "$I/torch/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} +
rm -rf "$I"/torch/test "$I"/torch/include "$I"/torch/share/cmake "$I"/torch/utils/benchmark \
       "$I"/torch/lib/libtorchbind_test.so "$I"/torch/lib/libjitbackend_test.so \
       "$I"/torch/lib/libbackend_with_compiler.so "$I"/torch/lib/libaoti_custom_ops.so
find "$I" -name '*.a' -delete
# The hook collects torch's .py sources next to the compiled modules (for TorchScript's
# inspect.getsource); the compiler stacks the app never imports do not need theirs.
for sub in _inductor _dynamo onnx; do
  [ -d "$I/torch/$sub" ] && find "$I/torch/$sub" -name '*.py' -delete
done

# Qt: translations (the app is English-only), and the platform plugins other than X11,
# Wayland and offscreen (the self-test), with the libraries only those plugins load.
rm -rf "$I"/PySide6/Qt/translations "$I"/PySide6/translations
if [ -d "$I/PySide6/Qt/plugins/platforms" ]; then
  find "$I/PySide6/Qt/plugins/platforms" -type f ! -name 'libqxcb.so' ! -name 'libqoffscreen.so' \
       ! -name 'libqwayland*.so' -delete
  rm -rf "$I"/PySide6/Qt/plugins/egldeviceintegrations
  rm -f "$I"/PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6 "$I"/PySide6/Qt/lib/libQt6EglFsKmsSupport.so.6
fi

# OpenCV's FFmpeg (video I/O, its codecs, OpenSSL) and OpenBLAS and pillow-heif's x265 encoder
# become stubs; Qt's GTK3 theme and TUIO touch plugins go, with the libraries only they needed
# (~120 MB; packaging/slim_libs.py says why each is safe, tests/test_bundle_stubs.py keeps it so).
python3 "$(dirname "$0")/slim_libs.py" "$I"

# Symbol tables of the libraries that ship them (libtorch_cpu alone: 89 MB, libpython 17 MB,
# pydensecrf 12 MB). Only these: strip on everything (the spec's strip=True) breaks numpy's
# bundled OpenBLAS, so numpy's and OpenCV's libraries are left as they are.
if command -v strip >/dev/null; then
  for lib in "$I"/torch/lib/libtorch_cpu.so "$I"/torch/lib/libtorch_python.so "$I"/torch/lib/libc10.so \
             "$I"/pydensecrf/*.so "$I"/libpython3*.so* "$I"/python3*/lib-dynload/*.so "$I"/PIL/*.so \
             "$I"/pillow_heif.libs/*.so* "$I"/PySide6/Qt/lib/libicu*.so* "$I"/safetensors/*.so; do
    if [ -f "$lib" ] && [ ! -L "$lib" ]; then strip --strip-unneeded "$lib"; fi
  done
fi
test -x "$I/torch/bin/torch_shm_manager" || { echo "trim.sh: torch_shm_manager missing" >&2; exit 1; }
