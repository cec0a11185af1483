package v1

import (
	"errors"
	"time"

	"github.com/berthd/berthd/metrics"
)

// observeCall records a finished call (deferred by Plugin.do) with its outcome: ok, error (the plugin
// answered with an error), timeout, unreachable (never sent) or lost (sent, no complete answer).
func observeCall(plugin, method string, start time.Time, oc *outcome, err *error) {
	metrics.PluginCall(plugin, method, outcomeLabel(*oc, *err), time.Since(start))
}

func outcomeLabel(oc outcome, err error) string {
	var te *timeoutError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &te):
		return "timeout"
	case oc == replied:
		return "error"
	case oc == notSent:
		return "unreachable"
	default:
		return "lost"
	}
}
