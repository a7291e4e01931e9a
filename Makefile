# kubelet-stats-server. `make run` serves this machine's stats; `make test` proves it.
GO       ?= go
BIN      := bin/kubelet-stats-server
PKG      := ./cmd/kubelet-stats-server
# Unit and live-cgroup tests: everything except the end-to-end suites under
# test/, plus the golden tier, which needs neither root nor a runtime.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/test/') ./test/golden/...
# The browser tier runs in e2e-browser, which installs the browser it needs.
E2E_PKGS  = $(shell $(GO) list ./test/... | grep -v '/test/browser')
APT_PKGS := containerd runc containernetworking-plugins
# The version --version prints, the startup log and the image labels carry:
# the nearest tag, commits since, commit, -dirty (a bare commit without tags).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   = -X github.com/kubelet-stats-server/kubelet-stats-server/internal/version.version=$(VERSION) \
            -X github.com/kubelet-stats-server/kubelet-stats-server/internal/version.commit=$(COMMIT)
# The image's creation time is the commit's, so a commit always builds the same digests.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# What make image tags the image with and make push uploads to, the
# platforms it builds and where it writes.
IMAGE    ?= localhost/kubelet-stats-server:$(VERSION)
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_OUT ?= bin/image

.PHONY: all build run test unit e2e e2e-v2 capture-v2 otel deps deps-v2 bench lint fmt fuzz diff clean image push golden-capture golden-import

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) $(PKG)

# The OCI image for linux/amd64 and linux/arm64, built without Docker
# (hack/image, go-containerregistry): bin/image/kubelet-stats-server.oci.tar
# for ctr import and registries, one docker load tarball per platform.
image:
	@[ -f /etc/ssl/certs/ca-certificates.crt ] || DEBIAN_FRONTEND=noninteractive apt-get install -y ca-certificates >/dev/null
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/image build --tag='$(IMAGE)' \
		--version='$(VERSION)' --revision='$(COMMIT)' --ldflags='$(LDFLAGS)' \
		--platforms='$(IMAGE_PLATFORMS)' --out='$(IMAGE_OUT)'

# make push IMAGE=registry.example.com/kubelet-stats-server:v0.1.0, with the
# credentials of docker login (~/.docker/config.json).
push:
	@[ "$(origin IMAGE)" != file ] || { echo "make push needs IMAGE=<registry>/<repository>:<tag>"; exit 1; }
	$(MAKE) image IMAGE='$(IMAGE)'
	$(GO) run ./hack/image push --image='$(IMAGE)' --out='$(IMAGE_OUT)'

# Serves http://127.0.0.1:10255/stats/summary from this machine's real cgroups
# (and the secure port on 127.0.0.1:10250). The self-signed certificate goes
# to bin/pki: creating /var/lib/kubelet would change the node's fs stats,
# which fall back to / while that directory is missing.
run: build
	@echo "kubelet-stats-server: try  curl -s http://127.0.0.1:10255/stats/summary"
	./$(BIN) --address=127.0.0.1 --read-only-port=10255 --cert-dir=bin/pki $(ARGS)

# What CI runs. Installs what the end-to-end tests need on a fresh machine first.
test: deps lint unit e2e e2e-browser e2e-cluster e2e-v2

# As root the live cgroup, tmpfs and containerd tests run; as another user
# they skip, each saying why (go test -v lists them).
unit:
	@[ "$$(id -u)" = 0 ] || echo "make unit: not root, so the live cgroup, tmpfs and containerd tests skip (they need root)"
	$(GO) test -race -count=1 $(UNIT_PKGS)
	$(GO) test -run '^$$' -fuzz FuzzLegacyRequest -fuzztime 20000x ./server/

# Captures this machine's tree for the golden tier (root: it creates pods'
# cgroups with real processes, then removes them) into
# test/golden/testdata/trees/<v1|hybrid|v2> and rewrites the goldens from it.
# Review the diff before committing.
golden-capture:
	$(GO) run ./test/golden/capture -trees test/golden/testdata/trees
	$(GO) test -count=1 ./test/golden/ -update

# make golden-import ARCHIVE=<dir>/capture-cgroupfs.tar.gz: the tree the
# cgroup v2 VM captured (KSS_V2VM_CAPTURE=<dir> with the VM tier) becomes
# test/golden/testdata/trees/v2 (v2-systemd for the systemd layout), and
# the goldens are rewritten. No root needed.
golden-import:
	@[ -n "$(ARCHIVE)" ] || { echo "make golden-import needs ARCHIVE=<capture-<layout>.tar.gz>"; exit 1; }
	$(GO) run ./test/golden/capture -import '$(ARCHIVE)' -trees test/golden/testdata/trees
	$(GO) test -count=1 ./test/golden/ -update

# A real kubelet v1.36.3 (built from source, about 7 minutes; KSS_KUBELET=<binary>
# skips that) and this server on one containerd: their summaries of the same pod
# must have the same keys and agreeing values.
diff: deps
	KSS_DIFF=1 $(GO) test -count=1 -v -timeout 40m ./test/diff/

# The kubelet side by side (test/diff TestSideBySide, docs/performance.md): a
# real kubelet v1.36.3 (maxPods: 500; KSS_KUBELET=<binary> skips its 7-minute
# build) and this server on one containerd over static pods of 3 sleeping
# containers, grown to 100, 250 and 500 (KSS_LOAD_PODS), both summaries timed
# alternately (KSS_SIDE_BY_SIDE_REQUESTS each, 200), with the CPU and RSS of
# the kubelet, ours and containerd. About 40 minutes; KSS_LOAD_REPORT=<file>
# keeps the table. Run it on a quiet machine.
.PHONY: bench-kubelet
bench-kubelet: deps
	KSS_SIDE_BY_SIDE=1 KSS_LOAD_PODS=$${KSS_LOAD_PODS:-100,250,500} $(GO) test -count=1 -v -run 'TestSideBySide$$' -timeout 150m ./test/diff/

# The browser tier (test/browser): headless Chromium, Debian's chromium
# package, driven by chromedp, opens the page the real binary serves on "/"
# over real containerd pods. Screenshots go to bin/artifacts (KSS_ARTIFACTS).
.PHONY: e2e-browser deps-browser
e2e-browser: deps deps-browser
	$(GO) test -count=1 -v -timeout 15m ./test/browser/

deps-browser:
	@command -v chromium >/dev/null || { \
		echo "installing chromium"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null || \
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }; }

.PHONY: e2e-cluster
# The cluster tier: etcd (Debian's etcd-server), kube-apiserver and kubectl
# v1.36.3 and metrics-server v0.9.0 built from the Go module proxy
# (test/cluster/tools.sh, cached in bin/cluster: about 18 minutes cold,
# nothing warm) and this server registered as a node (--register-node) over
# real containerd pods, all on loopback; see docs/deploy.md.
e2e-cluster: deps
	KSS_CLUSTER=1 $(GO) test -count=1 -v -timeout 45m ./test/cluster/

# Longer fuzzing of the legacy endpoints' body and path parsing. Budgets are
# counts, not durations: a -fuzztime duration races Go 1.26's fuzz
# coordinator, which then fails with "context deadline exceeded" and no
# crasher (golang/go#75804, fixed in Go 1.27).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLegacyRequest -fuzztime 300000x ./server/

e2e: deps
	$(GO) test -count=1 -p 1 -timeout 20m $(E2E_PKGS)
	$(MAKE) --no-print-directory otel

# The OpenTelemetry Collector's kubeletstats receiver (v0.149.0, its own Go
# package) scraping the real binary on real containerd pods with the options
# that make it read /pods. test/otel is a module of its own, so that the
# Collector's dependencies stay out of ours.
otel: deps
	cd test/otel && $(GO) test -count=1 -timeout 20m ./...

# The cgroup v2 VM tier (test/v2vm, docs/compatibility.md): Debian's cloud
# kernel (apt-get download, cached in bin/v2vm/cache) booted under QEMU's
# TCG with this machine's containerd, runc, CNI plugins and systemd, once
# in the cgroupfs and once in the systemd layout: the collector against the
# kernel's v2 files and the pod e2e suites inside the VM. KSS_V2VM_LAYOUTS,
# KSS_V2VM_PLAN and KSS_V2VM_DEBUG narrow and trace it (test/v2vm/doc.go).
e2e-v2: deps deps-v2
	KSS_V2VM=1 $(GO) test -count=1 -v -timeout 60m -run TestCgroupV2VM ./test/v2vm/

# The same VM capturing a cgroup v2 node's tree in each layout instead:
# bin/v2vm/capture/capture-<layout>.tar.gz (three containerd pods, one
# OOM-killed), which make golden-import ARCHIVE=<archive> turns into the
# golden tier's v2 and v2-systemd trees.
capture-v2: deps deps-v2
	KSS_V2VM=1 KSS_V2VM_CAPTURE=$(CURDIR)/bin/v2vm/capture $(GO) test -count=1 -v -timeout 30m -run TestCgroupV2VM ./test/v2vm/

# What the VM tier needs besides deps: QEMU, a static busybox for its
# initramfs, mkfs.ext4 for its root image, systemd for the systemd layout
# (only its files are used; nothing is started on this machine).
V2VM_APT_PKGS := qemu-system-x86 busybox-static e2fsprogs systemd iproute2
deps-v2:
	@missing=""; \
	for bin in qemu-system-x86_64 mkfs.ext4 ip systemctl; do command -v $$bin >/dev/null || missing=yes; done; \
	[ -x /usr/lib/systemd/systemd ] || missing=yes; \
	ldd "$$(command -v busybox)" 2>&1 | grep -q 'not a dynamic' || missing=yes; \
	if [ -n "$$missing" ]; then \
		echo "installing $(V2VM_APT_PKGS)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(V2VM_APT_PKGS) >/dev/null || \
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(V2VM_APT_PKGS) >/dev/null; }; \
	fi

# containerd, runc and the CNI plugins for the end-to-end tests (Debian packages).
deps:
	@missing=""; \
	for bin in containerd runc ctr; do command -v $$bin >/dev/null || missing=yes; done; \
	[ -x /usr/lib/cni/bridge ] || missing=yes; \
	if [ -n "$$missing" ]; then \
		echo "installing $(APT_PKGS)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PKGS) >/dev/null || \
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PKGS) >/dev/null; }; \
	fi

# Benchmarks and the load scenarios (docs/performance.md): the cgroup one at
# 100 and 250 pods (a column each), the containerd one at 100 pods.
# bench-500 is the 500-pod column and the collector's benchmarks at that size
# (about 15 minutes). KSS_LOAD_REPORT=<file> keeps the table.
.PHONY: bench-500
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./cadvisor/ ./collector/ ./server/
	KSS_LOAD=1 KSS_LOAD_PODS=100,250 $(GO) test -count=1 -v -run 'TestLoad' -timeout 60m ./test/load/

bench-500: build
	KSS_BENCH_PODS=500 $(GO) test -run '^$$' -bench 'Housekeep|ReadFloor|Rescan' -benchmem -count=1 ./collector/
	KSS_LOAD=1 KSS_LOAD_PODS=500 $(GO) test -count=1 -v -run 'TestLoad$$' -timeout 60m ./test/load/

# The lint gate: golangci-lint v2 (.golangci.yml: staticcheck, unused, errcheck,
# govet, ineffassign, gocyclo, dupl, misspell, gofmt and goimports with our
# module as local prefix), pinned and built from the module proxy into
# bin/tools on first use. The OTel test module is linted on its own.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

$(GOLANGCI_LINT):
	mkdir -p bin/tools
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv bin/tools/golangci-lint $@

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...
	cd test/otel && $(CURDIR)/$(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
