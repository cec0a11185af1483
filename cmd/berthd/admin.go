package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/berthd/berthd/daemon/config"
	"github.com/containerd/log"
	"github.com/sirupsen/logrus"
)

// setLogFormat applies log-format and raw-logs as dockerd: text (full timestamps, no colours with
// raw-logs) or JSON lines.
func setLogFormat(cfg *config.Config) {
	if cfg.LogFormat == "json" {
		_ = log.SetFormat(log.JSONFormat)
		return
	}
	log.L.Logger.SetFormatter(&logrus.TextFormatter{
		TimestampFormat: log.RFC3339NanoFixed,
		DisableColors:   cfg.RawLogs,
		FullTimestamp:   true,
	})
}

// applyProcessOptions sets what the options change in the daemon process itself: its OOM score and the
// proxy environment (read by every HTTP client berthd makes to registries).
func applyProcessOptions(ctx context.Context, cfg *config.Config) error {
	if cfg.OOMScoreAdjust != 0 {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(cfg.OOMScoreAdjust)), 0o644); err != nil {
			return fmt.Errorf("failed to set oom-score-adjust: %w", err)
		}
	}
	for _, p := range []struct{ v, env string }{
		{cfg.Proxies.HTTPProxy, "HTTP_PROXY"}, {cfg.Proxies.HTTPSProxy, "HTTPS_PROXY"}, {cfg.Proxies.NoProxy, "NO_PROXY"},
	} {
		if p.v != "" {
			log.G(ctx).WithField("variable", p.env).Info("proxy configured from daemon configuration")
			os.Setenv(p.env, p.v)
		}
	}
	return nil
}
