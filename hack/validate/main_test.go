package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckImport(t *testing.T) {
	for _, tc := range []struct {
		pkg, imp string
		bad      bool
	}{
		{"api/types/volume", "encoding/json", false},
		{"api/types/volume", "github.com/pkg/errors", true},
		{"api/server/router/volume", module + "/api/types/volume", false},
		{"api/server/router/volume", module + "/volume/service", true},
		{"api/server/router/volume", module + "/api/server/httputils", false},
		{"api/server/router/volume", "github.com/containerd/errdefs", true},
		{"volume/service", module + "/daemon/events", true},
		{"volume/drivers", module + "/plugin/getter", false},
		{"volume/drivers", module + "/plugin/store", true},
		{"plugin/store", module + "/volume", true},
		{"volume/local", "github.com/containerd/errdefs", false},

		// containerd only in its adapters, and in daemon (the package itself) to dial.
		{"image/store", "github.com/containerd/containerd/content", false},
		{"layer", "github.com/containerd/containerd/archive", false},
		{"libcontainerd/remote", "github.com/containerd/containerd", false},
		{"distribution", "github.com/containerd/containerd/remotes/docker", false},
		{"daemon", "github.com/containerd/containerd", false},
		{"daemon/containers", "github.com/containerd/containerd/archive", true},
		{"daemon/network", "github.com/containerd/containerd", true},
		{"libcontainerd/types", "github.com/containerd/containerd", true},
		{"volume/local", "github.com/containerd/containerd/mount", true},
		{"image/builder", "github.com/containerd/containerd/archive", false},
		{"image/builder", "github.com/containerd/containerd/content", true},
		{"integration/container", "github.com/containerd/containerd", false},

		// Leaves stay leaves.
		{"volume", "context", false},
		{"volume", "github.com/containerd/errdefs", true},
		{"volume", module + "/plugin/v1", true},
		{"plugin/getter", module + "/plugin/v1", false},
		{"plugin/getter", module + "/plugin/store", true},
		{"plugin/getter", "github.com/pkg/errors", true},
		{"libcontainerd/types", "github.com/opencontainers/runtime-spec/specs-go", false},
		{"libcontainerd/types", module + "/layer", true},

		// cmd/berthd: the composition root, its config struct and the API server only.
		{"cmd/berthd", module + "/daemon", false},
		{"cmd/berthd", module + "/daemon/config", false},
		{"cmd/berthd", module + "/api/server/router/volume", false},
		{"cmd/berthd", module + "/volume/service", true},
		{"cmd/berthd", module + "/daemon/containers", true},
		{"cmd/berthd", module + "/daemon/system", true},
		{"cmd/berthd", module + "/plugin/manager", true},
		{"cmd/berthd", module + "/metrics", false},
		{"cmd/berthd", "github.com/spf13/pflag", false},
	} {
		if got := checkImport(tc.pkg, tc.imp) != ""; got != tc.bad {
			t.Errorf("%s importing %s: violation=%v, want %v", tc.pkg, tc.imp, got, tc.bad)
		}
	}
}

func TestCmdKnownImportsAreExceptionsNotViolations(t *testing.T) {
	defer func(old map[string]string) { cmdKnown = old }(cmdKnown)
	cmdKnown = map[string]string{"daemon/events": "until daemon exposes it"}
	for imp := range cmdKnown {
		problem, known := importRule("cmd/berthd", module+"/"+imp)
		if problem != "" || known == "" {
			t.Errorf("cmd/berthd importing %s: problem %q, known %q", imp, problem, known)
		}
	}
}

func TestContextCalls(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int
	}{
		{"package p\nimport \"context\"\nfunc f(ctx context.Context) { _ = context.WithoutCancel(ctx) }", 0},
		{"package p\nimport \"context\"\nfunc f() { _ = context.Background() }", 1},
		{"package p\nimport \"context\"\nfunc f() { _, _ = context.WithCancel(context.TODO()) }", 1},
		{"package p\nimport stdctx \"context\"\nfunc f() { _ = stdctx.Background() }", 1},
		{"package p\nimport \"context\"\nvar c = context.Background\nfunc g() { _ = context.TODO() }", 2},
		// Another package of that name is not the standard library's.
		{"package p\nimport \"example.com/context\"\nfunc f() { context.Background() }", 0},
	} {
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, "x.go", tc.src, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := contextCalls(fset, af); len(got) != tc.want {
			t.Errorf("%q: %d findings %v, want %d", tc.src, len(got), got, tc.want)
		}
	}
}

func TestCheckContextScope(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.go")
	if err := os.WriteFile(path, []byte("package p\nimport \"context\"\nfunc f() { _ = context.Background() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"volume/service", true},
		{"daemon/containers", true},
		{"cmd/berthd", false},
		{"hack/bench", false},
		{"integration/container", false},
		{"volume/testutil", false},
		{"volume/drivers/testsuite", false},
	} {
		if got := len(checkContext(tc.rel, path)) > 0; got != tc.want {
			t.Errorf("%s: reported %v, want %v", tc.rel, got, tc.want)
		}
	}
	for f := range contextAllowed {
		if !strings.HasSuffix(f, ".go") {
			t.Errorf("contextAllowed names files: %q", f)
		}
	}
}

func TestMethodCountIncludesViews(t *testing.T) {
	var b strings.Builder
	b.WriteString("package p\ntype S struct{ n int }\ntype (\n\tv1 struct{ *S }\n\tv2 struct{ S }\n\tother struct{ *S; x int }\n)\n")
	for i := 0; i < 30; i++ {
		b.WriteString("func (s *S) M" + itoa(i) + "() {}\n")
	}
	for i := 0; i < 8; i++ {
		b.WriteString("func (v v1) A" + itoa(i) + "() {}\n")
		b.WriteString("func (v *v2) B" + itoa(i) + "() {}\n")
		b.WriteString("func (o other) C" + itoa(i) + "() {}\n")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	problems := checkSizes(dir, []string{"p.go"})
	if len(problems) != 1 || !strings.Contains(problems[0], "type S has 46 methods") || !strings.Contains(problems[0], "30 own, views: v1 8, v2 8") {
		t.Fatalf("problems %q", problems)
	}
	// No type is an exception, daemon/containers' Service included.
	src := strings.ReplaceAll(b.String(), "S", "Service")
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	problems = checkSizes(dir, []string{"p.go"})
	if len(problems) != 1 || !strings.Contains(problems[0], "type Service has 46 methods") {
		t.Fatalf("problems %q", problems)
	}
}

func TestFileSize(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.go"), []byte("package p\n"+strings.Repeat("\n", 1001)), 0o644); err != nil {
		t.Fatal(err)
	}
	problems := checkSizes(dir, []string{"big.go"})
	if len(problems) != 1 || !strings.Contains(problems[0], "(max 1000)") {
		t.Fatalf("%q", problems)
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func TestErrorTextTests(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int
	}{
		{`func f(err error) bool { return strings.HasPrefix(err.Error(), "mime:") }`, 1},
		{`func f(err error) bool { return strings.Contains(strings.ToLower(err.Error()), "not found") }`, 1},
		{`func f(err error) bool { return err.Error() == "boom" }`, 1},
		{`func f(err error) bool { return "boom" != err.Error() }`, 1},
		// Building a message from an error is fine; so is testing other strings.
		{`func f(err error) string { return strings.TrimSpace("x: " + err.Error()) }`, 0},
		{`func f(s string) bool { return strings.Contains(s, "/") }`, 0},
		{`func f(err error) bool { return errors.Is(err, io.EOF) }`, 0},
	} {
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, "x.go", "package p\n"+tc.src, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := errorTextTests(fset, af); len(got) != tc.want {
			t.Errorf("%s: %d findings %v, want %d", tc.src, len(got), got, tc.want)
		}
	}
	for f := range errorTextAllowed {
		if !strings.HasSuffix(f, ".go") {
			t.Errorf("errorTextAllowed names files: %q", f)
		}
	}
}
