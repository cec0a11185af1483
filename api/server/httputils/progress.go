package httputils

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/berthd/berthd/api/types/image"
)

// RegistryAuth decodes X-Registry-Auth (base64url JSON, padding optional). An undecodable header is
// treated as no credentials, as dockerd does.
func RegistryAuth(req *http.Request) *image.AuthConfig {
	h := req.Header.Get("X-Registry-Auth")
	if h == "" {
		return nil
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil
	}
	var a image.AuthConfig
	if json.Unmarshal(b, &a) != nil {
		return nil
	}
	return &a
}

// ProgressStream writes Docker JSON messages (pull, push, load, import, plugin install), committing the 200
// and headers only with the first one, so an error that comes before any progress still gets its own status.
// Send may be called from several goroutines.
type ProgressStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

// NewProgressStream wraps w; every message is flushed as it is written.
func NewProgressStream(w http.ResponseWriter) *ProgressStream {
	enc := json.NewEncoder(NewFlushWriter(w))
	enc.SetEscapeHTML(false)
	return &ProgressStream{w: w, enc: enc}
}

func (s *ProgressStream) start() {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
	}
}

// Send writes one message.
func (s *ProgressStream) Send(m image.JSONMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start()
	_ = s.enc.Encode(m)
}

// Finish reports err: as the response (status from its class) when nothing was streamed yet, else as an
// error message in the stream, which the CLI prints and exits 1 on.
func (s *ProgressStream) Finish(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.start()
		return nil
	}
	if !s.started {
		return err
	}
	_ = s.enc.Encode(image.JSONMessage{Error: &image.JSONError{Message: err.Error()}, ErrorMessage: err.Error()})
	return nil
}
