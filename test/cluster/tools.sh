#!/bin/sh
# tools.sh DIR: kube-apiserver and kubectl $K8S_VERSION and metrics-server
# $METRICS_SERVER_VERSION, built from the Go module proxy into DIR, for the
# cluster tier (test/cluster). A binary already in DIR that reports the right
# version is kept, so a warm run builds nothing. The build module lives in a
# temporary directory and is removed: nothing of it is committed.
set -eu
out=${1:?usage: tools.sh DIR}
k8s=${K8S_VERSION:-v1.36.3}
ms=${METRICS_SERVER_VERSION:-v0.9.0}
go=${GO:-go}
mkdir -p "$out"
out=$(cd "$out" && pwd)

have() { [ -x "$out/$1" ] && "$out/$1" $2 2>/dev/null | grep -q "$3"; }
if have kube-apiserver --version "Kubernetes $k8s" && have kubectl "version --client" "$k8s" &&
	have metrics-server --version "$ms"; then
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kss-cluster-tools.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod CGO_ENABLED=0

# kubernetes' go.mod points its staging modules at ./staging; a module
# requiring it must point them at the published v0.x of the same release.
gomod=$("$go" mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
staging="v0${k8s#v1}"
{
	printf 'module kss-cluster-tools\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$k8s"
	awk -v v="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$gomod"
	printf ')\n'
} >go.mod
"$go" mod edit -tool k8s.io/kubernetes/cmd/kube-apiserver -tool k8s.io/kubernetes/cmd/kubectl
"$go" mod tidy

# A release build's version stamps (hack/lib/version.sh), so that both
# report $k8s rather than v0.0.0-master.
major=${k8s#v}; major=${major%%.*}
minor=${k8s#v*.}; minor=${minor%%.*}
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
	ldflags="$ldflags -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
done
for cmd in kube-apiserver kubectl; do
	echo "tools.sh: building $cmd $k8s" >&2
	"$go" build -p 2 -trimpath -ldflags "$ldflags" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
	mv "$out/$cmd.tmp" "$out/$cmd"
done

# metrics-server's go.mod has no replaces: a plain install works.
echo "tools.sh: building metrics-server $ms" >&2
mkdir -p "$work/gobin"
GOFLAGS= GOBIN="$work/gobin" "$go" install -p 2 -trimpath \
	-ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$ms" \
	"sigs.k8s.io/metrics-server/cmd/metrics-server@$ms"
mv "$work/gobin/metrics-server" "$out/metrics-server"
