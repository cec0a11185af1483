package plugin

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/image"
)

// authFromHeader decodes X-Registry-Auth (base64url JSON, padding optional). An undecodable header is
// treated as no credentials, as dockerd does.
func authFromHeader(req *http.Request) *image.AuthConfig {
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

// stream writes JSON progress messages, committing the 200 and headers only with the first one, so an
// error that comes before any progress (unknown remote, taken name, wrong privileges) gets its own status.
type stream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func newStream(w http.ResponseWriter) *stream {
	enc := json.NewEncoder(httputils.NewFlushWriter(w))
	enc.SetEscapeHTML(false)
	return &stream{w: w, enc: enc}
}

func (s *stream) start() {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
	}
}

func (s *stream) send(m image.JSONMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start()
	_ = s.enc.Encode(m)
}

// finish reports err: as the response when nothing was streamed yet, else as a stream error message.
func (s *stream) finish(err error) error {
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
