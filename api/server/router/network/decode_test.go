package network

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berthd/api/server/httputils"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestDecodeConnectDropsOperationalFields(t *testing.T) {
	req := httptest.NewRequest("POST", "/networks/n/connect", bytes.NewBufferString(
		`{"Container":"c","EndpointConfig":{"IPAddress":"1.2.3.4","NetworkID":"x","Aliases":["a"],"IPAMConfig":{"IPv4Address":"10.0.0.5"}}}`))
	req.Header.Set("Content-Type", "application/json")
	c, err := DecodeConnect(req)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.Container, "c"))
	assert.Check(t, is.Equal(c.EndpointConfig.IPAddress, ""))
	assert.Check(t, is.Equal(c.EndpointConfig.NetworkID, ""))
	assert.Check(t, is.DeepEqual(c.EndpointConfig.Aliases, []string{"a"}))
	assert.Check(t, is.Equal(c.EndpointConfig.IPAMConfig.IPv4Address, "10.0.0.5"))
}

func TestDecodeCreateIgnoresEnableIPv4BeforeAPI148(t *testing.T) {
	req := httptest.NewRequest("POST", "/networks/create", bytes.NewBufferString(`{"Name":"n","EnableIPv4":false}`))
	req = req.WithContext(httputils.WithVersion(req.Context(), "1.47"))
	c, err := DecodeCreate(req)
	assert.NilError(t, err)
	assert.Check(t, c.EnableIPv4 == nil)
}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{`{"Name":"n","Driver":"bridge","IPAM":{"Config":[{"Subnet":"10.0.0.0/24"}]}}`, `{}`, `null`, `{"Options":null,"Labels":{"a":"b"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/networks/create", bytes.NewBufferString(body))
		_, _ = DecodeCreate(req)
	})
}

func FuzzDecodeConnect(f *testing.F) {
	for _, s := range []string{`{"Container":"c","EndpointConfig":{"Aliases":["x"],"IPAMConfig":{"IPv4Address":"1.2.3.4"}}}`, `{"Container":"c"}`, `{"EndpointConfig":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/networks/n/connect", bytes.NewBufferString(body))
		_, _ = DecodeConnect(req)
	})
}
