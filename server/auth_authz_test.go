package server

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clocktesting "k8s.io/utils/clock/testing"
)

// scriptedAccessReviewer answers SubjectAccessReviews with answer and
// records their specs.
type scriptedAccessReviewer struct {
	mu     sync.Mutex
	answer func(authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error)
	specs  []authorizationv1.SubjectAccessReviewSpec
}

func (s *scriptedAccessReviewer) CreateSubjectAccessReview(_ context.Context, review *authorizationv1.SubjectAccessReview) (*authorizationv1.SubjectAccessReview, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs = append(s.specs, review.Spec)
	status, err := s.answer(review.Spec)
	if err != nil {
		return nil, err
	}
	return &authorizationv1.SubjectAccessReview{Spec: review.Spec, Status: status}, nil
}

func (s *scriptedAccessReviewer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.specs)
}

func answering(status authorizationv1.SubjectAccessReviewStatus) func(authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
	return func(authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
		return status, nil
	}
}

func testAttributes(user string) requestAttributes {
	return requestAttributes{
		User: &userInfo{Name: user, UID: "uid-" + user, Groups: []string{"g1", allAuthenticatedGroup},
			Extra: map[string][]string{credentialIDKey: {"X509SHA256=ab"}, "scopes": {"s1", "s2"}}},
		Verb: "get", APIVersion: "v1", Resource: "nodes", Subresource: "stats", Name: "node-1", Path: "/stats/summary",
	}
}

// TestAccessReviewSpec: the review is the apiserver webhook's for a
// resource request, user, UID, groups and extra included, and the path left
// out.
func TestAccessReviewSpec(t *testing.T) {
	reviewer := &scriptedAccessReviewer{answer: answering(authorizationv1.SubjectAccessReviewStatus{Allowed: true})}
	authz := newWebhookAuthorizer(discardLogger(), reviewer, time.Minute, time.Minute, fastBackoff(1), clocktesting.NewFakeClock(time.Now()))
	if d, err := authz.authorize(context.Background(), testAttributes("alice")); d != decisionAllow || err != nil {
		t.Fatalf("decision %v, %v", d, err)
	}
	want := authorizationv1.SubjectAccessReviewSpec{
		User: "alice", UID: "uid-alice", Groups: []string{"g1", allAuthenticatedGroup},
		Extra:              map[string]authorizationv1.ExtraValue{credentialIDKey: {"X509SHA256=ab"}, "scopes": {"s1", "s2"}},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Version: "v1", Resource: "nodes", Subresource: "stats", Name: "node-1"},
	}
	if len(reviewer.specs) != 1 || !reflect.DeepEqual(reviewer.specs[0], want) {
		t.Errorf("reviews %+v, want one %+v", reviewer.specs, want)
	}
}

func TestWebhookAuthorizerDecisions(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  authorizationv1.SubjectAccessReviewStatus
		want    decision
		wantErr bool
	}{
		{"allowed", authorizationv1.SubjectAccessReviewStatus{Allowed: true}, decisionAllow, false},
		{"denied", authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "no"}, decisionDeny, false},
		{"no opinion", authorizationv1.SubjectAccessReviewStatus{Reason: "no rule"}, decisionNoOpinion, false},
		{"allowed and denied", authorizationv1.SubjectAccessReviewStatus{Allowed: true, Denied: true}, decisionDeny, true},
	} {
		reviewer := &scriptedAccessReviewer{answer: answering(tt.status)}
		authz := newWebhookAuthorizer(discardLogger(), reviewer, time.Minute, time.Minute, fastBackoff(1), clocktesting.NewFakeClock(time.Now()))
		d, err := authz.authorize(context.Background(), testAttributes("alice"))
		if d != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: %v, %v; want %v, error %v", tt.name, d, err, tt.want, tt.wantErr)
		}
	}
}

// TestAccessReviewCacheTTLs: allow and deny (and no opinion) answers are
// reused for their TTLs, per spec; errors are not, and transient ones are
// retried with the backoff.
func TestAccessReviewCacheTTLs(t *testing.T) {
	const allowTTL, denyTTL = 5 * time.Minute, 30 * time.Second
	clk := clocktesting.NewFakeClock(time.Now())
	fail := error(nil)
	reviewer := &scriptedAccessReviewer{answer: func(spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
		if fail != nil {
			return authorizationv1.SubjectAccessReviewStatus{}, fail
		}
		return authorizationv1.SubjectAccessReviewStatus{Allowed: spec.User == "alice"}, nil
	}}
	authz := newWebhookAuthorizer(discardLogger(), reviewer, allowTTL, denyTTL, fastBackoff(3), clk)
	ask := func(user string, want decision) {
		t.Helper()
		if d, err := authz.authorize(context.Background(), testAttributes(user)); d != want || err != nil {
			t.Fatalf("%s: %v, %v; want %v", user, d, err, want)
		}
	}
	ask("alice", decisionAllow)
	ask("bob", decisionNoOpinion)
	ask("alice", decisionAllow)
	ask("bob", decisionNoOpinion)
	if n := reviewer.calls(); n != 2 {
		t.Fatalf("%d reviews for two users asked twice, want 2", n)
	}
	other := testAttributes("alice")
	other.Subresource = "metrics"
	if d, _ := authz.authorize(context.Background(), other); d != decisionAllow || reviewer.calls() != 3 {
		t.Errorf("another subresource: %v after %d reviews, want a review of its own", d, reviewer.calls())
	}

	clk.Step(denyTTL + time.Second)
	ask("alice", decisionAllow)
	ask("bob", decisionNoOpinion)
	if n := reviewer.calls(); n != 4 {
		t.Errorf("after the deny TTL: %d reviews, want 4 (bob asked again, alice cached)", n)
	}
	clk.Step(allowTTL)
	ask("alice", decisionAllow)
	if n := reviewer.calls(); n != 5 {
		t.Errorf("after the allow TTL: %d reviews, want 5", n)
	}

	// Errors: retried while transient, never cached.
	fail = apierrors.NewInternalError(errors.New("etcd"))
	before := reviewer.calls()
	if _, err := authz.authorize(context.Background(), testAttributes("carol")); err == nil {
		t.Error("webhook failing: no error")
	}
	if n := reviewer.calls() - before; n != 3 {
		t.Errorf("a 500 was tried %d times, want 3 (the backoff's steps)", n)
	}
	fail = nil
	ask("carol", decisionNoOpinion)
	if n := reviewer.calls() - before; n != 4 {
		t.Errorf("the error was cached: %d reviews, want 4", n)
	}
}

func TestAccessReviewOfLongAttributesIsNotCached(t *testing.T) {
	reviewer := &scriptedAccessReviewer{answer: answering(authorizationv1.SubjectAccessReviewStatus{Allowed: true})}
	authz := newWebhookAuthorizer(discardLogger(), reviewer, time.Minute, time.Minute, fastBackoff(1), clocktesting.NewFakeClock(time.Now()))
	attrs := testAttributes("alice")
	attrs.Path = "/stats/" + strings.Repeat("x", maxCachedAttributesSize)
	for range 2 {
		if d, err := authz.authorize(context.Background(), attrs); d != decisionAllow || err != nil {
			t.Fatal(d, err)
		}
	}
	if reviewer.calls() != 2 {
		t.Errorf("%d reviews for a path of %d bytes asked twice, want 2 (not cached)", reviewer.calls(), len(attrs.Path))
	}
}

// TestBothAllowedAndDeniedIs500: an API server that says both is an
// authorization error, as upstream.
func TestBothAllowedAndDeniedIs500(t *testing.T) {
	reviewer := &scriptedAccessReviewer{answer: answering(authorizationv1.SubjectAccessReviewStatus{Allowed: true, Denied: true})}
	ts := startSecurePort(t, AuthConfig{Anonymous: true, AuthorizationMode: AuthorizationModeWebhook, SubjectAccessReviewClient: reviewer,
		WebhookRetryBackoff: ptr(fastBackoff(1))}, TLSConfig{})
	status, body := ts.get(t, ts.client(nil), "GET", "/stats/summary")
	if want := "Authorization error (user=system:anonymous, verb=get, resource=nodes, subresource=stats)"; status != http.StatusInternalServerError || body != want {
		t.Errorf("%d %q, want 500 %q", status, body, want)
	}
}
