package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// AccessReviewer sends a SubjectAccessReview to the API server and returns
// its answer; errors as for TokenReviewer.
type AccessReviewer interface {
	CreateSubjectAccessReview(ctx context.Context, review *authorizationv1.SubjectAccessReview) (*authorizationv1.SubjectAccessReview, error)
}

// decision is an authorizer's answer.
type decision int

const (
	decisionNoOpinion decision = iota
	decisionAllow
	decisionDeny
)

// requestAttributes is what a request asks to do, as the kubelet describes
// it: a verb on a subresource of the node object (authorizer.Attributes of a
// resource request; namespace and API group are always empty).
type requestAttributes struct {
	User        *userInfo
	Verb        string
	APIVersion  string
	Resource    string
	Subresource string
	Name        string
	// Path is the request's path; it is not reviewed.
	Path string
}

// requestAuthorizer decides whether attrs are allowed; an error is a
// failure to decide (authorizer.Authorizer).
type requestAuthorizer interface {
	authorize(ctx context.Context, attrs requestAttributes) (decision, error)
}

// alwaysAllow allows everything (--authorization-mode=AlwaysAllow).
type alwaysAllow struct{}

func (alwaysAllow) authorize(context.Context, requestAttributes) (decision, error) {
	return decisionAllow, nil
}

// accessReviewCacheSize is how many decisions the webhook authorizer keeps,
// the least recently used dropped first: upstream's.
const accessReviewCacheSize = 8192

// maxCachedAttributesSize is the longest the requester-controlled
// attributes may be, added up, for a decision to be cached: upstream's.
const maxCachedAttributesSize = 10000

// webhookAuthorizer asks the API server with SubjectAccessReviews
// (plugin/pkg/authorizer/webhook as authorizerfactory.DelegatingAuthorizerConfig
// builds it: no match conditions, no opinion on errors): allowed is allow,
// denied is deny, anything else no opinion. Allow and deny decisions are
// reused for their TTLs, keyed by the review's whole spec.
type webhookAuthorizer struct {
	reviewer          AccessReviewer
	allowTTL, denyTTL time.Duration
	backoff           wait.Backoff
	decisions         *cache.LRUExpireCache
	logger            klog.Logger
}

func newWebhookAuthorizer(logger klog.Logger, reviewer AccessReviewer, allowTTL, denyTTL time.Duration, backoff wait.Backoff, clk cache.Clock) *webhookAuthorizer {
	return &webhookAuthorizer{
		reviewer: reviewer, allowTTL: allowTTL, denyTTL: denyTTL, backoff: backoff, logger: logger,
		decisions: cache.NewLRUExpireCacheWithClock(accessReviewCacheSize, clk),
	}
}

func (w *webhookAuthorizer) authorize(ctx context.Context, attrs requestAttributes) (decision, error) {
	spec := accessReviewSpec(attrs)
	key, err := json.Marshal(spec)
	if err != nil {
		return decisionNoOpinion, fmt.Errorf("SubjectAccessReview cache key: %w", err)
	}
	var status authorizationv1.SubjectAccessReviewStatus
	if cached, ok := w.decisions.Get(string(key)); ok {
		status = cached.(authorizationv1.SubjectAccessReviewStatus)
	} else {
		var result *authorizationv1.SubjectAccessReview
		err := withWebhookBackoff(ctx, w.backoff, func() error {
			var err error
			result, err = w.reviewer.CreateSubjectAccessReview(ctx, &authorizationv1.SubjectAccessReview{Spec: spec})
			return err
		})
		if err != nil {
			w.logger.Error(err, "Failed to make webhook authorizer request")
			return decisionNoOpinion, err
		}
		status = result.Status
		if cacheableAttributes(attrs) {
			ttl := w.denyTTL
			if status.Allowed {
				ttl = w.allowTTL
			}
			w.decisions.Add(string(key), status, ttl)
		}
	}
	switch {
	case status.Denied && status.Allowed:
		return decisionDeny, errors.New("webhook subject access review returned both allow and deny response")
	case status.Denied:
		return decisionDeny, nil
	case status.Allowed:
		return decisionAllow, nil
	}
	return decisionNoOpinion, nil
}

// accessReviewSpec is the review the apiserver's webhook authorizer sends
// for a resource request.
func accessReviewSpec(attrs requestAttributes) authorizationv1.SubjectAccessReviewSpec {
	spec := authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb:        attrs.Verb,
			Version:     attrs.APIVersion,
			Resource:    attrs.Resource,
			Subresource: attrs.Subresource,
			Name:        attrs.Name,
		},
	}
	if u := attrs.User; u != nil {
		spec.User, spec.UID, spec.Groups = u.Name, u.UID, u.Groups
		if u.Extra != nil {
			spec.Extra = make(map[string]authorizationv1.ExtraValue, len(u.Extra))
			for k, v := range u.Extra {
				spec.Extra[k] = v
			}
		}
	}
	return spec
}

// cacheableAttributes reports whether the attributes a requester controls
// are short enough to cache the decision about them.
func cacheableAttributes(attrs requestAttributes) bool {
	size := len(attrs.Verb) + len(attrs.APIVersion) + len(attrs.Resource) + len(attrs.Subresource) + len(attrs.Name) + len(attrs.Path)
	return size < maxCachedAttributesSize
}
