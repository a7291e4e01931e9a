package server

import (
	"net/http"

	"k8s.io/apiserver/pkg/server/healthz"
)

// housekeepingCheck is the name of the check that fails when the provider's
// housekeeping stalls; it is served at /healthz/housekeeping too.
const housekeepingCheck = "housekeeping"

// installHealthz installs the apiserver healthz handler, as the kubelet does,
// so that /healthz, ?verbose, ?exclude and /healthz/<check> answer in the
// upstream format.
func installHealthz(c filteringContainer, health HealthChecker) {
	checks := []healthz.HealthChecker{healthz.PingHealthz}
	if health != nil {
		checks = append(checks, healthz.NamedCheck(housekeepingCheck, func(*http.Request) error {
			return health.Healthy()
		}))
	}
	healthz.InstallHandler(c, checks...)
}
