// Package browsertest renders pages in Debian's headless Chromium for
// tests that check what a person would see, and saves a screenshot.
package browsertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Timeout bounds one Chromium run.
const Timeout = 60 * time.Second

// Chromium returns the browser's path, skipping the test when it is
// missing (failing when CI=true: CI installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed (CI installs Debian's chromium)")
	}
	t.Skip("chromium not installed; skipping the headless-browser test")
	return ""
}

// ScreenshotDir is $GSLB_SCREENSHOT_DIR when set (so the pictures can be
// looked at), else a temporary directory of the test.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GSLB_SCREENSHOT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Render loads url in headless Chromium, saves a PNG screenshot named
// name+".png" and the rendered DOM as name+".html" in ScreenshotDir, and
// returns the DOM. One run does both: Chromium's start-up dominates.
func Render(t testing.TB, url, name string) string {
	t.Helper()
	chromium := Chromium(t)
	dir := ScreenshotDir(t)
	shot := filepath.Join(dir, name+".png")
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		"--dump-dom", "--screenshot=" + shot, "--window-size=1200,900",
		url,
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium timed out; stderr:\n%s", tail(stderr.String()))
	}
	if err != nil {
		t.Fatalf("chromium: %v; stderr:\n%s", err, tail(stderr.String()))
	}
	dom := string(out)
	if err := os.WriteFile(filepath.Join(dir, name+".html"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(data) < 1000 || string(data[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(data))
	}
	t.Logf("screenshot: %s", shot)
	return dom
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
