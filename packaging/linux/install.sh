#!/bin/sh
# Install lesionviewer for every user of this computer: the folder this script is in goes to
# /opt/lesionviewer (or $PREFIX), with a menu entry and icon, and `lesionviewer` on the PATH.
# Run as root:   sudo ./install.sh      Remove with:   sudo /opt/lesionviewer/uninstall.sh
# Needs no network and no Python. Runs the bundle's self-test at the end.
set -eu
PREFIX=${PREFIX:-/opt/lesionviewer}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$HERE/lesionviewer" ] || [ ! -d "$HERE/_internal" ]; then
  echo "install.sh must be run from the unpacked lesionviewer folder" >&2; exit 1
fi
if [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
if [ "$HERE" != "$PREFIX" ]; then
  rm -rf "$PREFIX.new"
  mkdir -p "$(dirname "$PREFIX")"
  cp -a "$HERE" "$PREFIX.new"
  rm -rf "$PREFIX"          # an earlier version: replaced whole, so no stale library lingers
  mv "$PREFIX.new" "$PREFIX"
fi
chown -R root:root "$PREFIX"
chmod -R go-w,a+rX "$PREFIX"   # users run it, nobody but root can change it (or its model)
RES=$PREFIX/_internal/resources
mkdir -p /usr/local/bin /usr/share/applications
ln -sf "$PREFIX/lesionviewer" /usr/local/bin/lesionviewer
sed "s#/opt/lesionviewer#$PREFIX#g" "$RES/lesionviewer.desktop" > /usr/share/applications/lesionviewer.desktop
for size in 16 32 48 64 128 256 512; do
  dir=/usr/share/icons/hicolor/${size}x${size}/apps
  mkdir -p "$dir" && cp "$RES/icons/lesionviewer-$size.png" "$dir/lesionviewer.png"
done
mkdir -p /usr/share/icons/hicolor/scalable/apps
cp "$RES/icons/lesionviewer.svg" /usr/share/icons/hicolor/scalable/apps/lesionviewer.svg
command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
echo "installed in $PREFIX; checking it:"
QT_QPA_PLATFORM=offscreen HOME=$(mktemp -d) "$PREFIX/lesionviewer" --selftest
