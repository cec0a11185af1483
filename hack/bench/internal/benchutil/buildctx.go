package benchutil

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
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
