package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr string
	}{
		{"8080", "[8080]", ""},
		{" 8080, 8443 ,", "[8080 8443]", ""},
		{"", "", "at least one port"},
		{"http", "", `"http" is not a port number`},
		{"0", "", `"0" is not a port number`},
		{"70000", "", `"70000" is not a port number`},
	} {
		got, err := parsePorts(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parsePorts(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmtPorts(got) != tc.want {
			t.Errorf("parsePorts(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func fmtPorts(p []uint16) string { return fmt.Sprint(p) }

func TestInstallCopiesTheRunningBinary(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"install", dir}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	got, err := os.ReadFile(filepath.Join(dir, "convoy-drain"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("installed binary differs from the running one")
	}
	info, _ := os.Stat(filepath.Join(dir, "convoy-drain"))
	if info.Mode().Perm()&0o111 == 0 {
		t.Error("installed binary is not executable")
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run(context.Background(), []string{"dance"}, &bytes.Buffer{}); err == nil {
		t.Fatal("want error")
	}
}

// The drain call counts against the PreStop budget: a call that hangs cannot push SIGTERM
// past the timeout.
func TestWaitBudgetIncludesTheDrainCall(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang) // first: Close waits for the handler
	var out bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"wait", "--ports", "1", "--min-delay", "0s", "--settle", "100ms",
		"--timeout", "1s", "--call", srv.URL + "/drain", "--call-timeout", "5s"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the hook took %s with a 1s timeout\n%s", took, out.String())
	}
	if !strings.Contains(out.String(), "drain call to "+srv.URL+"/drain failed") {
		t.Errorf("the failed call is not reported:\n%s", out.String())
	}
}

func TestVersionCommand(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) == "" {
		t.Error("version printed nothing")
	}
}
