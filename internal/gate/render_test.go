package gate

import "testing"

func TestRender(t *testing.T) {
	vars := Vars{Cluster: "seoul-1", Namespace: "shop-prod", Project: "shop"}
	tests := []struct {
		name, query, want string
		vars              Vars
	}{
		{name: "no placeholder", query: `up`, want: `up`, vars: vars},
		{
			name:  "every placeholder",
			query: `x{cluster="{{cluster}}",namespace="{{namespace}}",project="{{project}}"}`,
			want:  `x{cluster="seoul-1",namespace="shop-prod",project="shop"}`,
			vars:  vars,
		},
		{
			name:  "repeated placeholder",
			query: `sum(a{cluster="{{cluster}}"}) / sum(b{cluster="{{cluster}}"})`,
			want:  `sum(a{cluster="seoul-1"}) / sum(b{cluster="seoul-1"})`,
			vars:  vars,
		},
		{
			name:  "empty value",
			query: `x{project="{{project}}"}`,
			want:  `x{project=""}`,
			vars:  Vars{Cluster: "seoul-1"},
		},
		{
			name:  "only the exact spelling is a placeholder",
			query: `x{a="{{ cluster }}",b="{{Cluster}}",c="{cluster}"}`,
			want:  `x{a="{{ cluster }}",b="{{Cluster}}",c="{cluster}"}`,
			vars:  vars,
		},
		{
			name:  "a value that looks like a placeholder is not expanded again",
			query: `x{cluster="{{cluster}}",namespace="{{namespace}}"}`,
			want:  `x{cluster="{{namespace}}",namespace="ns"}`,
			vars:  Vars{Cluster: "{{namespace}}", Namespace: "ns"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Render(tt.query, tt.vars); got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v, limit float64
		want     string
	}{
		{0.31, 0.05, "0.31"},
		{0.31666666666666665, 0.05, "0.3167"},
		{0.050001, 0.05, "0.050001"},
		{1234567, 1000, "1.235e+06"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.limit); got != tt.want {
			t.Errorf("formatValue(%v, %v) = %q, want %q", tt.v, tt.limit, got, tt.want)
		}
	}
}
