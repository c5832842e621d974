package main

import (
	"errors"
	"io"
	"net"
	"sync"
)

// hangProxy is a TCP proxy in front of a real API server that can be frozen: while frozen
// it still accepts connections (and reads what clients send) but forwards nothing in either
// direction, so established connections, including HTTP/2 streams and watches, and new
// ones alike see a server that accepts TCP and never answers. Thawing forwards again.
// Only the client pointed at the proxy (convoy) is affected; the cluster's own components
// talk to the API server directly and keep working.
type hangProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	cond     *sync.Cond
	frozen   bool
	closed   bool
	accepted int
	upBytes  int64 // forwarded from clients to the API server
	conns    map[net.Conn]struct{}
}

func newHangProxy(target string) (*hangProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &hangProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	return p, nil
}

func (p *hangProxy) addr() string { return p.ln.Addr().String() }

func (p *hangProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.handle(c)
	}
}

func (p *hangProxy) handle(c net.Conn) {
	defer p.drop(c)
	// A connection accepted while frozen is never answered, not even its TLS handshake.
	if !p.wait() {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer p.drop(up)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c, true); done <- struct{}{} }()
	go func() { p.pipe(c, up, false); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst, holding every chunk while the proxy is frozen. At EOF it passes
// the half-close on; on any other end it closes both connections, which ends the other pipe.
func (p *hangProxy) pipe(dst, src net.Conn, upstream bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
			if upstream {
				p.mu.Lock()
				p.upBytes += int64(n)
				p.mu.Unlock()
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
				return
			}
			break
		}
		if err != nil {
			break
		}
	}
	_ = src.Close()
	_ = dst.Close()
}

// wait blocks while frozen; false once the proxy is closed.
func (p *hangProxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

func (p *hangProxy) drop(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *hangProxy) setFrozen(v bool) {
	p.mu.Lock()
	p.frozen = v
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *hangProxy) acceptedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *hangProxy) upstreamBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upBytes
}

func (p *hangProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.cond.Broadcast()
	for c := range conns {
		_ = c.Close()
	}
}
