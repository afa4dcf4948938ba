package main

import (
	"time"

	"github.com/culprithq/culprit/correlate"
)

// visibleDeploys is what the CI would have reported of deploys by at: the
// deploys that started before it, each with the hosts switched before it
// and its finish only if that came before it too. Replaying history
// through the daemon (the backtest, the end-to-end tests) must not let it
// see a rollout's future.
func visibleDeploys(all []correlate.Deploy, at time.Time) []correlate.Deploy {
	var out []correlate.Deploy
	for _, d := range all {
		if !d.StartedAt.Before(at) {
			continue
		}
		sofar := d
		sofar.Hosts = nil
		for _, h := range d.Hosts {
			if h.At.Before(at) {
				sofar.Hosts = append(sofar.Hosts, h)
			}
		}
		if !d.FinishedAt.Before(at) {
			sofar.FinishedAt = time.Time{}
		}
		out = append(out, sofar)
	}
	return out
}
