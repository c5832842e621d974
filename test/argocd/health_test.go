// Package argocd tests the Argo CD health check in config/argocd/health.lua with gopher-lua,
// the Lua interpreter Argo CD runs it with, against status samples read from a local fleet.
package argocd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// health runs the script on obj as Argo CD does: obj is a global table, the script returns
// a table with status and message.
func health(t *testing.T, obj map[string]any) (string, string) {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("..", "..", "config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, open := range []lua.LGFunction{lua.OpenBase, lua.OpenTable, lua.OpenString, lua.OpenMath} {
		L.Push(L.NewFunction(open))
		L.Call(0, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(string(script)); err != nil {
		t.Fatalf("running health.lua: %v", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v, want a table", L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

// toLua converts decoded JSON into Lua values the way Argo CD does: objects and arrays become
// tables (arrays 1-based), numbers LNumber.
func toLua(L *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, item := range t {
			tbl.RawSetString(k, toLua(L, item))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, item := range t {
			tbl.Append(toLua(L, item))
		}
		return tbl
	case string:
		return lua.LString(t)
	case float64:
		return lua.LNumber(t)
	case bool:
		return lua.LBool(t)
	}
	return lua.LNil
}

func sample(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name       string
		obj        func(t *testing.T) map[string]any
		wantStatus string
		wantIn     string
	}{
		{"a Ready Project", func(t *testing.T) map[string]any { return sample(t, "project-ready.json") }, "Healthy", "synced"},
		{"a Project that misses its policy", func(t *testing.T) map[string]any { return sample(t, "project-stalled.json") }, "Degraded", "PolicyNotFound: GracefulShutdownPolicy default/does-not-exist"},
		{"a Project changed since convoy reported", func(t *testing.T) map[string]any {
			obj := sample(t, "project-ready.json")
			meta := obj["metadata"].(map[string]any)
			meta["generation"] = meta["generation"].(float64) + 1
			return obj
		}, "Progressing", "report on this generation"},
		{"a new Project without status", func(t *testing.T) map[string]any {
			obj := sample(t, "project-ready.json")
			delete(obj, "status")
			return obj
		}, "Progressing", ""},
		{"a connected ServiceCluster", func(t *testing.T) map[string]any { return sample(t, "servicecluster-ready.json") }, "Healthy", ""},
		{"an unreachable ServiceCluster (the sample's conditions as convoy writes them after failed probes)", func(t *testing.T) map[string]any {
			obj := sample(t, "servicecluster-ready.json")
			obj["status"].(map[string]any)["conditions"] = []any{
				map[string]any{"type": "Ready", "status": "False", "reason": "Unreachable", "message": "3 consecutive health probes failed"},
				map[string]any{"type": "Reconciling", "status": "True", "reason": "Unreachable", "message": "3 consecutive health probes failed"},
			}
			return obj
		}, "Progressing", "Unreachable: 3 consecutive health probes failed"},
		{"a GracefulShutdownPolicy", func(t *testing.T) map[string]any { return sample(t, "gracefulshutdownpolicy-ready.json") }, "Healthy", ""},
		{"a LocalityLoadBalancing", func(t *testing.T) map[string]any { return sample(t, "localityloadbalancing-ready.json") }, "Healthy", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, message := health(t, tc.obj(t))
			if status != tc.wantStatus || !strings.Contains(strings.ToLower(message), strings.ToLower(tc.wantIn)) {
				t.Errorf("health = %s %q, want %s containing %q", status, message, tc.wantStatus, tc.wantIn)
			}
		})
	}
}
