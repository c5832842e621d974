// Package version says which convoy a binary is.
package version

import (
	"runtime/debug"
)

// Version is set when building a release:
//
//	go build -ldflags "-X github.com/convoy-dev/convoy/internal/version.Version=v0.2.0"
//
// (make build sets it from git describe).
var Version = ""

// String is Version, or, for a plain go build, the module version or the commit the binary
// was built from (with "+dirty" for uncommitted changes), so every binary says where it
// came from.
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return fromBuildInfo(info)
}

func fromBuildInfo(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "devel"
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += "+dirty"
	}
	return "devel-" + revision
}
