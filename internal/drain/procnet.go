// Package drain holds the logic of convoy-drain, the PreStop helper that convoy injects into
// pods: wait until the container has no ESTABLISHED TCP connection on its serving ports, or
// call the application's drain endpoint and wait.
//
// It reads /proc/net/tcp and /proc/net/tcp6 directly, so the application image needs no
// netstat or ss. All containers of a pod share one network namespace, so the helper sees the
// application's sockets.
package drain

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// tcpEstablished is the kernel's TCP_ESTABLISHED state as printed in /proc/net/tcp*.
const tcpEstablished = "01"

// DefaultProcNetFiles are the socket tables of the current network namespace.
var DefaultProcNetFiles = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// Counts maps a local port to its number of ESTABLISHED connections.
type Counts map[uint16]int

// Total is the sum over all ports.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func (c Counts) String() string {
	if len(c) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(c))
	ports := make([]uint16, 0, len(c))
	for p := range c {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%d:%d", p, c[p]))
	}
	return strings.Join(parts, " ")
}

// CountEstablished parses one /proc/net/tcp or tcp6 table and counts ESTABLISHED sockets whose
// local port is in ports. Connections the pod opened to others (local port ephemeral) do not
// count: only connections to the serving ports keep a client waiting.
func CountEstablished(r io.Reader, ports map[uint16]bool, into Counts) error {
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // header line
			first = false
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		if fields[3] != tcpEstablished {
			continue
		}
		local := fields[1]
		i := strings.LastIndexByte(local, ':')
		if i < 0 {
			return fmt.Errorf("malformed local address %q", local)
		}
		port, err := strconv.ParseUint(local[i+1:], 16, 16)
		if err != nil {
			return fmt.Errorf("malformed local port in %q: %w", local, err)
		}
		if ports[uint16(port)] {
			into[uint16(port)]++
		}
	}
	return sc.Err()
}

// ReadCounts reads the given socket tables. A missing table (no IPv6 in the kernel) is skipped.
func ReadCounts(files []string, ports map[uint16]bool) (Counts, error) {
	counts := Counts{}
	for _, name := range files {
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		err = CountEstablished(f, ports, counts)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return counts, nil
}
