package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// lost marks a sample that never arrived: it sorts after every real latency.
const lost = time.Duration(math.MaxInt64)

// dist is a set of latency samples; lost ones are kept so that percentiles stay honest.
type dist []time.Duration

// pct is the nearest-rank percentile (p in 0..100). With 50 samples P99 is the maximum.
func (d dist) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append(dist(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

func (d dist) lostCount() int {
	n := 0
	for _, v := range d {
		if v == lost {
			n++
		}
	}
	return n
}

// fmtDur prints a latency for the table: ms below 10 s, seconds above; "lost" for a sample
// that never arrived.
func fmtDur(d time.Duration) string {
	switch {
	case d == lost:
		return "lost"
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func (d dist) summary(pcts ...float64) string {
	if len(d) == 0 {
		return "no samples"
	}
	out := ""
	for i, p := range pcts {
		if i > 0 {
			out += " / "
		}
		out += fmt.Sprintf("P%g %s", p, fmtDur(d.pct(p)))
	}
	return out + " / max " + fmtDur(d.pct(100))
}
