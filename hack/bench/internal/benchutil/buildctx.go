package benchutil

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"time"
)

// BuildDockerfile is the 20-step Dockerfile both build benchmarks (classic and BuildKit) measure: RUNs,
// metadata and COPYs of the tree WriteBuildContext writes, with small.txt copied alone so that changing
// it misses the cache from its step on.
const BuildDockerfile = `FROM busybox
ENV APP=/app
RUN echo one > /r1
COPY tree/a /t/a
RUN ls -R /t | wc -l > /c1
WORKDIR /app
COPY tree/b /t/b
RUN echo two > /r2
LABEL bench=build
COPY small.txt /s.txt
RUN cat /s.txt > /r3
ENV X=1
COPY tree/c /t/c
RUN du -s /t > /du
EXPOSE 8080
USER root
RUN echo three > /r4
VOLUME /data
CMD ["sh"]
RUN echo done > /r5
`

// WriteBuildContext writes BuildDockerfile, small.txt and a tree of sizeMB in three parts of 1 MB files
// (the same bytes every time) into dir.
func WriteBuildContext(dir string, sizeMB int) error {
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, 1<<20)
	for i := 0; i < sizeMB; i++ {
		part := []string{"a", "b", "c"}[i%3]
		p := filepath.Join(dir, "tree", part, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		r.Read(buf)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte("v0\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(BuildDockerfile), 0o644)
}

// BusyboxArchiveFile writes busybox's image archive (BusyboxArchive) into dir and returns its path.
func BusyboxArchiveFile(dir string) (string, error) {
	save, err := BusyboxArchive()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "busybox.tar")
	return p, os.WriteFile(p, save, 0o644)
}

// OnBoth measures a fresh berthd (bin), then, unless skipDockerd, Debian's dockerd with bridge networking
// in a namespace of its own; each daemon is removed after its turn. The dockerd figures are the zero value
// when skipped.
func OnBoth[F any](bin string, skipDockerd bool, measure func(*Daemon) (F, error)) (berthd, dockerd F, err error) {
	b, err := StartBerthd(bin)
	if err != nil {
		return berthd, dockerd, err
	}
	berthd, err = measure(b)
	b.Cleanup()
	if err != nil || skipDockerd {
		return berthd, dockerd, err
	}
	d, err := StartDockerdNet()
	if err != nil {
		return berthd, dockerd, err
	}
	dockerd, err = measure(d)
	d.Cleanup()
	return berthd, dockerd, err
}

// Table prints figures of berthd beside dockerd's and their ratio, names in a column Width wide.
type Table struct{ Width int }

// Header prints the column titles.
func (t Table) Header() {
	fmt.Printf("%-*s %12s %12s %8s\n", t.Width, "", "berthd", "dockerd", "ratio")
}

// Row prints one figure; a zero dockerd figure (not measured) has no ratio.
func (t Table) Row(name string, berthd, dockerd time.Duration) {
	ratio := "-"
	if dockerd > 0 {
		ratio = fmt.Sprintf("%.2f", float64(berthd)/float64(dockerd))
	}
	fmt.Printf("%-*s %12s %12s %8s\n", t.Width, name, berthd.Round(time.Millisecond), dockerd.Round(time.Millisecond), ratio)
}
