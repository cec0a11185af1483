package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestRegistryCredentialErrors: refused credentials get dockerd's status and words from the registry's
// answer (its status, not the text of an error): login 401, pull 404 "pull access denied", push's stream
// "unauthorized: authentication required".
func TestRegistryCredentialErrors(t *testing.T) {
	reg := regtest.StartRegistry(t, "alice", "s3cret")
	d, c := startBusybox(t)
	c.ok("tag", "busybox", reg+"/private:1")

	c.fails("Error response from daemon: login attempt to http://"+reg+"/v2/ failed with status: 401 Unauthorized", "login", "-u", "alice", "-p", "wrong", reg)
	cl := d.Client(t)
	ctx := context.Background()
	_, err := cl.RegistryLogin(ctx, registry.AuthConfig{Username: "alice", Password: "wrong", ServerAddress: reg})
	assert.Check(t, errdefs.IsUnauthorized(err), "%v", err)
	ok, err := cl.RegistryLogin(ctx, registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: reg})
	assert.NilError(t, err)
	assert.Equal(t, ok.Status, "Login Succeeded")

	wrong, _ := json.Marshal(registry.AuthConfig{Username: "alice", Password: "wrong"})
	wrongAuth := base64.URLEncoding.EncodeToString(wrong)
	rc, err := cl.ImagePush(ctx, reg+"/private:1", image.PushOptions{RegistryAuth: wrongAuth})
	assert.NilError(t, err)
	body, _ := io.ReadAll(rc)
	rc.Close()
	assert.Check(t, is.Contains(string(body), `"error":"unauthorized: authentication required"`))

	_, err = cl.ImagePull(ctx, reg+"/private:1", image.PullOptions{RegistryAuth: wrongAuth})
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "pull access denied for "+reg+"/private, repository does not exist or may require 'docker login'"))
}
