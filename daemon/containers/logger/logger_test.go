package logger

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Messages are dockerd's (checked against dockerd 20.10 with docker run --log-opt ...).
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		driver string
		opts   map[string]string
		err    string
	}{
		{JSONFile, map[string]string{"max-file": "3"}, ""},
		{JSONFile, map[string]string{"max-size": "10m", "max-file": "3", "compress": "true"}, ""},
		{JSONFile, map[string]string{"labels": "a,b", "env": "E", "env-regex": "^E", "labels-regex": ".", "tag": "{{.Name}}"}, ""},
		{JSONFile, map[string]string{"bogus": "1"}, "unknown log opt 'bogus' for json-file log driver"},
		{JSONFile, map[string]string{"max-size": "1x"}, "invalid size: '1x'"},
		{JSONFile, map[string]string{"max-size": "-1"}, "invalid size: '-1'"},
		{JSONFile, map[string]string{"max-file": "0"}, "max-file cannot be less than 1"},
		{JSONFile, map[string]string{"compress": "yes"}, `strconv.ParseBool: parsing "yes": invalid syntax`},
		{JSONFile, map[string]string{"compress": "true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{JSONFile, map[string]string{"max-file": "1", "max-size": "1m", "compress": "true"}, "compress cannot be true when max-file is less than 2"},
		{Local, map[string]string{"labels": "a"}, "unknown log opt 'labels' for log driver local"},
		{Local, map[string]string{"max-file": "1", "compress": "true"}, "compression cannot be enabled when max file count is 1"},
		{Local, map[string]string{"max-size": "1m"}, ""},
		{None, nil, ""},
		{"bogus", nil, `error looking up logging plugin bogus: plugin "bogus" not found`},
		{"syslog", nil, "berthd does not support the syslog log driver (supported: json-file, local, none)"},
	} {
		err := Validate(tc.driver, tc.opts)
		if tc.err == "" {
			assert.Check(t, err, "%s %v", tc.driver, tc.opts)
		} else {
			assert.Check(t, is.ErrorContains(err, tc.err), "%s %v", tc.driver, tc.opts)
		}
	}
}

func TestOptions(t *testing.T) {
	o, err := Options(JSONFile, map[string]string{"max-file": "3"}, Info{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(o.MaxFiles, 1), "max-file without max-size: nothing to rotate")
	o, err = Options(JSONFile, map[string]string{"max-size": "1k", "max-file": "2"}, Info{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(o.MaxSize, int64(1000)), "sizes are decimal, as dockerd's")
	o, err = Options(Local, nil, Info{})
	assert.NilError(t, err)
	assert.Check(t, o.MaxSize == 20e6 && o.MaxFiles == 5 && o.Compress, "dockerd's local defaults")

	o, err = Options(JSONFile, map[string]string{"labels": "b,a,missing", "env": "E1", "env-regex": "^X", "tag": "{{.Name}}/{{.ID}}"},
		Info{ID: "0123456789abcdef", Name: "/web", Labels: map[string]string{"a": "1", "b": "2", "c": "3"}, Env: []string{"E1=x", "XY=z", "E2=n"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(o.Attrs, map[string]string{"a": "1", "b": "2", "E1": "x", "XY": "z", "tag": "web/0123456789ab"}))
	assert.Check(t, is.Equal(Details(o.Attrs), "E1=x,XY=z,a=1,b=2,tag=web/0123456789ab "))
	assert.Check(t, is.Equal(Details(nil), " "))
}

func TestRotationCompressed(t *testing.T) {
	p := Path(Local, t.TempDir(), "x")
	assert.NilError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	w, err := jsonfile.Open(p, jsonfile.Options{MaxSize: 300, MaxFiles: 3, Compress: true})
	assert.NilError(t, err)
	for i := 0; i < 40; i++ {
		assert.NilError(t, w.Log("stdout", []byte(strings.Repeat("x", 20)+"\n"), time.Unix(1700000000+int64(i), 0)))
	}
	assert.NilError(t, w.Close())
	for _, f := range []string{p, p + ".1.gz", p + ".2.gz"} {
		_, err := os.Stat(f)
		assert.Check(t, err, f)
	}
	for _, f := range []string{p + ".1", p + ".3.gz", p + ".2"} {
		_, err := os.Stat(f)
		assert.Check(t, os.IsNotExist(err), f)
	}
	var times []int64
	assert.NilError(t, jsonfile.Read(context.Background(), p, jsonfile.ReadOptions{Tail: -1}, nil, func(m jsonfile.Message) error {
		times = append(times, m.Time.Unix())
		return nil
	}))
	assert.Assert(t, len(times) > 5 && len(times) < 40, len(times))
	for i := 1; i < len(times); i++ {
		assert.Check(t, times[i] == times[i-1]+1, "lines in order across compressed files")
	}
	assert.Check(t, is.Equal(times[len(times)-1], int64(1700000039)))
}
