package main

import (
	"bufio"
	"net"
	"testing"
	"time"
)

func TestHangProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	p, err := newHangProxy(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	roundTrip := func(c net.Conn, r *bufio.Reader, timeout time.Duration) error {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		_, err := r.ReadString('\n')
		return err
	}
	established, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()
	er := bufio.NewReader(established)
	if err := roundTrip(established, er, 5*time.Second); err != nil {
		t.Fatalf("thawed: %v", err)
	}

	p.setFrozen(true)
	if err := roundTrip(established, er, 300*time.Millisecond); err == nil {
		t.Fatal("an established connection was answered while frozen")
	}
	fresh, err := net.DialTimeout("tcp", p.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("a new connection was not accepted while frozen: %v", err)
	}
	defer fresh.Close()
	fr := bufio.NewReader(fresh)
	if err := roundTrip(fresh, fr, 300*time.Millisecond); err == nil {
		t.Fatal("a new connection was answered while frozen")
	}

	p.setFrozen(false)
	// What was held while frozen is delivered now.
	_ = established.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := er.ReadString('\n'); err != nil {
		t.Fatalf("after the thaw, established connection: %v", err)
	}
	_ = fresh.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := fr.ReadString('\n'); err != nil {
		t.Fatalf("after the thaw, new connection: %v", err)
	}
}
