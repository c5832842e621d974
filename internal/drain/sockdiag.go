package drain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// The kernel's socket diagnostics (inet_diag over NETLINK_SOCK_DIAG, what `ss -ti` reads)
// give per-socket state, queued bytes and idle times, and filter by state and local port in
// the kernel: a scan costs the same with 10 or 10,000 unrelated sockets in the pod, unlike
// /proc/net/tcp*, which is the whole table rendered as text. No maintained Go library
// sends inet_diag filter bytecode (vishvananda/netlink dumps every socket of a family), so
// the request is built here; it is small and fixed.

// TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynRecv     = 3
	tcpCloseWait   = 8
	tcpListen      = 10
)

// inet_diag constants (include/uapi/linux/inet_diag.h, sock_diag.h).
const (
	sockDiagByFamily      = 20
	inetDiagReqBytecode   = 1
	inetDiagInfo          = 2
	inetDiagBCJmp         = 1
	inetDiagBCSrcPortEq   = 11
	inetDiagReqV2Len      = 56
	inetDiagMsgLen        = 72
	tcpInfoLastDataSent   = 44
	tcpInfoLastDataRecv   = 52
	tcpInfoMinLenForTimes = tcpInfoLastDataRecv + 4
)

// Socket is one TCP socket on a watched port, as the kernel reports it.
type Socket struct {
	State     uint8
	LocalPort uint16
	// Cookie identifies the socket for its lifetime: a cookie not seen before is a new
	// connection.
	Cookie uint64
	// RecvQueue and SendQueue are bytes not yet read by the application / not yet acknowledged
	// by the peer (for a listener: the accept backlog).
	RecvQueue, SendQueue uint32
	// SinceSend and SinceRecv are the times since data was last sent / received.
	SinceSend, SinceRecv time.Duration
}

// Listening reports whether the socket is a listener.
func (s Socket) Listening() bool { return s.State == tcpListen }

// Unread is the number of received bytes the application has not read. The kernel counts a
// received FIN as one byte until the application reads the end of the stream, so a
// CLOSE_WAIT socket reports one more than it holds.
func (s Socket) Unread() uint32 {
	if s.State == tcpCloseWait && s.RecvQueue > 0 {
		return s.RecvQueue - 1
	}
	return s.RecvQueue
}

// Snapshot is one scan of the network namespace.
type Snapshot struct {
	// Sockets are the TCP sockets on the watched ports: always the listeners, and the
	// connections when Connections is set.
	Sockets     []Socket
	Connections bool
	// PassiveOpens counts the connections the namespace has accepted since it was created
	// (Tcp PassiveOpens in /proc/net/snmp, IPv4 and IPv6): it catches connections that open
	// and close between two scans, which short requests at a low rate do.
	PassiveOpens uint64
}

// Scanner lists the TCP sockets of the current network namespace on a set of local ports.
// All containers of a pod share one network namespace, so the helper sees the application's
// sockets from the application container's PreStop hook.
type Scanner struct {
	proc procfs.Proc
	fd   int
	// listeners and connections are the dump requests for the two kinds of sockets.
	listeners, connections []byte
	buf                    []byte
	seq                    uint32
}

// NewScanner opens a sock_diag netlink socket. It fails where the kernel or a sandbox does
// not offer socket diagnostics; the caller must then treat the state as unknown.
func NewScanner(ports []uint16) (*Scanner, error) {
	if len(ports) == 0 {
		return nil, errors.New("no ports to watch")
	}
	proc, err := procfs.Self()
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("opening a socket diagnostics (NETLINK_SOCK_DIAG) socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("binding the socket diagnostics socket: %w", err)
	}
	return &Scanner{
		proc:        proc,
		fd:          fd,
		listeners:   portFilterRequest(ports, 1<<tcpListen),
		connections: portFilterRequest(ports, 1<<tcpEstablished|1<<tcpSynRecv|1<<tcpCloseWait),
		buf:         make([]byte, 64<<10),
	}, nil
}

// Close releases the netlink socket.
func (s *Scanner) Close() error { return unix.Close(s.fd) }

// Scan reads the namespace's count of accepted connections and the listeners on the ports,
// and with connections also the established, establishing and CLOSE_WAIT sockets on them.
//
// Listeners and counters cost tens of microseconds. Connections cost a walk of the kernel's
// whole established-socket hash table (shared by every network namespace of the node, about
// 1.2 ms per address family for 262,144 buckets), so they are read only for the address
// families that have a listener on the ports, and the caller reads them less often.
func (s *Scanner) Scan(connections bool) (Snapshot, error) {
	snap := Snapshot{Connections: connections}
	snmp, err := s.proc.Snmp()
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading TCP counters: %w", err)
	}
	if snmp.PassiveOpens == nil {
		return Snapshot{}, errors.New("reading TCP counters: no PassiveOpens in /proc/self/net/snmp")
	}
	snap.PassiveOpens = uint64(*snmp.PassiveOpens)
	var listening []uint8
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := s.dump(s.listeners, family)
		if err != nil {
			return Snapshot{}, err
		}
		if len(socks) > 0 {
			listening = append(listening, family)
		}
		snap.Sockets = append(snap.Sockets, socks...)
	}
	if !connections {
		return snap, nil
	}
	if len(listening) == 0 { // connections may outlive their listener
		listening = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	for _, family := range listening {
		socks, err := s.dump(s.connections, family)
		if err != nil {
			return Snapshot{}, err
		}
		snap.Sockets = append(snap.Sockets, socks...)
	}
	return snap, nil
}

func (s *Scanner) dump(req []byte, family uint8) ([]Socket, error) {
	s.seq++
	binary.NativeEndian.PutUint32(req[8:], s.seq)
	req[16] = family
	if err := unix.Sendto(s.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("requesting sockets: %w", err)
	}
	var out []Socket
	for {
		n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
		if err != nil {
			return nil, fmt.Errorf("reading sockets: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(s.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parsing the kernel's answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != s.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("the kernel refused the socket diagnostics request: %w", unix.Errno(-errno))
					}
				}
				return out, nil
			case sockDiagByFamily:
				if sock, ok := parseDiagMsg(m.Data); ok {
					out = append(out, sock)
				}
			}
		}
	}
}

// portFilterRequest is an inet_diag_req_v2 dump request for TCP sockets in states (a bit
// mask), with tcp_info, and a bytecode filter that keeps local ports in ports. The family
// (byte 16) and sequence number (bytes 8–11) are set per request.
func portFilterRequest(ports []uint16, states uint32) []byte {
	// Bytecode: per port, "source port == p ? jump to the end (accept) : next port"; after
	// the last port, fall off by 4 bytes (reject). A port test is two 4-byte ops (the second
	// holds the port), then a JMP op.
	const block = 12
	bc := make([]byte, 0, block*len(ports))
	for i, p := range ports {
		rest := block * (len(ports) - i) // bytes from this op to the end
		bc = append(bc, inetDiagBCSrcPortEq, 8)
		bc = binary.NativeEndian.AppendUint16(bc, block)
		bc = append(bc, 0, 0)
		bc = binary.NativeEndian.AppendUint16(bc, p)
		bc = append(bc, inetDiagBCJmp, 4)
		bc = binary.NativeEndian.AppendUint16(bc, uint16(rest-8))
	}
	// The last port's "no" branch must jump past the end (len + 4): reject.
	binary.NativeEndian.PutUint16(bc[len(bc)-block+2:], block+4)

	attrLen := unix.SizeofRtAttr + len(bc)
	total := unix.NLMSG_HDRLEN + inetDiagReqV2Len + attrLen
	b := make([]byte, total)
	binary.NativeEndian.PutUint32(b[0:], uint32(total))
	binary.NativeEndian.PutUint16(b[4:], sockDiagByFamily)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	r := b[unix.NLMSG_HDRLEN:]
	r[1] = unix.IPPROTO_TCP
	r[2] = 1 << (inetDiagInfo - 1)
	binary.NativeEndian.PutUint32(r[4:], states)
	a := r[inetDiagReqV2Len:]
	binary.NativeEndian.PutUint16(a[0:], uint16(attrLen))
	binary.NativeEndian.PutUint16(a[2:], inetDiagReqBytecode)
	copy(a[unix.SizeofRtAttr:], bc)
	return b
}

// parseDiagMsg decodes an inet_diag_msg and its tcp_info attribute.
func parseDiagMsg(b []byte) (Socket, bool) {
	if len(b) < inetDiagMsgLen {
		return Socket{}, false
	}
	s := Socket{
		State:     b[1],
		LocalPort: binary.BigEndian.Uint16(b[4:]),
		Cookie:    uint64(binary.NativeEndian.Uint32(b[48:]))<<32 | uint64(binary.NativeEndian.Uint32(b[44:])),
		RecvQueue: binary.NativeEndian.Uint32(b[56:]),
		SendQueue: binary.NativeEndian.Uint32(b[60:]),
	}
	for attrs := b[inetDiagMsgLen:]; len(attrs) >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(attrs[0:]))
		if l < unix.SizeofRtAttr || l > len(attrs) {
			break
		}
		if binary.NativeEndian.Uint16(attrs[2:]) == inetDiagInfo {
			info := attrs[unix.SizeofRtAttr:l]
			if len(info) >= tcpInfoMinLenForTimes {
				s.SinceSend = time.Duration(binary.NativeEndian.Uint32(info[tcpInfoLastDataSent:])) * time.Millisecond
				s.SinceRecv = time.Duration(binary.NativeEndian.Uint32(info[tcpInfoLastDataRecv:])) * time.Millisecond
			}
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return s, true
}
