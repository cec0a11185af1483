package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/containerd/containerd/remotes/docker"
	remoteserrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/errdefs"
)

// Errors are classified once, here, where they are born: from the registry's HTTP status (and the error
// codes in its body), from containerd's authorizer, or from the network. Everything above (pull, push,
// login, tags, inspect) decides by class or by type, never by the text of a message.

// RegistryError is a registry's answer that is not a success. Its class follows the HTTP status: 401
// Unauthenticated, 403 PermissionDenied, 404 NotFound, 400 InvalidArgument, 429 and 5xx Unavailable.
type RegistryError struct {
	// StatusCode and Status are the HTTP status ("401 Unauthorized").
	StatusCode int
	Status     string
	// Codes are the registry's error codes with their messages ({"errors":[{"code":"DENIED",...}]}).
	Codes []RegistryErrorCode
	// Method and URL are the request's.
	Method, URL string
}

// RegistryErrorCode is one entry of a registry's error body.
type RegistryErrorCode struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is the registry's first error as dockerd prints it ("unauthorized: authentication required"),
// or the status when the body has none.
func (e *RegistryError) Error() string {
	if len(e.Codes) > 0 {
		c := e.Codes[0]
		return strings.ToLower(strings.ReplaceAll(c.Code, "_", " ")) + ": " + c.Message
	}
	return "unexpected status from " + e.Method + " request to " + e.URL + ": " + e.Status
}

// Unwrap gives the class.
func (e *RegistryError) Unwrap() error { return statusClass(e.StatusCode) }

// HasCode reports whether the registry answered with code (e.g. "DENIED", "NAME_UNKNOWN").
func (e *RegistryError) HasCode(code string) bool {
	for _, c := range e.Codes {
		if c.Code == code {
			return true
		}
	}
	return false
}

func statusClass(code int) error {
	switch {
	case code == http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case code == http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	case code == http.StatusNotFound:
		return errdefs.ErrNotFound
	case code == http.StatusTooManyRequests || code >= 500:
		return errdefs.ErrUnavailable
	case code >= 400:
		return errdefs.ErrInvalidArgument
	}
	return errdefs.ErrUnknown
}

// newRegistryError reads a registry's error answer (status and body).
func newRegistryError(code int, status, method, url string, body []byte) *RegistryError {
	e := &RegistryError{StatusCode: code, Status: status, Method: method, URL: url}
	var b struct {
		Errors []RegistryErrorCode `json:"errors"`
	}
	if json.Unmarshal(body, &b) == nil {
		e.Codes = b.Errors
	}
	return e
}

// responseError is newRegistryError for a response of our own requests; it reads (part of) the body.
func responseError(resp *http.Response) *RegistryError {
	err := remoteserrors.NewUnexpectedStatusErr(resp).(remoteserrors.ErrUnexpectedStatus)
	return newRegistryError(err.StatusCode, err.Status, err.RequestMethod, err.RequestURL, err.Body)
}

// classified is an error given a class it did not carry, keeping its own message and chain.
type classified struct {
	class error
	err   error
}

func (c classified) Error() string   { return c.err.Error() }
func (c classified) Unwrap() []error { return []error{c.class, c.err} }

// classify gives an error from containerd's registry client, the authorizer or the network its class:
// an unexpected status becomes a RegistryError; refused or missing credentials are Unauthenticated; a
// registry that cannot be reached is Unavailable. Cancellation, errors already classified and containerd's
// own classes (a resolve's NotFound) are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var re *RegistryError
	if errors.As(err, &re) {
		return err
	}
	var us remoteserrors.ErrUnexpectedStatus
	if errors.As(err, &us) {
		return newRegistryError(us.StatusCode, us.Status, us.RequestMethod, us.RequestURL, us.Body)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, docker.ErrInvalidAuthorization) {
		return classified{errdefs.ErrUnauthenticated, err}
	}
	var (
		oe *net.OpError
		de *net.DNSError
		ne net.Error
	)
	if errors.As(err, &oe) || errors.As(err, &de) || (errors.As(err, &ne) && ne.Timeout()) {
		return classified{errdefs.ErrUnavailable, err}
	}
	return err
}

// isAuthError reports a refusal of credentials (missing, wrong, or not enough for the repository).
func isAuthError(err error) bool {
	return errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err)
}

// unauthenticated is refused credentials as Unauthenticated, in the registry's own words or dockerd's
// "unauthorized: authentication required" when it gave none.
func unauthenticated(err error) error {
	var re *RegistryError
	if errors.As(err, &re) && len(re.Codes) > 0 {
		return errdefs.ErrUnauthenticated.WithMessage(re.Error())
	}
	return errdefs.ErrUnauthenticated.WithMessage("unauthorized: authentication required")
}
