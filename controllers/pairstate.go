package controllers

import (
	"sync"

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
}

func newPairState() *pairState {
	return &pairState{
		queued:  map[types.NamespacedName]map[string]uint64{},
		results: map[types.NamespacedName]map[string]pairResult{},
	}
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
}

// forgetProject drops everything known of a Project that is gone.
func (s *pairState) forgetProject(project types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.queued, project)
	delete(s.results, project)
}
