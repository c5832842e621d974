package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	convoyv1 "github.com/convoy-dev/convoy/api/v1alpha1"
	"github.com/convoy-dev/convoy/internal/engine"
)

// pairResult is what the last sync of a (Project, cluster) pair found.
type pairResult struct {
	status convoyv1.ProjectClusterStatus
	// clean: the cluster holds nothing of the Project, so it needs no status entry.
	clean bool
	// deleting: the result was reached while the Project was being deleted; only such
	// results release its finalizer.
	deleting bool
	// waitsForPerson: the cleanup holds until someone removes objects convoy does not own.
	waitsForPerson bool
}

// pairState is the in-memory meeting point of the two Project controllers and the per-cluster
// workers: the inputs each pair was last queued for, and each pair's last result. It is not
// persisted: after a restart every pair is queued again (its inputs hash is unknown), and
// SSA makes repeating a sync harmless.
type pairState struct {
	mu      sync.RWMutex
	queued  map[types.NamespacedName]map[string]uint64
	results map[types.NamespacedName]map[string]pairResult
	// queuedAt is when a pair was queued for new inputs, until a sync applies them.
	queuedAt map[engine.Pair]time.Time
}

func newPairState() *pairState {
	return &pairState{
		queued:   map[types.NamespacedName]map[string]uint64{},
		results:  map[types.NamespacedName]map[string]pairResult{},
		queuedAt: map[engine.Pair]time.Time{},
	}
}

// applied reports, once, when a pair that a sync just found synced was queued for the
// inputs it now holds.
func (s *pairState) applied(p engine.Pair, synced bool) (time.Time, bool) {
	if !synced {
		return time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.queuedAt[p]
	delete(s.queuedAt, p)
	return t, ok
}

// markQueued records the inputs a pair is queued for and reports whether they are new.
func (s *pairState) markQueued(p engine.Pair, inputsHash uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.queued[p.Project]
	if m == nil {
		m = map[string]uint64{}
		s.queued[p.Project] = m
	}
	if h, ok := m[p.Cluster]; ok && h == inputsHash {
		return false
	}
	m[p.Cluster] = inputsHash
	if _, waiting := s.queuedAt[p]; !waiting {
		s.queuedAt[p] = time.Now() // a change queued before the last one was applied counts from the first
	}
	return true
}

// record stores a pair's result and reports whether it differs from the last one.
func (s *pairState) record(p engine.Pair, r pairResult) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.results[p.Project]
	if m == nil {
		m = map[string]pairResult{}
		s.results[p.Project] = m
	}
	old, ok := m[p.Cluster]
	m[p.Cluster] = r
	return !ok || old.clean != r.clean || old.deleting != r.deleting || !equality.Semantic.DeepEqual(old.status, r.status)
}

func (s *pairState) result(p engine.Pair) (pairResult, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.results[p.Project][p.Cluster]
	return r, ok
}

// forgetCluster drops what is known of a pair whose cluster is gone.
func (s *pairState) forgetCluster(p engine.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.queued[p.Project], p.Cluster)
	delete(s.results[p.Project], p.Cluster)
	delete(s.queuedAt, p)
}

// forgetProject drops everything known of a Project that is gone.
func (s *pairState) forgetProject(project types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cluster := range s.queued[project] {
		delete(s.queuedAt, engine.Pair{Project: project, Cluster: cluster})
	}
	delete(s.queued, project)
	delete(s.results, project)
}
