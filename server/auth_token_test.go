package server

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
)

// scriptedTokenReviewer answers TokenReviews from a script of answers (the
// last one repeats) and records the tokens it was asked about.
type scriptedTokenReviewer struct {
	mu      sync.Mutex
	answers []func(token string) (*authenticationv1.TokenReview, error)
	asked   []string
}

func (s *scriptedTokenReviewer) CreateTokenReview(_ context.Context, review *authenticationv1.TokenReview) (*authenticationv1.TokenReview, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, review.Spec.Token)
	answer := s.answers[0]
	if len(s.answers) > 1 {
		s.answers = s.answers[1:]
	}
	return answer(review.Spec.Token)
}

func (s *scriptedTokenReviewer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.asked)
}

func authenticated(user authenticationv1.UserInfo) func(string) (*authenticationv1.TokenReview, error) {
	return func(string) (*authenticationv1.TokenReview, error) {
		return &authenticationv1.TokenReview{Status: authenticationv1.TokenReviewStatus{Authenticated: true, User: user}}, nil
	}
}

func notAuthenticated(reason string) func(string) (*authenticationv1.TokenReview, error) {
	return func(string) (*authenticationv1.TokenReview, error) {
		return &authenticationv1.TokenReview{Status: authenticationv1.TokenReviewStatus{Error: reason}}, nil
	}
}

func failing(err error) func(string) (*authenticationv1.TokenReview, error) {
	return func(string) (*authenticationv1.TokenReview, error) { return nil, err }
}

// fastBackoff retries without noticeable waits.
func fastBackoff(steps int) wait.Backoff {
	return wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: steps}
}

func newTestTokenCache(t *testing.T, reviewer TokenReviewer, ttl time.Duration, clk *clocktesting.FakeClock) *cachedTokens {
	t.Helper()
	c, err := newCachedTokens(discardLogger(), &tokenWebhook{reviewer: reviewer, backoff: fastBackoff(3), logger: discardLogger()}, ttl, clk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenWebhookAnswers(t *testing.T) {
	user := authenticationv1.UserInfo{Username: "alice", UID: "u-1", Groups: []string{"devs"},
		Extra: map[string]authenticationv1.ExtraValue{"scopes": {"a", "b"}}}
	for _, tt := range []struct {
		name     string
		answer   func(string) (*authenticationv1.TokenReview, error)
		wantUser *userInfo
		wantErr  string
	}{
		{"authenticated", authenticated(user), &userInfo{Name: "alice", UID: "u-1", Groups: []string{"devs"}, Extra: map[string][]string{"scopes": {"a", "b"}}}, ""},
		{"authenticated without extra", authenticated(authenticationv1.UserInfo{Username: "bob"}), &userInfo{Name: "bob"}, ""},
		{"rejected with a reason", notAuthenticated("token expired"), nil, "token expired"},
		{"rejected without a reason", notAuthenticated(""), nil, ""},
		{"API server answers 401", failing(apierrors.NewUnauthorized("no")), nil, "no"},
	} {
		w := &tokenWebhook{reviewer: &scriptedTokenReviewer{answers: []func(string) (*authenticationv1.TokenReview, error){tt.answer}},
			backoff: fastBackoff(3), logger: discardLogger()}
		u, ok, err := w.authenticateToken(context.Background(), "tok")
		if ok != (tt.wantUser != nil) || !reflect.DeepEqual(u, tt.wantUser) || (err == nil) != (tt.wantErr == "") ||
			(err != nil && err.Error() != tt.wantErr) {
			t.Errorf("%s: %+v, ok %v, error %v; want %+v, error %q", tt.name, u, ok, err, tt.wantUser, tt.wantErr)
		}
	}
}

func TestTokenWebhookRetriesTransientErrors(t *testing.T) {
	internal := apierrors.NewInternalError(errors.New("etcd timeout"))
	throttled := apierrors.NewTooManyRequests("slow down", 1)
	for _, tt := range []struct {
		name      string
		answers   []func(string) (*authenticationv1.TokenReview, error)
		wantCalls int
		wantOK    bool
		wantErr   error
	}{
		{"500 then success", []func(string) (*authenticationv1.TokenReview, error){failing(internal), authenticated(authenticationv1.UserInfo{Username: "a"})}, 2, true, nil},
		{"429 then success", []func(string) (*authenticationv1.TokenReview, error){failing(throttled), authenticated(authenticationv1.UserInfo{Username: "a"})}, 2, true, nil},
		{"500 until the backoff runs out", []func(string) (*authenticationv1.TokenReview, error){failing(internal)}, 3, false, internal},
		{"403 is not retried", []func(string) (*authenticationv1.TokenReview, error){failing(apierrors.NewForbidden(schema.GroupResource{}, "", errors.New("no")))}, 1, false, nil},
		{"connection refused is not retried", []func(string) (*authenticationv1.TokenReview, error){failing(errors.New("dial tcp: connection refused"))}, 1, false, nil},
	} {
		reviewer := &scriptedTokenReviewer{answers: tt.answers}
		w := &tokenWebhook{reviewer: reviewer, backoff: fastBackoff(3), logger: discardLogger()}
		_, ok, err := w.authenticateToken(context.Background(), "tok")
		if reviewer.calls() != tt.wantCalls || ok != tt.wantOK || (tt.wantOK && err != nil) || (!tt.wantOK && err == nil) {
			t.Errorf("%s: %d calls, ok %v, error %v; want %d calls, ok %v", tt.name, reviewer.calls(), ok, err, tt.wantCalls, tt.wantOK)
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want the last answer %v", tt.name, err, tt.wantErr)
		}
	}
}

// TestTokenCacheTTL: an authenticated answer and an answer that did not
// authenticate are reused for the TTL and asked again after it; answers
// with an error (a rejection with a reason, a failure to ask) are never
// reused, as upstream's cache with cacheErrs off.
func TestTokenCacheTTL(t *testing.T) {
	const ttl = 2 * time.Minute
	for _, tt := range []struct {
		name      string
		answer    func(string) (*authenticationv1.TokenReview, error)
		wantOK    bool
		wantCache bool
	}{
		{"authenticated", authenticated(authenticationv1.UserInfo{Username: "alice"}), true, true},
		{"not authenticated, no reason", notAuthenticated(""), false, true},
		{"rejected with a reason", notAuthenticated("token not recognized"), false, false},
		{"API server down", failing(errors.New("connection refused")), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Now())
			reviewer := &scriptedTokenReviewer{answers: []func(string) (*authenticationv1.TokenReview, error){tt.answer}}
			tokens := newTestTokenCache(t, reviewer, ttl, clk)
			ask := func() {
				t.Helper()
				if _, ok, _ := tokens.authenticateToken(context.Background(), "tok"); ok != tt.wantOK {
					t.Fatalf("ok %v, want %v", ok, tt.wantOK)
				}
			}
			ask()
			clk.Step(ttl - time.Second)
			ask()
			want := 2
			if tt.wantCache {
				want = 1
			}
			if reviewer.calls() != want {
				t.Errorf("%d TokenReviews for two requests within the TTL, want %d", reviewer.calls(), want)
			}
			clk.Step(2 * time.Second)
			ask()
			if reviewer.calls() != want+1 {
				t.Errorf("%d TokenReviews after the TTL, want %d", reviewer.calls(), want+1)
			}
		})
	}
}

func TestTokenCacheKeysAndZeroTTL(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	reviewer := &scriptedTokenReviewer{answers: []func(string) (*authenticationv1.TokenReview, error){
		func(token string) (*authenticationv1.TokenReview, error) {
			return authenticated(authenticationv1.UserInfo{Username: "user-of-" + token})(token)
		},
	}}
	tokens := newTestTokenCache(t, reviewer, time.Minute, clk)
	for _, token := range []string{"a", "b", "a", "b"} {
		u, ok, err := tokens.authenticateToken(context.Background(), token)
		if !ok || err != nil || u.Name != "user-of-"+token {
			t.Errorf("token %s: %+v, %v, %v", token, u, ok, err)
		}
	}
	if reviewer.calls() != 2 {
		t.Errorf("%d TokenReviews for two tokens, want 2", reviewer.calls())
	}

	uncached := newTestTokenCache(t, reviewer, 0, clk)
	for range 3 {
		if _, ok, err := uncached.authenticateToken(context.Background(), "c"); !ok || err != nil {
			t.Fatalf("TTL 0: ok %v, %v", ok, err)
		}
	}
	if reviewer.calls() != 5 {
		t.Errorf("TTL 0: %d TokenReviews for three requests, want 3 more than 2", reviewer.calls())
	}
}

// blockingTokenReviewer answers once release is closed.
type blockingTokenReviewer struct {
	release chan struct{}
	calls   chan struct{}
}

func (b *blockingTokenReviewer) CreateTokenReview(ctx context.Context, _ *authenticationv1.TokenReview) (*authenticationv1.TokenReview, error) {
	b.calls <- struct{}{}
	select {
	case <-b.release:
		return authenticated(authenticationv1.UserInfo{Username: "alice"})("")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestTokenCacheSharesOneLookup: requests that wait for the same token's
// review share it, and one that gives up gets its context's error without
// cancelling the review for the others.
func TestTokenCacheSharesOneLookup(t *testing.T) {
	reviewer := &blockingTokenReviewer{release: make(chan struct{}), calls: make(chan struct{}, 10)}
	tokens := newTestTokenCache(t, reviewer, time.Minute, clocktesting.NewFakeClock(time.Now()))

	impatient, cancel := context.WithCancel(context.Background())
	impatientDone := make(chan error, 1)
	go func() {
		_, _, err := tokens.authenticateToken(impatient, "tok")
		impatientDone <- err
	}()
	select {
	case <-reviewer.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("no TokenReview was sent")
	}
	patientDone := make(chan bool, 1)
	go func() {
		_, ok, _ := tokens.authenticateToken(context.Background(), "tok")
		patientDone <- ok
	}()
	cancel()
	if err := <-impatientDone; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v, want context.Canceled", err)
	}
	close(reviewer.release)
	if ok := <-patientDone; !ok {
		t.Error("the request still waiting was not authenticated")
	}
	select {
	case <-reviewer.calls:
		t.Error("a second TokenReview was sent for the same token")
	default:
	}
}

// TestTokenCacheOnTheSecurePort: what the cache keeps shows through the
// filter: a rejected token costs a TokenReview per request (upstream keeps
// no error), an accepted one one per TTL.
func TestTokenCacheOnTheSecurePort(t *testing.T) {
	reviewer := &scriptedTokenReviewer{answers: []func(string) (*authenticationv1.TokenReview, error){
		func(token string) (*authenticationv1.TokenReview, error) {
			if token == "good" {
				return authenticated(authenticationv1.UserInfo{Username: "alice"})(token)
			}
			return notAuthenticated("token not recognized")(token)
		},
	}}
	ts := startSecurePort(t, AuthConfig{TokenReviewClient: reviewer, TokenCacheTTL: time.Hour, AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{})
	for range 3 {
		if status, _ := ts.get(t, ts.client(nil), "GET", "/healthz", "Authorization", "Bearer good"); status != http.StatusOK {
			t.Errorf("good token: %d", status)
		}
		if status, _ := ts.get(t, ts.client(nil), "GET", "/healthz", "Authorization", "Bearer bad"); status != http.StatusUnauthorized {
			t.Errorf("bad token: %d", status)
		}
	}
	reviewer.mu.Lock()
	defer reviewer.mu.Unlock()
	if want := []string{"good", "bad", "bad", "bad"}; !reflect.DeepEqual(reviewer.asked, want) {
		t.Errorf("TokenReviews for %v, want %v", reviewer.asked, want)
	}
}
