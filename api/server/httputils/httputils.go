// Package httputils holds the request and response helpers shared by the routers: API version from the
// request context, strict JSON decoding, JSON and error writing, form values, and streaming flushes.
package httputils

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berthd/berthd/api/server/httpstatus"
	"github.com/containerd/errdefs"
)

type versionKey struct{}

// WithVersion stores the request's API version; the server calls it for every routed request.
func WithVersion(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// VersionFromContext is the API version the client asked for (the server's own for unversioned paths).
func VersionFromContext(ctx context.Context) string {
	v, _ := ctx.Value(versionKey{}).(string)
	return v
}

// maxJSONBody bounds request bodies decoded as JSON; no API object is anywhere near this size.
const maxJSONBody = 8 << 20

// ReadJSON decodes a request body into v as dockerd does: a body is optional (emptiness is reported as
// io.EOF so callers can accept it), a present body must be declared application/json, must decode, and
// must not be followed by more data. Every failure is an invalid argument.
func ReadJSON(r *http.Request, v any) error {
	// The declared type is checked before the body is read: ParseForm has already consumed a body sent
	// as a form (curl -d), which must not then pass for an empty one.
	if r.Header.Get("Content-Type") != "" && r.ContentLength != 0 {
		if err := CheckForJSON(r); err != nil {
			return err
		}
	}
	if r.Body == nil {
		return io.EOF
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("error reading request body: " + err.Error())
	}
	if len(body) > maxJSONBody {
		return errdefs.ErrInvalidArgument.WithMessage("request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return io.EOF
	}
	if err := CheckForJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("invalid JSON: " + err.Error())
	}
	// Not dec.More(), which takes a stray '}' or ']' for the end of input.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return errdefs.ErrInvalidArgument.WithMessage("unexpected content after JSON")
	}
	return nil
}

// CheckForJSON refuses a body that is not declared application/json (an absent Content-Type is accepted,
// as older clients omit it).
func CheckForJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errdefs.ErrInvalidArgument.WithMessage("unsupported Content-Type header (" + ct + "): must be 'application/json'")
	}
	return nil
}

// WriteJSON writes v as the response body with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	Message string `json:"message"`
}

// WriteError writes err as dockerd does: status from its class, body {"message": ...}, Content-Type
// exactly application/json (the client parses nothing else).
func WriteError(w http.ResponseWriter, err error) {
	code := httpstatus.FromError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ErrorBody{Message: err.Error()})
}

// BoolValue reads a boolean query value as dockerd does: absent, "", "0", "false", "no", "none" are false.
func BoolValue(r *http.Request, k string) bool {
	switch strings.ToLower(strings.TrimSpace(r.FormValue(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// BoolValueOrDefault is BoolValue with a default for an absent key.
func BoolValueOrDefault(r *http.Request, k string, d bool) bool {
	if _, ok := r.Form[k]; !ok {
		return d
	}
	return BoolValue(r, k)
}

// Int64ValueOrDefault parses an integer query value; an absent or empty one is def.
func Int64ValueOrDefault(r *http.Request, k string, def int64) (int64, error) {
	v := r.FormValue(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def, errdefs.ErrInvalidArgument.WithMessage("invalid value for " + k + ": " + v)
	}
	return n, nil
}

// ParseForm parses the query (and form body) and classifies a failure as an invalid argument. A body whose
// Content-Type does not parse is not a form (tar streams, JSON from odd clients): it is left to the handler
// and only the query is read, decided from the header itself rather than from net/http's error text.
func ParseForm(r *http.Request) error {
	if r.PostForm == nil && !isFormBody(r) {
		r.PostForm = url.Values{}
	}
	if err := r.ParseForm(); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return nil
}

// isFormBody reports whether net/http would read r's body as a form, or fail trying: only a Content-Type
// that parses can make it one.
func isFormBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	_, _, err := mime.ParseMediaType(ct)
	return err == nil
}

// FlushHeaders sends the status line and headers now: streaming endpoints (events, wait, progress) must
// answer before they have anything to say, or the Go client blocks.
func FlushHeaders(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushWriter flushes after every write, so each JSON message of a stream reaches the client at once.
type FlushWriter struct {
	W io.Writer
	F http.Flusher
}

// NewFlushWriter wraps w.
func NewFlushWriter(w http.ResponseWriter) *FlushWriter {
	f, _ := w.(http.Flusher)
	return &FlushWriter{W: w, F: f}
}

func (fw *FlushWriter) Write(p []byte) (int, error) {
	n, err := fw.W.Write(p)
	if fw.F != nil {
		fw.F.Flush()
	}
	return n, err
}

// IsEOF reports whether ReadJSON found no body.
func IsEOF(err error) bool { return errors.Is(err, io.EOF) }
