package server

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// defaultWebhookRetryBackoff is k8s.io/apiserver/pkg/server/options
// DefaultAuthWebhookRetryBackoff, which the kubelet uses for both webhooks.
func defaultWebhookRetryBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// withWebhookBackoff calls call until it succeeds, fails with an error that
// is not transient (retriableWebhookError), backoff runs out of steps or ctx
// ends; it returns the last error of call, else why it stopped. This is
// k8s.io/apiserver/pkg/util/webhook's WithExponentialBackoff with its
// DefaultShouldRetry, which both webhooks of the kubelet use.
func withWebhookBackoff(ctx context.Context, backoff wait.Backoff, call func() error) error {
	var callErr error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(context.Context) (bool, error) {
		callErr = call()
		if retriableWebhookError(callErr) {
			return false, nil
		}
		if callErr != nil {
			return false, callErr
		}
		return true, nil
	})
	switch {
	case callErr != nil:
		return callErr
	case err != nil:
		return fmt.Errorf("webhook call failed: %w", err)
	}
	return nil
}

// retriableWebhookError reports whether err is transient: a reset or lost
// connection, or an API server answer that asks to try again (500, 504 and
// 429 with their Status reasons, or a Retry-After).
func retriableWebhookError(err error) bool {
	if utilnet.IsConnectionReset(err) || utilnet.IsHTTP2ConnectionLost(err) || apierrors.IsInternalError(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) {
		return true
	}
	_, retry := apierrors.SuggestsClientDelay(err)
	return retry
}
