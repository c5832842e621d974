// Command fleet-summary prints what convoy made of a Project in each cluster of the local
// fleet (make demo).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/convoy-dev/convoy/test/fleet"
)

func main() {
	dir := flag.String("fleet-dir", ".fleet", "State directory of hack/fleet.sh.")
	manager := flag.String("manager", "manager", "Name of the manager cluster in the fleet.")
	project := flag.String("project", "default/shop", "Project as namespace/name.")
	flag.Parse()
	ns, name, ok := strings.Cut(*project, "/")
	if !ok {
		fmt.Fprintln(os.Stderr, "--project must be namespace/name")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = fleet.Summary(ctx, fleet.New(abs, *manager), os.Stdout, client.ObjectKey{Namespace: ns, Name: name})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-summary:", err)
		os.Exit(1)
	}
}
