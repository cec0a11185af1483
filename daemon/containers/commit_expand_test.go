package containers

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func TestExpandChange(t *testing.T) {
	env := []string{"PATH=/usr/bin:/bin", "HOME=/root", "EMPTY="}
	for _, tc := range []struct{ in, want string }{
		{"ENV PATH=$PATH:/foo", "ENV PATH=/usr/bin:/bin:/foo"},
		{"ENV PATH=${PATH}:/foo", "ENV PATH=/usr/bin:/bin:/foo"},
		{"env X=$NOPE", "env X="},
		{"ENV X=${NOPE:-dflt} Y=${EMPTY:-e} Z=${HOME:+set}", "ENV X=dflt Y=e Z=set"},
		{"ENV X='$HOME'", "ENV X='$HOME'"},
		{`ENV X=\$HOME`, `ENV X=\$HOME`},
		{"WORKDIR $HOME/app", "WORKDIR /root/app"},
		{"CMD echo $HOME", "CMD echo $HOME"},
		{"ENV X=$", "ENV X=$"},
		{"ENV X=${HOME", "ENV X=${HOME"},
	} {
		assert.Equal(t, expandChange(tc.in, env), tc.want, tc.in)
	}
}

func FuzzExpandChange(f *testing.F) {
	for _, s := range []string{"ENV A=$B", "ENV A=${B:-x}", "LABEL a='$b' c=\\$d", "WORKDIR ${", "ENV $"} {
		f.Add(s)
	}
	env := []string{"B=1", "EMPTY="}
	f.Fuzz(func(t *testing.T, s string) {
		out := expandChange(s, env)
		if !strings.Contains(s, "$") && out != s {
			t.Fatalf("%q changed without a variable: %q", s, out)
		}
	})
}
