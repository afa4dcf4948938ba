package zendesk

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrTemporary marks failures worth retrying soon: 5xx answers, network
	// errors, a page cut off in transfer. Test with errors.Is.
	ErrTemporary = errors.New("temporary failure")
	// ErrAuth marks a 401 or 403: the email or token is wrong or lacks
	// access. Retrying cannot help until an operator fixes the config.
	ErrAuth = errors.New("authentication failed")
)

// RateLimitError is a 429 from Zendesk. The cursor is kept; the next poll
// must not start before RetryAfter has passed. Find it with errors.As.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited: retry after %s", e.RetryAfter)
}

// apiError is a classified failure; its text names the host, and kind makes
// errors.Is(err, ErrTemporary) or errors.Is(err, ErrAuth) work without
// repeating the sentinel's words.
type apiError struct {
	host string
	msg  string
	kind error // ErrTemporary, ErrAuth, or nil for a permanent refusal
}

func (e *apiError) Error() string { return "zendesk " + e.host + ": " + e.msg }

func (e *apiError) Unwrap() error { return e.kind }
