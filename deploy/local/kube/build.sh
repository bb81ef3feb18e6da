#!/usr/bin/env bash
# Builds the local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the Go module proxy,
# once, and copies the Gateway API CRDs (HTTPRoute, ...) out of their Go module.
#
# There is no Docker here, so kind/k3d/minikube are out and the control plane runs
# as plain processes. The binaries, the Go module cache and the Go build cache live
# outside git, in $MUSEAROO_KUBE_CACHE (default ~/.cache/musearoo-responder/kube),
# keyed by a hash of the module files, so a second run (and every later start of the
# stack) finds them and returns at once; a fresh machine builds once (minutes on
# 2 cores).
#
# Prints the directory holding the binaries as its last line of stdout; progress
# goes to stderr.
set -euo pipefail

# Everything runs inside main so that bash has parsed the whole script before it
# starts: editing this file while a build runs cannot derail it.
main() {
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    cache=${MUSEAROO_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/musearoo-responder/kube}
    kube_version=v1.36.3
    gateway_api_version=v1.6.3

    export GOMODCACHE=$cache/gomodcache
    export GOCACHE=$cache/gocache
    export GOFLAGS="-mod=readonly -buildvcs=false"
    export CGO_ENABLED=0
    mkdir -p "$cache/bin" "$GOMODCACHE" "$GOCACHE"

    log() { printf '[kube-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

    if ! command -v go >/dev/null 2>&1; then
        log "the go command is not on PATH: the control plane is built from the Go module proxy with Go >= 1.26"
        exit 1
    fi

    stamp=$(
        cd "$here"
        {
            go version
            cat build.sh control-plane/go.mod control-plane/go.sum control-plane/cmd/etcd/main.go \
                kwok/go.mod kwok/go.sum
        } | sha256sum | cut -c1-16
    )
    out=$cache/bin/$stamp

    exec 9>"$cache/build.lock"
    if ! flock -n 9; then
        log "another build holds $cache/build.lock; waiting for it"
        flock 9
    fi

    if [[ -x $out/kube-apiserver && -x $out/kube-controller-manager && -x $out/kube-scheduler \
        && -x $out/kubectl && -x $out/etcd && -x $out/kwok && -d $out/crds/gateway-api \
        && -f $out/kwok-stages.yaml ]]; then
        log "binaries up to date in $out"
        echo "$out"
        exit 0
    fi

    tmp=$(mktemp -d "$cache/bin/.build-XXXXXX")
    start=$SECONDS
    # A cold build is minutes of silence from the go command: say every 30 s that it
    # is still going.
    # (sleep holds none of our output: a reader waiting for EOF is not kept waiting.)
    (while sleep 30 </dev/null >/dev/null 2>&1; do log "still building ($((SECONDS - start)) s)"; done) &
    heartbeat=$!
    trap 'kill "$heartbeat" 2>/dev/null; rm -rf "$tmp"' EXIT

    # The version the binaries report (kubectl's skew check and /version read it), set
    # as Kubernetes' own hack/lib/version.sh does.
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done

    log "downloading modules (control plane)"
    (cd "$here/control-plane" && go mod download)
    log "building etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $kube_version into $out"
    (cd "$here/control-plane" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
        ./cmd/etcd \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl)
    log "control plane built after $((SECONDS - start)) s; building kwok"
    (cd "$here/kwok" && go mod download && go build -trimpath -ldflags "-s -w" -o "$tmp/" sigs.k8s.io/kwok/cmd/kwok)

    log "copying Gateway API $gateway_api_version standard CRDs"
    gateway_dir=$(cd "$here/kwok" && go mod download -json "sigs.k8s.io/gateway-api@$gateway_api_version" \
        | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    mkdir -p "$tmp/crds/gateway-api"
    cp "$gateway_dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$tmp/crds/gateway-api/"
    chmod -R u+w "$tmp/crds"

    # The kwok binary has no stages of its own (kwokctl passes them in a config
    # file): take the "fast" node and pod stages, and the lease heartbeat, that
    # kwokctl uses by default, from the kwok module.
    log "writing kwok's default stages"
    kwok_dir=$(cd "$here/kwok" && go mod download -json sigs.k8s.io/kwok \
        | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
        pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
        echo "---"
        cat "$kwok_dir/kustomize/stage/$stage.yaml"
    done >"$tmp/kwok-stages.yaml"

    kill "$heartbeat" 2>/dev/null || true
    rm -rf "$out"
    mv "$tmp" "$out"
    trap - EXIT
    # Binaries of older module files are never used again (running servers keep
    # their deleted executables open, as Linux allows).
    find "$cache/bin" -mindepth 1 -maxdepth 1 -not -name "$stamp" -exec rm -rf {} +
    log "built in $((SECONDS - start)) s: $(ls "$out" | tr '\n' ' ')"
    echo "$out"
}

main "$@"
exit
