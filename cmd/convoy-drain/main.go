// Command convoy-drain is the PreStop helper convoy injects into pods.
//
//	convoy-drain install <dir>                        copy this binary into dir (init container)
//	convoy-drain wait --ports 8080,8443 --min-delay 5s --timeout 30s [--call http://127.0.0.1:8080/drain]
//	convoy-drain http --url http://127.0.0.1:8080/drain --wait 10s
//	convoy-drain sleep --duration 10s                 PreStop sleep for clusters without the native action
//
// It is static and needs nothing from the application image. It always exits 0 once it has
// waited: a PreStop hook's exit status changes nothing, and the kubelet sends SIGTERM next.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/convoy-dev/convoy/internal/drain"
	"github.com/convoy-dev/convoy/internal/version"
)

func main() {
	if err := run(context.Background(), os.Args[1:], visibleOutput()); err != nil {
		fmt.Fprintln(os.Stderr, "convoy-drain:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: convoy-drain install|wait|http|sleep|version [flags]")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	switch cmd {
	case "install":
		if len(args) != 1 {
			return fmt.Errorf("usage: convoy-drain install <dir>")
		}
		return install(args[0])
	case "wait":
		ports := fs.String("ports", "", "comma-separated local ports to watch")
		minDelay := fs.Duration("min-delay", 5*time.Second, "time always waited, for endpoint removal to propagate")
		settle := fs.Duration("settle", 2*time.Second, "how long the ports must stay quiet (no new or busy connection)")
		idleAfter := fs.Duration("idle-after", 2*time.Second, "count connections with traffic this recent as busy; 0 leaves open connections to the app's SIGTERM handling")
		timeout := fs.Duration("timeout", 30*time.Second, "upper bound of the whole wait")
		poll := fs.Duration("poll", 250*time.Millisecond, "interval between scans of listeners and connection counters")
		connScan := fs.Duration("connection-scan-interval", time.Second, "interval between scans of the connections themselves")
		call := fs.String("call", "", "drain endpoint of the application to call first, for example http://127.0.0.1:8080/drain")
		callTimeout := fs.Duration("call-timeout", 5*time.Second, "timeout of the drain call")
		if err := fs.Parse(args); err != nil {
			return err
		}
		list, err := parsePorts(*ports)
		if err != nil {
			return err
		}
		// Without socket diagnostics every scan fails, and the wait runs to its timeout.
		var scan func(bool) (drain.Snapshot, error)
		if scanner, err := drain.NewScanner(list); err == nil {
			defer scanner.Close()
			scan = scanner.Scan
		} else {
			scan = func(bool) (drain.Snapshot, error) { return drain.Snapshot{}, err }
		}
		// The drain call counts against the timeout: the PreStop budget is the whole hook.
		deadline := time.Now().Add(*timeout)
		if *call != "" {
			drain.Call(ctx, *call, min(*callTimeout, *timeout), out)
		}
		drain.WaitForDrain(ctx, drain.WaitOptions{
			Ports: list, MinDelay: *minDelay, Settle: *settle, IdleAfter: *idleAfter,
			Timeout: time.Until(deadline), Poll: *poll, ConnectionScanInterval: *connScan, Scan: scan, Log: out,
		})
		return nil
	case "http":
		url := fs.String("url", "", "drain endpoint of the application, for example http://127.0.0.1:8080/drain")
		wait := fs.Duration("wait", 10*time.Second, "time waited after the call")
		timeout := fs.Duration("request-timeout", 5*time.Second, "timeout of the drain call")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *url == "" {
			return fmt.Errorf("--url is required")
		}
		return drain.CallAndWait(ctx, drain.HTTPOptions{URL: *url, RequestTimeout: *timeout, Wait: *wait, Log: out})
	case "version":
		fmt.Fprintln(out, version.String())
		return nil
	case "sleep":
		d := fs.Duration("duration", 0, "how long to sleep")
		if err := fs.Parse(args); err != nil {
			return err
		}
		fmt.Fprintf(out, "convoy-drain: sleeping %s\n", *d)
		time.Sleep(*d)
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func parsePorts(s string) ([]uint16, error) {
	var ports []uint16
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.ParseUint(f, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("--ports: %q is not a port number", f)
		}
		ports = append(ports, uint16(p))
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("--ports: at least one port is required")
	}
	return ports, nil
}

// visibleOutput is where the helper reports. The kubelet discards a successful exec hook's
// output, so lines also go to the stdout of the container's main process (PID 1 of its PID
// namespace), which `kubectl logs` and log collectors show.
func visibleOutput() io.Writer {
	main, err := os.OpenFile("/proc/1/fd/1", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil || os.Getpid() == 1 {
		return os.Stdout
	}
	return io.MultiWriter(os.Stdout, main)
}

// install copies the running binary into dir, so that the application container can run it
// from a shared emptyDir without convoy's image or any tool in the application image.
func install(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	target := filepath.Join(dir, "convoy-drain")
	tmp := target + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, target)
}
