package benchutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
)

// BusyboxArchive is a docker-save archive of busybox:latest, built offline by hack/mkimage.
func BusyboxArchive() ([]byte, error) {
	img, err := mkimage.BusyboxImage("busybox:latest")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := mkimage.WriteSave(&b, []mkimage.Image{img}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Docker runs the docker CLI against d, with a DOCKER_CONFIG of d's own and stdin (none when nil), and
// returns its trimmed combined output; a failure names the daemon, the command and the output.
func (d *Daemon) Docker(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: docker %v: %v: %s", d.Name, args, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Timed runs f once to warm caches, then runs times, and returns the median of those runs.
func Timed(runs int, f func()) time.Duration {
	f()
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		t := time.Now()
		f()
		ds = append(ds, time.Since(t))
	}
	return Median(ds)
}

// TimeDocker runs one docker command against d (as Docker, without stdin) and returns how long it took.
func (d *Daemon) TimeDocker(args ...string) (time.Duration, error) {
	t0 := time.Now()
	if _, err := d.Docker(nil, args...); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
