package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// TokenReviewer sends a TokenReview to the API server and returns its
// answer. Errors should wrap what k8s.io/client-go/rest returns (a
// k8s.io/apimachinery StatusError for an API answer other than success), so
// that transient ones are told apart and retried.
type TokenReviewer interface {
	CreateTokenReview(ctx context.Context, review *authenticationv1.TokenReview) (*authenticationv1.TokenReview, error)
}

// tokenAuthenticator decides who a bearer token belongs to, as
// requestAuthenticator does for a request (authenticator.Token).
type tokenAuthenticator interface {
	authenticateToken(ctx context.Context, token string) (*userInfo, bool, error)
}

// tokenWebhook authenticates tokens with TokenReviews, retrying transient
// errors (plugin/pkg/authenticator/token/webhook without audiences, as the
// kubelet has none).
type tokenWebhook struct {
	reviewer TokenReviewer
	backoff  wait.Backoff
	logger   klog.Logger
}

// authenticateToken is the API server's answer: its user when it
// authenticated the token; not ok, with the answer's error when it gives
// one, when it did not; an error when it could not be asked.
func (w *tokenWebhook) authenticateToken(ctx context.Context, token string) (*userInfo, bool, error) {
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	var result *authenticationv1.TokenReview
	err := withWebhookBackoff(ctx, w.backoff, func() error {
		var err error
		result, err = w.reviewer.CreateTokenReview(ctx, review)
		return err
	})
	if err != nil {
		w.logger.Error(err, "Failed to make webhook authenticator request")
		return nil, false, err
	}
	status := result.Status
	if !status.Authenticated {
		if status.Error != "" {
			return nil, false, errors.New(status.Error)
		}
		return nil, false, nil
	}
	var extra map[string][]string
	if status.User.Extra != nil {
		extra = make(map[string][]string, len(status.User.Extra))
		for k, v := range status.User.Extra {
			extra[k] = v
		}
	}
	return &userInfo{Name: status.User.Username, UID: status.User.UID, Groups: status.User.Groups, Extra: extra}, true, nil
}

// sharedTokenLookupTimeout bounds one TokenReview shared by the requests
// that wait for it, whichever of them gives up.
const sharedTokenLookupTimeout = 30 * time.Second

// tokenAnswer is one answer of the token authenticator.
type tokenAnswer struct {
	user *userInfo
	ok   bool
	err  error
}

// cachedTokens reuses the answers of a token authenticator for ttl, keyed
// by an HMAC of the token with a key of the process so that tokens are not
// kept in memory, and asks once for concurrent requests with the same token
// (token/cache with cacheErrs off and one TTL for success and failure, as
// the kubelet has it): answers that authenticated and answers that did not
// are reused; errors, which include a rejection that says why, are not.
// A ttl of 0 reuses nothing.
type cachedTokens struct {
	next    tokenAuthenticator
	ttl     time.Duration
	answers *cache.Expiring
	lookups singleflight.Group
	hashKey []byte
	logger  klog.Logger
}

func newCachedTokens(logger klog.Logger, next tokenAuthenticator, ttl time.Duration, clk clock.Clock) (*cachedTokens, error) {
	hashKey := make([]byte, 32)
	if _, err := rand.Read(hashKey); err != nil {
		return nil, fmt.Errorf("token cache key: %w", err)
	}
	return &cachedTokens{next: next, ttl: ttl, answers: cache.NewExpiringWithClock(clk), hashKey: hashKey, logger: logger}, nil
}

func (c *cachedTokens) authenticateToken(ctx context.Context, token string) (*userInfo, bool, error) {
	a := c.answer(ctx, token)
	if !a.ok || a.err != nil {
		return nil, false, a.err
	}
	return a.user, true, nil
}

// answer is the cached answer for token, else the one of a lookup shared
// with every request for the same token meanwhile.
func (c *cachedTokens) answer(ctx context.Context, token string) *tokenAnswer {
	key := c.key(token)
	if a, ok := c.answers.Get(key); ok {
		return a.(*tokenAnswer)
	}
	lookup := c.lookups.DoChan(key, func() (any, error) { return c.lookup(key, token), nil })
	select {
	case result := <-lookup:
		return result.Val.(*tokenAnswer)
	case <-ctx.Done():
		return &tokenAnswer{err: ctx.Err()}
	}
}

// lookup asks next under its own deadline: the requests waiting for it may
// give up one by one without cancelling it for the others.
func (c *cachedTokens) lookup(key, token string) (a *tokenAnswer) {
	a = &tokenAnswer{}
	// singleflight runs this on a goroutine of its own, where a panic
	// would end the process.
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error(fmt.Errorf("%v", r), "Token authentication panicked")
			a = &tokenAnswer{err: errors.New("authentication failed unexpectedly")}
		}
	}()
	if cached, ok := c.answers.Get(key); ok { // it may have been stored meanwhile
		return cached.(*tokenAnswer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTokenLookupTimeout)
	defer cancel()
	a.user, a.ok, a.err = c.next.authenticateToken(ctx, token)
	if a.err == nil && c.ttl > 0 {
		c.answers.Set(key, a, c.ttl)
	}
	return a
}

// key is the HMAC-SHA256 of token.
func (c *cachedTokens) key(token string) string {
	h := hmac.New(sha256.New, c.hashKey)
	h.Write([]byte(token))
	return string(h.Sum(nil))
}
