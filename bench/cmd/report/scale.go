package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// scaleResults holds the runs of BenchmarkScale, BenchmarkIdleTouches and
// BenchmarkCleanupReads: per benchmark name, every metric's values.
type scaleResults struct {
	names   []string // in order of appearance
	metrics map[string]map[string][]float64
}

var benchLineRE = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func parseScale(r io.Reader) (*scaleResults, error) {
	res := &scaleResults{metrics: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLineRE.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(m[1], "BenchmarkSessions/") {
			continue
		}
		name := m[1]
		if res.metrics[name] == nil {
			res.metrics[name] = map[string][]float64{}
			res.names = append(res.names, name)
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", sc.Text(), err)
			}
			res.metrics[name][fields[i+1]] = append(res.metrics[name][fields[i+1]], v)
		}
	}
	return res, sc.Err()
}

func (r *scaleResults) get(name, metric string) (float64, bool) {
	vs := r.metrics[name][metric]
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

// scalePoint names one store's measurement at one size in one scenario.
func scaleName(store string, size int, scenario string) string {
	return fmt.Sprintf("BenchmarkScale/%s/sessions=%d/%s", store, size, scenario)
}

var scaleSizes = []int{1000, 10000, 100000, 1000000}

// stores returns the stores BenchmarkScale measured, in order.
func (r *scaleResults) stores() []string {
	var out []string
	for _, n := range r.names {
		if rest, ok := strings.CutPrefix(n, "BenchmarkScale/"); ok {
			store := rest[:strings.IndexByte(rest, '/')]
			if !slices.Contains(out, store) {
				out = append(out, store)
			}
		}
	}
	return out
}

func writeScaleMarkdown(w io.Writer, r *scaleResults) {
	fmt.Fprintf(w, "\n## Cost as the store grows\n\n")
	fmt.Fprintf(w, "From `results-scale.txt` (`BenchmarkScale`): one session read, and changed, while its store holds 1,000 to 1,000,000 sessions of others, put there below the library; medians. `read-idle` reads through a manager with a 30-minute idle timeout. B/session is what the store grew by per session: the process's heap for stores in the process, Redis's `used_memory`, PostgreSQL's `pg_total_relation_size`. GC is a forced collection of the whole process, for stores in the process. `syncmap` is the memory backend's design before its records moved into pointer-free arenas, kept in the bench to compare with.\n\n")
	fmt.Fprintf(w, "![read latency by number of stored sessions](results-scale.svg)\n\n")
	fmt.Fprintf(w, "| store | sessions | read ns/op | write ns/op | read-idle ns/op | B/session | GC ms |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, st := range r.stores() {
		for _, size := range scaleSizes {
			read, ok := r.get(scaleName(st, size, "read"), "ns/op")
			if !ok {
				continue
			}
			cells := []string{st, strconv.Itoa(size), fmt.Sprintf("%.0f", read)}
			for _, sc := range []string{"write", "read-idle"} {
				if v, ok := r.get(scaleName(st, size, sc), "ns/op"); ok {
					cells = append(cells, fmt.Sprintf("%.0f", v))
				} else {
					cells = append(cells, "")
				}
			}
			bs, _ := r.get(scaleName(st, size, "read"), "B/session")
			cells = append(cells, fmt.Sprintf("%.0f", bs))
			if gc, ok := r.get(scaleName(st, size, "read"), "gc-ms"); ok {
				cells = append(cells, fmt.Sprintf("%.1f", gc))
			} else {
				cells = append(cells, "")
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	fmt.Fprintf(w, "\n### Idle-timeout touches\n\n`BenchmarkIdleTouches`: read-only requests on one session with a 30-minute idle timeout, and what the store did to extend it.\n\n| store | reads | touches |\n|---|---:|---:|\n")
	for _, n := range r.names {
		if store, ok := strings.CutPrefix(n, "BenchmarkIdleTouches/"); ok {
			reads, _ := r.get(n, "reads")
			touches, ok := r.get(n, "pexpires")
			if !ok {
				touches, _ = r.get(n, "updates")
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f |\n", store, reads, touches)
		}
	}
	fmt.Fprintf(w, "\n### Reads while expired sessions are cleaned up\n\n`BenchmarkCleanupReads`: a store holding 1,000,000 expired sessions; read latency of a live one at rest, then while the memory backend's sweep or PostgreSQL's cleanup deletes them all (µs).\n\n| store | p50 at rest | p99 at rest | p50 during | p99 during | p99 ratio | cleanup ms |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range r.names {
		if store, ok := strings.CutPrefix(n, "BenchmarkCleanupReads/"); ok {
			g := func(m string) float64 { v, _ := r.get(n, m); return v }
			ratio := 0.0
			if g("rest-p99-us") > 0 {
				ratio = g("cleanup-p99-us") / g("rest-p99-us")
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f |\n", store,
				g("rest-p50-us"), g("rest-p99-us"), g("cleanup-p50-us"), g("cleanup-p99-us"), ratio, g("cleanup-ms"))
		}
	}
}

// writeScaleSVG draws read latency against the number of stored sessions,
// on logarithmic axes, one line per store.
func writeScaleSVG(w io.Writer, r *scaleResults) {
	const (
		width, height            = 900, 460
		left, right, top, bottom = 70, 230, 40, 50
	)
	stores := r.stores()
	minY, maxY := math.Inf(1), 0.0
	for _, st := range stores {
		for _, size := range scaleSizes {
			if v, ok := r.get(scaleName(st, size, "read"), "ns/op"); ok {
				minY, maxY = min(minY, v), max(maxY, v)
			}
		}
	}
	if maxY == 0 {
		return
	}
	lo, hi := math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
	if hi == lo {
		hi++
	}
	x := func(size int) float64 {
		return left + (math.Log10(float64(size))-3)/3*(width-left-right)
	}
	y := func(ns float64) float64 {
		return top + (hi-math.Log10(ns))/(hi-lo)*(height-top-bottom)
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="15">Read latency (ns/op, log scale) by stored sessions: flat means the store's size costs nothing</text>`+"\n", left)
	for e := lo; e <= hi; e++ {
		yy := y(math.Pow(10, e))
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, yy, width-right, yy, left-6, yy+4, humanNS(math.Pow(10, e)))
	}
	for _, size := range scaleSizes {
		xx := x(size)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e0e0e0"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			xx, top, xx, height-bottom, xx, height-bottom+18, humanCount(size))
	}
	for i, st := range stores {
		var pts []string
		var lastX, lastY float64
		for _, size := range scaleSizes {
			if v, ok := r.get(scaleName(st, size, "read"), "ns/op"); ok {
				lastX, lastY = x(size), y(v)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", lastX, lastY))
			}
		}
		if len(pts) == 0 {
			continue
		}
		color := colorOf(st)
		dash := ""
		if strings.Contains(st, "syncmap") {
			color, dash = "#90a4ae", ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", width-right+10, top+16*i+12, color, html.EscapeString(st))
	}
	fmt.Fprintln(w, `</svg>`)
}

func humanNS(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.0f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func humanCount(n int) string {
	switch {
	case n >= 1000000:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}
