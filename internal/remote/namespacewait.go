package remote

import (
	"context"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
)

// blockerWatchSeconds bounds a wait's watches; a cleanup that still waits sets up new ones
// at its next check.
const blockerWatchSeconds = int64(300)

// namespaceWaits tracks the namespaces whose deletion waits for a person, so that each has at
// most one set of watches.
type namespaceWaits struct {
	mu      sync.Mutex
	waiting map[string]bool
}

// claim reports whether the caller should set up the wait for namespace.
func (w *namespaceWaits) claim(namespace string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		w.waiting = map[string]bool{}
	}
	if w.waiting[namespace] {
		return false
	}
	w.waiting[namespace] = true
	return true
}

func (w *namespaceWaits) release(namespace string) {
	w.mu.Lock()
	delete(w.waiting, namespace)
	w.mu.Unlock()
}

// wakeWhenUnblocked watches, as metadata, the kinds of the objects that keep convoy from
// deleting a namespace, and wakes the namespace's Project once one of them is deleted or
// changes its labels or owner references (it may have become convoy's). A person who empties
// the namespace so lets the cleanup finish within a batch period, not at the next periodic
// recheck. It returns at once; the watches run in the background, at most one set per
// namespace, until a blocker changes, a watch ends (after blockerWatchSeconds, or on an error)
// or the connection closes. Watching is best effort: an identity without the watch verb, or
// a watch that fails, leaves the periodic recheck, which also sets the watches up again.
func (c *Connection) wakeWhenUnblocked(namespace client.Object, blockers []namespacedObject) {
	l := namespace.GetLabels()
	project := types.NamespacedName{Namespace: l[convoyv1.ProjectNamespaceLabel], Name: l[convoyv1.ProjectNameLabel]}
	ns := namespace.GetName()
	if c.metadata == nil || c.onChange == nil || project.Name == "" || !c.waits.claim(ns) {
		return
	}
	go c.watchBlockers(ns, project, blockers)
}

func (c *Connection) watchBlockers(namespace string, project types.NamespacedName, blockers []namespacedObject) {
	ctx, cancel := context.WithCancel(c.runCtx)
	defer cancel()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { c.waits.release(namespace) }) }
	defer release()
	byUID := map[types.UID]namespacedObject{}
	listedAt := map[schema.GroupVersionResource]string{}
	for _, b := range blockers {
		byUID[b.uid] = b
		listedAt[b.resource] = b.listedAt
	}
	logger := log.FromContext(ctx).WithValues("ServiceCluster", c.Name, "Namespace", namespace)
	var wg sync.WaitGroup
	var wakeOnce sync.Once
	for resource, rv := range listedAt {
		// Off the sync's path: a server that stops answering holds only this goroutine, until
		// the connection closes.
		timeout := blockerWatchSeconds
		w, err := c.metadata.Resource(resource).Namespace(namespace).Watch(ctx,
			metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: &timeout})
		if err != nil {
			logger.V(1).Info("Cannot watch the objects that keep a namespace; the cleanup rechecks periodically", "resource", resource.String(), "error", err.Error())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok || ev.Type == watch.Error {
						// Ended: the periodic recheck decides and watches again.
						cancel()
						return
					}
					if unblocks(ev, byUID) {
						wakeOnce.Do(func() {
							// Released first, so that the sync this wakes can watch again.
							release()
							c.onChange(project)
						})
						cancel()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// unblocks reports whether a watch event may have freed the namespace: a blocking object was
// deleted or its ownership changed.
func unblocks(ev watch.Event, blockers map[types.UID]namespacedObject) bool {
	obj, ok := ev.Object.(metav1.Object)
	if !ok {
		return false
	}
	b, blocking := blockers[obj.GetUID()]
	if !blocking {
		return false
	}
	switch ev.Type {
	case watch.Deleted:
		return true
	case watch.Modified:
		var owners []types.UID
		for _, ref := range obj.GetOwnerReferences() {
			owners = append(owners, ref.UID)
		}
		labelled := obj.GetLabels()[convoyv1.ManagedByLabel] == convoyv1.ManagedByValue
		return labelled != b.labelled || !slices.Equal(owners, b.owners)
	}
	return false
}
