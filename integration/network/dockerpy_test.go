package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berthd/berthd/hack/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// dockerPyNetworks drives docker-py's networks API the way compose 1.29 and user scripts do. Every step
// asserts; the script prints "OK" last. The published port is fetched from the script's own namespace,
// which is berthd's (the test runs it under nsenter), as a program on dockerd's host would.
const dockerPyNetworks = `
import socket, sys, time
import docker

c = docker.from_env(timeout=60)

def fetch(port):
    last = None
    for _ in range(50):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            s.close()
            if b"200 OK" in data:
                return data.decode()
            last = data
        except OSError as e:
            last = e
        time.sleep(0.2)
    sys.exit("port %d never answered: %r" % (port, last))

net = c.networks.create("pynet", driver="bridge", labels={"owner": "py"}, attachable=True)
assert net.name == "pynet", net.name
got = c.networks.get("pynet")
assert got.id == net.id
assert got.attrs["Driver"] == "bridge", got.attrs
assert got.attrs["Labels"] == {"owner": "py"}, got.attrs["Labels"]
assert got.attrs["Attachable"] is True, got.attrs
names = sorted(n.name for n in c.networks.list())
assert names == ["bridge", "host", "none", "pynet"], names
assert [n.name for n in c.networks.list(names=["pynet"])] == ["pynet"]
assert [n.name for n in c.networks.list(filters={"label": "owner=py"})] == ["pynet"]

web = c.containers.run("busybox", ["sh", "-c", "mkdir -p /w && echo hello-from-web > /w/index.html && exec httpd -f -p 80 -h /w"],
                       name="pyweb", detach=True, network="pynet", ports={"80/tcp": None})
web.reload()
port = int(web.ports["80/tcp"][0]["HostPort"])
assert "hello-from-web" in fetch(port)

client = c.containers.run("busybox", ["sleep", "300"], name="pyclient", detach=True, network="pynet")
ok = False
for _ in range(50):
    rc, out = client.exec_run(["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 pyweb 80"])
    if rc == 0 and b"hello-from-web" in out:
        ok = True
        break
    time.sleep(0.2)
assert ok, (rc, out)

# connect/disconnect of a running container, with an alias: the other one resolves it on the second network.
other = c.networks.create("pyother")
other.connect(web, aliases=["webalias"])
other.connect("pyclient")
other.reload()
assert sorted(v["Name"] for v in other.attrs["Containers"].values()) == ["pyclient", "pyweb"], other.attrs["Containers"]
web.reload()
assert set(web.attrs["NetworkSettings"]["Networks"]) == {"pynet", "pyother"}
assert "webalias" in web.attrs["NetworkSettings"]["Networks"]["pyother"]["Aliases"]
rc, out = client.exec_run(["nslookup", "webalias", "127.0.0.11"])
assert rc == 0 and web.attrs["NetworkSettings"]["Networks"]["pyother"]["IPAddress"].encode() in out, out
other.disconnect(web)
other.disconnect(client, force=True)
other.reload()
assert other.attrs["Containers"] == {}, other.attrs["Containers"]
web.reload()
assert set(web.attrs["NetworkSettings"]["Networks"]) == {"pynet"}

# remove of a network in use is refused; prune removes only unused networks.
try:
    net.remove()
    sys.exit("removing a network in use succeeded")
except docker.errors.APIError as e:
    assert e.status_code == 403, e
res = c.networks.prune()
assert res["NetworksDeleted"] == ["pyother"], res
for ctr in (web, client):
    ctr.remove(force=True)
net.remove()
try:
    c.networks.get("pynet")
    sys.exit("removed network still found")
except docker.errors.NotFound:
    pass
assert c.networks.prune()["NetworksDeleted"] in (None, []), "prune of nothing"
print("OK")
`

func TestDockerPyNetworks(t *testing.T) {
	py := testenv.NeedCommand(t, "python3", "python3-docker")
	if err := exec.Command(py, "-c", "import docker").Run(); err != nil {
		testenv.Missing(t, "python module docker missing (Debian package python3-docker)")
	}
	d := newDaemon(t)
	script := filepath.Join(t.TempDir(), "networks.py")
	assert.NilError(t, os.WriteFile(script, []byte(dockerPyNetworks), 0o644))
	cmd := exec.Command("nsenter", "--net="+d.NetNS, "--", py, script)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host())
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	assert.Check(t, is.Contains(string(out), "OK"))
}
