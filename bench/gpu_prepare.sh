#!/usr/bin/env bash
# Run HERE (the CPU machine) before a lent GPU session: packs what bench/gpu.sh needs into the ignored
# folders .gpu/ (a bundled benchmark and an xz-compressed deno; the GPU machine reaches no registry) and
# .gl/ (Vulkan/EGL loader packages). Then: device run with carry [".gpu", ".gl"], command "bash bench/gpu.sh".
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >>.git/info/exclude
mkdir -p .gpu .gl
deno bundle --platform deno -o .gpu/bench.js bench/main.ts
deno bundle --platform deno -o .gpu/report.js bench/gpu_report.ts
[ -f .gpu/deno.xz ] || xz -T0 -6 -c "$(readlink -f "$(command -v deno)")" >.gpu/deno.xz
if ! ls .gl/*.deb >/dev/null 2>&1; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -q
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .gpu .gl
