#!/usr/bin/env bash
# image_info.sh TARGET BASE_IMAGE CAFFE_COMMIT ALEXEYAB_COMMIT INPUTS_SHA256 [CUDA_ARCH_LIST]
# Run by docker/Dockerfile as the last step of each target: writes /etc/leukonet-harness/image.env
# (what `harness doctor` prints as "image") from the build stamps the install scripts left in
# $HARNESS_CACHE, and fails the build when the commits given as build args (the image's labels,
# passed by scripts/docker_build.sh from scripts/sources.lock) differ from what was really built.
set -euo pipefail
target=$1 base=$2 caffe_arg=$3 alexeyab_arg=$4 inputs=$5 arch=${6:-}
cache=${HARNESS_CACHE:?}
out=/etc/leukonet-harness/image.env
mkdir -p "$(dirname "$out")"
python3 - "$cache" "$target" "$base" "$caffe_arg" "$alexeyab_arg" "$inputs" "$arch" > "$out" <<'PY'
import glob, json, os, subprocess, sys
cache, target, base, caffe_arg, alexeyab_arg, inputs, arch = sys.argv[1:]
def kv(path):
    return dict(line.split("=", 1) for line in open(path).read().splitlines() if "=" in line)
def builds(pattern):  # each build once: the gpu image also links them under fixed names (caffe-gpu, darknet-gpu)
    return sorted({os.path.realpath(p) for p in glob.glob(f"{cache}/{pattern}")})
caffe = [kv(p) for p in builds("caffe-*/.harness-build-complete")]
stamps = [json.load(open(p)) for p in builds("*darknet*/.stamp")]
alexeyab = [s for s in stamps if s.get("fork") == "alexeyab"]
pjreddie = [s for s in stamps if s.get("debian_version")]
if len(caffe) != 1 or len(alexeyab) != 1 or len(pjreddie) != 1:
    sys.exit(f"image_info: expected one build of each framework in {cache}, found caffe {len(caffe)}, "
             f"alexeyab {len(alexeyab)}, pjreddie {len(pjreddie)}")
for name, given, built in (("CAFFE_COMMIT", caffe_arg, caffe[0]["commit"]),
                           ("ALEXEYAB_COMMIT", alexeyab_arg, alexeyab[0]["commit"])):
    if given and given != built:
        sys.exit(f"image_info: build arg {name}={given} but the image built {built}")
debian = open("/etc/debian_version").read().strip()
info = {
    "target": target,
    "base_image": base,
    "debian": debian,
    "caffe": f"weiliu89 {caffe[0]['commit']} (source {caffe[0].get('source_origin', '?').split('/')[-1]}, gpu={caffe[0].get('gpu')})",
    "darknet_pjreddie": f"Debian {pjreddie[0]['debian_version']} ({pjreddie[0]['variant']}, {pjreddie[0]['opts']})",
    "darknet_alexeyab": f"{alexeyab[0]['commit']} ({alexeyab[0]['variant']}, {alexeyab[0]['make_args']})",
}
nvcc = "/usr/local/cuda/bin/nvcc"
if os.path.exists(nvcc):
    release = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    info["cuda"] = f"{release}; arch {arch}"
info["inputs_sha256"] = inputs or "(not given)"
for key, value in info.items():
    print(f"{key}={value}")
PY
cat "$out"
