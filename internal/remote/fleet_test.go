package remote

import "testing"

func TestClaim(t *testing.T) {
	f := NewFleet(Options{})
	f.conns["seoul"] = &Connection{Name: "seoul", cancel: func() {}}
	f.conns["seoul-again"] = &Connection{Name: "seoul-again", cancel: func() {}}

	if got := f.Claim("uid-1", "seoul"); got != "seoul" {
		t.Fatalf("first claim: holder %q", got)
	}
	if got := f.Claim("uid-1", "seoul"); got != "seoul" {
		t.Fatalf("repeated claim: holder %q", got)
	}
	if got := f.Claim("uid-1", "seoul-again"); got != "seoul" {
		t.Fatalf("second registration must be refused, holder %q", got)
	}
	f.Disconnect("seoul")
	if got := f.Claim("uid-1", "seoul-again"); got != "seoul-again" {
		t.Fatalf("after the holder disconnects the claim is free, holder %q", got)
	}
}
