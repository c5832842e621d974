// Package remote is the only code in convoy that talks to service clusters.
//
// A Fleet keeps one Connection per ServiceCluster: a REST config built from a hardened
// kubeconfig, a cache limited to objects convoy owns (label app.kubernetes.io/managed-by=convoy),
// and a client that writes with server-side apply under the field owner "convoy".
//
// Callers that ask for a cluster that is not connected get ErrNotConnected. They should not
// retry in a hot loop: the ServiceCluster controller reconnects, and reconnects and remote
// changes are delivered as events (Fleet.Events) that re-enqueue the affected Projects.
package remote
