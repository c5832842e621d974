package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// wholeValues are values that are Kubernetes objects (or parts of them), documented as a
// whole rather than field by field.
var wholeValues = map[string]bool{
	"resources": true, "podSecurityContext": true, "securityContext": true,
	"livenessProbe": true, "readinessProbe": true,
}

// leafPaths returns the dotted paths of values.yaml's leaves: scalars, lists, empty maps and
// wholeValues.
func leafPaths(prefix string, v any) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 || wholeValues[prefix] {
		return []string{prefix}
	}
	var out []string
	for k, child := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leafPaths(p, child)...)
	}
	sort.Strings(out)
	return out
}

type schemaNode struct {
	Ref                  string                 `json:"$ref"`
	Type                 any                    `json:"type"`
	Properties           map[string]*schemaNode `json:"properties"`
	AdditionalProperties any                    `json:"additionalProperties"`
	Definitions          map[string]*schemaNode `json:"definitions"`
}

// TestValuesDocumentedAndInSchema: every value of values.yaml is declared by
// values.schema.json and described in the chart's README; the schema refuses unknown
// top-level keys.
func TestValuesDocumentedAndInSchema(t *testing.T) {
	valuesYAML, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(valuesYAML, &values); err != nil {
		t.Fatal(err)
	}
	schemaJSON, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaNode
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.Unmarshal(schemaJSON, &raw)
	if raw["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema %v, want draft-07", raw["$schema"])
	}
	if schema.AdditionalProperties != false {
		t.Errorf("top-level additionalProperties %v, want false", schema.AdditionalProperties)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}

	resolve := func(n *schemaNode) *schemaNode {
		for n != nil && n.Ref != "" {
			n = schema.Definitions[strings.TrimPrefix(n.Ref, "#/definitions/")]
		}
		return n
	}
	paths := leafPaths("", values)
	if len(paths) < 40 {
		t.Fatalf("only %d values found in values.yaml", len(paths))
	}
	for _, p := range paths {
		node := &schema
		for _, part := range strings.Split(p, ".") {
			node = resolve(node)
			if node.Properties == nil {
				break // a Kubernetes object (resources, affinity, ...) the schema does not spell out
			}
			node = node.Properties[part]
			if node == nil {
				t.Errorf("values.schema.json does not declare %s", p)
				break
			}
		}
		if !strings.Contains(string(readme), "`"+p+"`") {
			t.Errorf("charts/convoy/README.md does not describe %s", p)
		}
	}
}
