#!/bin/sh
# Builds every image that deploy/k8s/<profile>/ and deploy/docker-compose.yaml use, from
# deploy/Dockerfile, with the repository root as build context. Needs Docker with BuildKit.
#
#   deploy/build-images.sh          the wasm (CPU) images and the cli image
#   deploy/build-images.sh gpu      the CUDA images of the model services (needs internet: the
#                                   tfjs-node-gpu installer downloads libtensorflow)
#   deploy/build-images.sh all      both
#
# REGISTRY (default rlhf) and TAG (default 0.1.0) name them REGISTRY/<service>:TAG[-gpu]; the CI
# checks (deploy/src/check/) read the `build` lines below to know which images exist.
set -eu
cd "$(dirname "$0")/.."
REGISTRY="${REGISTRY:-rlhf}"
TAG="${TAG:-0.1.0}"
which="${1:-cpu}"
case "$which" in cpu|gpu|all) ;; *) echo "usage: $0 [cpu|gpu|all]" >&2; exit 2 ;; esac

# build <target> <service> <gRPC port> <tag>
build() {
  echo "== $REGISTRY/$2:$4 (target $1)"
  docker build -f deploy/Dockerfile --target "$1" --build-arg SERVICE="$2" --build-arg PORT="$3" -t "$REGISTRY/$2:$4" .
}

if [ "$which" != gpu ]; then
  build cpu ppo-coordinator 50050 "$TAG"
  build cpu policy 50051 "$TAG"
  build cpu reward-model 50052 "$TAG"
  build cpu reference-model 50053 "$TAG"
  build cpu pretrain-mix 50054 "$TAG"
  build cpu labeling 50055 "$TAG"
  build cli cli 50050 "$TAG"
fi
if [ "$which" != cpu ]; then
  build gpu policy 50051 "$TAG-gpu"
  build gpu reward-model 50052 "$TAG-gpu"
  build gpu reference-model 50053 "$TAG-gpu"
  build gpu pretrain-mix 50054 "$TAG-gpu"
fi
