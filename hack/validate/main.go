// Command validate checks the rules of design.md §2 that the compiler does not: which packages may import
// which, the size of files and types. `make validate` runs it; it prints every violation and exits 1.
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

const module = "github.com/berthd/berthd"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
	TestGoFiles,
	XTestGoFiles []string
}

func main() {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go list:", err)
		os.Exit(2)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var problems []string
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if msg := checkImport(rel, imp); msg != "" {
				problems = append(problems, fmt.Sprintf("%s imports %s: %s", p.ImportPath, imp, msg))
			}
		}
		files := append(append(append([]string{}, p.GoFiles...), p.TestGoFiles...), p.XTestGoFiles...)
		problems = append(problems, checkSizes(p.Dir, files)...)
	}
	sort.Strings(problems)
	for _, pr := range problems {
		fmt.Println(pr)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func under(rel string, prefixes ...string) bool {
	for _, p := range prefixes {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// checkImport applies the dependency rules to one non-test import of package rel.
func checkImport(rel, imp string) string {
	own := strings.HasPrefix(imp, module+"/") || imp == module
	impRel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
	stdlib := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
	switch {
	case under(rel, "api/types"):
		if !stdlib && !(own && under(impRel, "api/types")) {
			return "api/types imports only the standard library"
		}
	case under(rel, "api/server/router") && rel != "api/server/router":
		if !stdlib && !(own && (under(impRel, "api/types") || impRel == "api" || impRel == "api/server/router" || impRel == "api/server/httputils")) {
			return "routers import only api/types and api/server/{router,httputils}"
		}
	}
	if own && under(rel, "volume", "plugin", "layer", "image", "distribution", "libcontainerd") && under(impRel, "daemon", "api/server") {
		return "services and stores never import daemon or api/server"
	}
	if own && under(rel, "volume") && under(impRel, "plugin") && !under(impRel, "plugin/getter", "plugin/v1") {
		return "volume/... meets plugin/... only through plugin/getter and plugin/v1"
	}
	if own && under(rel, "plugin") && under(impRel, "volume") {
		return "plugin/... never imports volume/..."
	}
	// The builder uses containerd's archive package as a library (context extraction), never a client.
	builderArchive := under(rel, "image/builder") && (imp == "github.com/containerd/containerd/archive" || strings.HasPrefix(imp, "github.com/containerd/containerd/archive/"))
	if strings.HasPrefix(imp, "github.com/containerd/containerd") && !builderArchive && !under(rel, "daemon", "libcontainerd", "layer", "image/store", "distribution", "hack", "integration") {
		return "only libcontainerd, layer, image/store, distribution and daemon talk to containerd"
	}
	return ""
}

// checkSizes keeps files under 1,000 lines and types under 40 methods, so each stays readable.
func checkSizes(dir string, files []string) []string {
	var problems []string
	fset := token.NewFileSet()
	methods := map[string]int{}
	for _, f := range files {
		path := filepath.Join(dir, f)
		src, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if n := strings.Count(string(src), "\n"); n > 1000 {
			problems = append(problems, fmt.Sprintf("%s has %d lines (max 1000)", path, n))
		}
		af, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			continue
		}
		for _, decl := range af.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) == 0 {
				continue
			}
			t := fd.Recv.List[0].Type
			if st, ok := t.(*ast.StarExpr); ok {
				t = st.X
			}
			if id, ok := t.(*ast.Ident); ok {
				methods[id.Name]++
			}
		}
	}
	for name, n := range methods {
		if n > 40 {
			problems = append(problems, fmt.Sprintf("%s: type %s has %d methods (max 40)", dir, name, n))
		}
	}
	return problems
}
