package containers

import (
	"testing"

	"github.com/berthd/berthd/daemon/containers/oci"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLookupUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n")
	group := []byte("root:x:0:\nwheel:x:10:root,web\nwebg:x:1001:\nextra:x:2000:\n")
	for _, tc := range []struct {
		spec     string
		groupAdd []string
		want     oci.User
		err      string
	}{
		{spec: "", want: oci.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}}},
		{spec: "web", want: oci.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10}}},
		{spec: "1000", want: oci.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10}}},
		{spec: "web:extra", want: oci.User{UID: 1000, GID: 2000}}, // an explicit group replaces the memberships, as in runc
		{spec: "4242:4343", want: oci.User{UID: 4242, GID: 4343}},
		{spec: "web", groupAdd: []string{"extra", "77"}, want: oci.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 2000, 77}}},
		{spec: "nosuch", err: "unable to find user nosuch: no matching entries in passwd file"},
		{spec: "web:nosuch", err: "unable to find group nosuch: no matching entries in group file"},
	} {
		u, err := lookupUser(tc.spec, tc.groupAdd, passwd, group)
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err), tc.spec)
			continue
		}
		assert.NilError(t, err, tc.spec)
		assert.Check(t, is.DeepEqual(u, tc.want), tc.spec)
	}
	// No /etc/passwd at all (a scratch image): numeric IDs still work, names do not.
	u, err := lookupUser("5:6", nil, nil, nil)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(u, oci.User{UID: 5, GID: 6}))
	_, err = lookupUser("web", nil, nil, nil)
	assert.Check(t, err != nil)
}
