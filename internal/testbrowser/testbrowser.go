// Package testbrowser starts Debian's headless Chromium for the end-to-end
// tests of the example and the integrations. It is a module of its own, so
// that the core module never depends on a browser driver.
package testbrowser

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/go-rod/rod"
	"github.com/go-rod/rod/lib/launcher"
)

// Launch starts Chromium for t and closes it when t ends. Without a
// browser it skips t, saying what to install; SESSIONS_REQUIRE_BROWSER=1
// makes that a failure.
func Launch(t *testing.T) *rod.Browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium not found; install it with: apt-get install -y chromium"
		if os.Getenv("SESSIONS_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + " (SESSIONS_REQUIRE_BROWSER=1 makes this a failure)")
		}
		t.Skip(msg)
	}
	// The flags keep Chromium off the network, which this machine's closed
	// network would refuse many times over.
	l := launcher.New().Bin(bin).Headless(true).NoSandbox(true).Leakless(false).
		Set("disable-gpu").Set("no-first-run").Set("disable-background-networking").
		Set("disable-component-update").Set("disable-sync").Set("disable-quic").
		UserDataDir(t.TempDir())
	u, err := l.Launch()
	if err != nil {
		t.Fatalf("launching chromium: %v", err)
	}
	b := rod.New().ControlURL(u).Timeout(60 * time.Second)
	if err := b.Connect(); err != nil {
		l.Kill()
		t.Fatalf("connecting to chromium: %v", err)
	}
	t.Cleanup(func() {
		b.Close()
		l.Kill()
		l.Cleanup()
	})
	return b
}

// Open opens url in a new tab of b, waits for it to load, and closes the
// tab when t ends.
func Open(t *testing.T, b *rod.Browser, url string) *rod.Page {
	t.Helper()
	page := b.MustPage(url)
	t.Cleanup(func() { page.Close() })
	page.MustWaitLoad()
	return page
}
