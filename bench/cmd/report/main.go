// Command report turns the output of the bench module's benchmarks into a
// Markdown table of medians and ratios (results.md) and a bar chart of
// ns/op per scenario and library (results.svg). It needs nothing outside
// the standard library.
//
//	go run ./cmd/report -in results.txt -md results.md -svg results.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A cell is the measurements of one variant in one scenario.
type cell struct {
	ns, bytes, allocs, cookie []float64
}

// results holds every measurement of a benchmark run.
type results struct {
	cpu, goos, goarch string
	scenarios         []string // in order of appearance
	variants          []string // in order of appearance
	cells             map[[2]string]*cell
}

var lineRE = regexp.MustCompile(`^BenchmarkSessions/([^/]+)/(\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader) (*results, error) {
	res := &results{cells: map[[2]string]*cell{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []struct {
			prefix string
			dst    *string
		}{{"cpu: ", &res.cpu}, {"goos: ", &res.goos}, {"goarch: ", &res.goarch}} {
			if v, ok := strings.CutPrefix(line, p.prefix); ok {
				*p.dst = v
			}
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		scenario, variant := m[1], m[2]
		if !slices.Contains(res.scenarios, scenario) {
			res.scenarios = append(res.scenarios, scenario)
		}
		if !slices.Contains(res.variants, variant) {
			res.variants = append(res.variants, variant)
		}
		key := [2]string{scenario, variant}
		c := res.cells[key]
		if c == nil {
			c = &cell{}
			res.cells[key] = c
		}
		fields := strings.Fields(m[4])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			switch fields[i+1] {
			case "ns/op":
				c.ns = append(c.ns, v)
			case "B/op":
				c.bytes = append(c.bytes, v)
			case "allocs/op":
				c.allocs = append(c.allocs, v)
			case "cookie-B":
				c.cookie = append(c.cookie, v)
			}
		}
	}
	return res, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) ns(scenario, variant string) float64 {
	if c := r.cells[[2]string{scenario, variant}]; c != nil {
		return median(c.ns)
	}
	return 0
}

// kindOf names where a variant keeps sessions.
func kindOf(variant string) string {
	for _, k := range []string{"cookie", "redis", "postgres"} {
		if strings.Contains(variant, k) {
			return k
		}
	}
	return "memory"
}

// floorOf names the hand-written floor a variant is measured against.
func floorOf(variant string) string { return "floor-" + kindOf(variant) }

// peerOf names the established library that keeps sessions where the
// variant does.
func peerOf(variant string) string {
	return map[string]string{
		"cookie":   "gorilla-cookie-hmac",
		"memory":   "scs-memstore",
		"redis":    "scs-redisstore",
		"postgres": "scs-postgresstore",
	}[kindOf(variant)]
}

// A goal is one of the performance targets, checked against the medians:
// metric(ours) / metric(base) <= limit, or, for allocation goals,
// allocs(ours) - allocs(base) <= limit.
type goal struct {
	scenario   string
	ours, base string // variants
	limit      float64
	metric     func(c *cell) float64
	difference bool
}

func nsOf(c *cell) float64     { return median(c.ns) }
func cookieOf(c *cell) float64 { return median(c.cookie) }
func allocsOf(c *cell) float64 { return median(c.allocs) }

var ours = []string{"starsessions-cookie-msgpack", "starsessions-memory-msgpack"}

// dataOurs are ours reading through Session.Data rather than Session.Value,
// measured in the read scenarios only.
var dataOurs = []string{"starsessions-cookie-msgpack-data", "starsessions-memory-msgpack-data"}

// serverOurs are the variants on database servers, held to the scale-out
// goals: within 1.3x of their floor, at most 0.6x of scs's store.
var serverOurs = []string{"starsessions-redis-msgpack", "starsessions-postgres-msgpack"}

func goals() []goal {
	var gs []goal
	limits := map[string][2]float64{ // against the peers, against the floor
		"read":          {0.25, 1.2},
		"read-parallel": {0.25, 1.2},
		"write":         {0.20, 1.3},
		"new":           {0.40, 1.3},
	}
	for _, s := range []string{"read", "write", "new", "read-parallel"} {
		l := limits[s]
		for _, v := range ours {
			gs = append(gs, goal{s, v, floorOf(v), l[1], nsOf, false})
			for _, peer := range []string{"gorilla-cookie-hmac", "scs-memstore"} {
				gs = append(gs, goal{s, v, peer, l[0], nsOf, false})
			}
			gs = append(gs, goal{s, v, floorOf(v), 10, allocsOf, true})
		}
	}
	for _, s := range []string{"read", "read-parallel"} {
		l := limits[s]
		for _, v := range dataOurs {
			gs = append(gs, goal{s, v, floorOf(v), l[1], nsOf, false}, goal{s, v, peerOf(v), l[0], nsOf, false})
		}
	}
	for _, s := range []string{"read", "write"} {
		for _, v := range serverOurs {
			gs = append(gs, goal{s, v, floorOf(v), 1.3, nsOf, false}, goal{s, v, peerOf(v), 0.6, nsOf, false})
		}
	}
	// An idle timeout costs a read on a server next to nothing: the
	// record is touched once per hundredth of the timeout, not per read.
	for _, v := range serverOurs {
		gs = append(gs, goal{"read", v + "-idle", v, 1.1, nsOf, false})
	}
	// A new session on Redis costs no more than scs's redisstore.
	gs = append(gs, goal{"new", "starsessions-redis-msgpack", "scs-redisstore", 1.0, nsOf, false})
	// Header tokens cost a read no more than cookies do.
	for _, sc := range []string{"read", "read-parallel"} {
		gs = append(gs, goal{sc, "starsessions-memory-msgpack-header", "starsessions-memory-msgpack", 1.05, nsOf, false})
	}
	return append(gs, goal{"new", "starsessions-cookie-msgpack", "floor-cookie", 1.3, cookieOf, false})
}

func (g goal) describe() string {
	switch {
	case g.difference:
		return fmt.Sprintf("%s: %s allocs/op minus %s's", g.scenario, g.ours, g.base)
	case g.metric(&cell{cookie: []float64{1}}) == 1:
		return fmt.Sprintf("Set-Cookie bytes: %s / %s", g.ours, g.base)
	}
	return fmt.Sprintf("%s: %s / %s", g.scenario, g.ours, g.base)
}

func writeMarkdown(w io.Writer, r *results) {
	fmt.Fprintf(w, "# Benchmark results\n\n")
	fmt.Fprintf(w, "Medians of every run in `results.txt`, made by `bench/run.sh` on %s/%s, CPU: %s. ", r.goos, r.goarch, r.cpu)
	fmt.Fprintf(w, "Each request is an `httptest` round trip through the library's middleware; ratios compare medians from the same run. ")
	fmt.Fprintf(w, "`x floor` compares with the hand-written floor that keeps sessions in the same place, `x peer` with the established library that does (gorilla/sessions for cookies, scs for the memory, Redis and PostgreSQL stores). In the read scenarios starsessions' handler reads through `Session.Value`, the read-only accessor; the `-data` variants read through `Session.Data` instead, which makes the middleware encode the session to see whether it changed.\n\n")
	fmt.Fprintf(w, "![ns/op per scenario and library](results.svg)\n\n")
	for _, s := range r.scenarios {
		fmt.Fprintf(w, "## %s\n\n", s)
		fmt.Fprintf(w, "| variant | ns/op | x floor | x peer | x gorilla | x scs-memstore | allocs/op | B/op | cookie bytes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, v := range r.variants {
			c := r.cells[[2]string{s, v}]
			if c == nil {
				continue
			}
			ns := median(c.ns)
			ratio := func(base string) string {
				b := r.ns(s, base)
				if b == 0 || v == "bare" {
					return ""
				}
				return fmt.Sprintf("%.2f", ns/b)
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %.0f | %.0f | %.0f |\n",
				v, ns, ratio(floorOf(v)), ratio(peerOf(v)), ratio("gorilla-cookie-hmac"), ratio("scs-memstore"),
				median(c.allocs), median(c.bytes), median(c.cookie))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Goals\n\n")
	fmt.Fprintf(w, "Each goal compares medians of the same run. Where the base is a peer library, the last column gives the hand-written floor's own ratio to that peer: a goal the floor itself misses cannot be met by a library doing at least the floor's work.\n\n")
	fmt.Fprintf(w, "| goal | value | limit | met | floor's own |\n|---|---:|---:|---|---:|\n")
	for _, g := range goals() {
		co, cb := r.cells[[2]string{g.scenario, g.ours}], r.cells[[2]string{g.scenario, g.base}]
		if co == nil || cb == nil {
			continue
		}
		a, b := g.metric(co), g.metric(cb)
		value := a / b
		if g.difference {
			value = a - b
		}
		met := "yes"
		if value > g.limit {
			met = "**no**"
		}
		floorOwn := ""
		if !strings.HasPrefix(g.base, "floor") {
			if cf := r.cells[[2]string{g.scenario, floorOf(g.ours)}]; cf != nil {
				floorOwn = fmt.Sprintf("%.2f", g.metric(cf)/b)
			}
		}
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %s | %s |\n", g.describe(), value, g.limit, met, floorOwn)
	}
}

// colorOf gives each library one color, whatever the scenario or store:
// this library blue, the floors grey, gorilla orange, scs red.
func colorOf(variant string) string {
	switch {
	case variant == "bare":
		return "#cfcfcf"
	case strings.HasPrefix(variant, "floor"):
		return "#8c8c8c"
	case strings.HasPrefix(variant, "starsessions"):
		return "#1565c0"
	case strings.HasPrefix(variant, "gorilla"):
		return "#ef6c00"
	case strings.HasPrefix(variant, "scs"):
		return "#c62828"
	}
	return "#6a1b9a"
}

// inProcess reports whether a variant keeps sessions without a database
// round trip; those are charted on a scale of their own, which the
// database variants' tens of microseconds would otherwise flatten.
func inProcess(variant string) bool {
	k := kindOf(variant)
	return k == "cookie" || k == "memory"
}

func writeSVG(w io.Writer, r *results) {
	const (
		width    = 900
		left     = 250
		right    = 90
		barH     = 14
		gap      = 4
		groupGap = 30
		top      = 56
	)
	type panel struct {
		title    string
		scenario string
		variants []string
		maxNS    float64
	}
	var panels []panel
	for _, s := range r.scenarios {
		for _, local := range []bool{true, false} {
			p := panel{scenario: s, title: s + ", in process (cookie, memory)"}
			if !local {
				p.title = s + ", over the network (Redis, PostgreSQL)"
			}
			for _, v := range r.variants {
				c := r.cells[[2]string{s, v}]
				if c == nil || inProcess(v) != local && v != "bare" || v == "bare" && !local {
					continue
				}
				p.variants = append(p.variants, v)
				p.maxNS = max(p.maxNS, median(c.ns))
			}
			if len(p.variants) > 0 {
				panels = append(panels, p)
			}
		}
	}
	height := top
	for _, p := range panels {
		height += groupGap + len(p.variants)*(barH+gap)
	}
	height += 20
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="15" font-weight="bold">Time per request (median ns/op, lower is better)</text>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="38" fill="#555">%s/%s, %s. Blue: starsessions; grey: hand-written floors; orange: gorilla/sessions; red: scs. Each panel has its own scale.</text>`+"\n",
		html.EscapeString(r.goos), html.EscapeString(r.goarch), html.EscapeString(r.cpu))
	y := top
	for _, p := range panels {
		y += groupGap
		fmt.Fprintf(w, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y-8, html.EscapeString(p.title))
		scale := float64(width-left-right) / p.maxNS
		for _, v := range p.variants {
			ns := median(r.cells[[2]string{p.scenario, v}].ns)
			bw := int(ns * scale)
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+barH-3, html.EscapeString(v))
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", left, y, max(bw, 1), barH, colorOf(v))
			fmt.Fprintf(w, `<text x="%d" y="%d">%.1f µs</text>`+"\n", left+bw+4, y+barH-3, ns/1000)
			y += barH + gap
		}
	}
	fmt.Fprintln(w, `</svg>`)
}

func main() {
	in := flag.String("in", "results.txt", "benchmark output to read")
	md := flag.String("md", "results.md", "Markdown table to write")
	svg := flag.String("svg", "results.svg", "SVG chart to write")
	scaleIn := flag.String("scale", "", "output of the scale benchmarks to read, if any; its tables go at the end of -md")
	scaleSVG := flag.String("scalesvg", "results-scale.svg", "SVG chart of the scale benchmarks to write")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		log.Fatal(err)
	}
	if len(r.cells) == 0 {
		log.Fatalf("no BenchmarkSessions results in %s", *in)
	}
	for path, write := range map[string]func(io.Writer, *results){*md: writeMarkdown, *svg: writeSVG} {
		out, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		write(out, r)
		if err := out.Close(); err != nil {
			log.Fatal(err)
		}
	}
	if *scaleIn == "" {
		return
	}
	sf, err := os.Open(*scaleIn)
	if err != nil {
		log.Fatal(err)
	}
	defer sf.Close()
	sr, err := parseScale(sf)
	if err != nil {
		log.Fatal(err)
	}
	out, err := os.OpenFile(*md, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		log.Fatal(err)
	}
	writeScaleMarkdown(out, sr)
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
	out, err = os.Create(*scaleSVG)
	if err != nil {
		log.Fatal(err)
	}
	writeScaleSVG(out, sr)
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
}
