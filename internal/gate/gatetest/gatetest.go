// Package gatetest runs a real Prometheus for tests of health gates.
package gatetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// T is what the helpers need of a test: *testing.T and GinkgoT() both have it.
type T interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

// StartPrometheus runs Prometheus scraping target every second until the test ends and
// returns its address.
func StartPrometheus(t T, target string) string {
	t.Helper()
	bin := prometheusBinary(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: [%q]
`, target), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := ClosedPort(t)
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		"--log.level=warn",
	)
	var output lockedBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	// Its own process group, so that cleanup stops it and anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", output.String())
		}
	})

	address := "http://" + listen
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready: %v\n%s", cmd.ProcessState, output.String())
		default:
		}
		if resp, err := http.Get(address + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return address
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready at %s after 30s\n%s", address, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// prometheusBinary finds prometheus: $PROMETHEUS, then PATH, then hack/prometheus.sh (which
// installs it as root). Without it the test fails rather than skips, so that the gates are
// never left untested unnoticed.
func prometheusBinary(t T) string {
	t.Helper()
	if bin := os.Getenv("PROMETHEUS"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("prometheus"); err == nil {
		return bin
	}
	var stderr bytes.Buffer
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "..", "..", "..", "hack", "prometheus.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if bin := lines[len(lines)-1]; err == nil && bin != "" {
		return bin
	}
	t.Fatalf("no prometheus binary: run hack/prometheus.sh (as root) or set PROMETHEUS=/path/to/prometheus (hack/prometheus.sh: %v)\n%s", err, stderr.String())
	return ""
}

// ClosedPort returns a loopback host:port nothing listens on (any more).
func ClosedPort(t T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a process's output while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
