package containers

import (
	"context"
	"strings"
	"time"

	"github.com/containerd/log"
)

// stepTrace times the steps of one container operation and logs them in one debug line, so where a slow
// `docker run` spends its time can be read from a --debug log. Without debug logging it costs a clock
// read per step.
type stepTrace struct {
	ctx   context.Context
	op    string
	t0    time.Time
	last  time.Time
	steps strings.Builder
}

func newStepTrace(ctx context.Context, op string) *stepTrace {
	now := time.Now()
	return &stepTrace{ctx: ctx, op: op, t0: now, last: now}
}

// step records the time since the previous step under name.
func (t *stepTrace) step(name string) {
	now := time.Now()
	if log.GetLevel() >= log.DebugLevel {
		if t.steps.Len() > 0 {
			t.steps.WriteByte(' ')
		}
		t.steps.WriteString(name + "=" + now.Sub(t.last).Round(10*time.Microsecond).String())
	}
	t.last = now
}

// done logs the steps and the total.
func (t *stepTrace) done() {
	if log.GetLevel() < log.DebugLevel {
		return
	}
	log.G(t.ctx).WithField("took", time.Since(t.t0).Round(10*time.Microsecond).String()).
		WithField("steps", t.steps.String()).Debug(t.op)
}
