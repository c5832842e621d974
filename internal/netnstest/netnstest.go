// Package netnstest runs a test binary in a network namespace of its own.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// isolatedEnv marks the test binary re-executed in its own network namespace.
const isolatedEnv = "CONVOY_DRAIN_TEST_NETNS"

// Main runs a test binary's tests in a network namespace of their own, as the drain helper
// runs in a pod's: the kernel's accepted-connection counter is per namespace, and other tests
// on the machine (API servers of other packages, a local fleet) would otherwise count as
// arrivals. Call it from TestMain. It re-executes the binary with CLONE_NEWNET (and
// CLONE_NEWUSER when not root); where neither is allowed the tests run in the machine's
// namespace and say so.
func Main(m *testing.M) {
	if os.Getenv(isolatedEnv) == "1" {
		if err := loopbackUp(); err != nil {
			fmt.Fprintln(os.Stderr, "bringing up lo in the test's network namespace:", err)
			os.Exit(2)
		}
		os.Exit(m.Run())
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), isolatedEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	flags := uintptr(syscall.CLONE_NEWNET)
	if os.Geteuid() != 0 {
		flags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr = &syscall.SysProcAttr{
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
		}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Cloneflags = flags
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: cannot run in a network namespace of its own (%v); other traffic on this machine may count as arrivals\n", err)
		os.Exit(m.Run())
	}
	os.Exit(0)
}

// loopbackUp sets IFF_UP on lo: a new network namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
