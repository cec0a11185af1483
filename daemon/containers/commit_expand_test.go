package containers

import (
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
