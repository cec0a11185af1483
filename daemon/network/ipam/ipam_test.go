package ipam

import (
	"net/netip"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestNextSubnetFirstFreeBlock(t *testing.T) {
	pools := DefaultPools()
	used := []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}
	p, err := NextSubnet(pools, used)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.String(), "172.18.0.0/16"))
	used = append(used, p, netip.MustParsePrefix("172.19.0.0/16"))
	p, err = NextSubnet(pools, used)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.String(), "172.20.0.0/16"))
	// After the /14s come the /20s of 192.168.0.0/16.
	for i := 20; i < 32; i++ {
		used = append(used, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	p, err = NextSubnet(pools, used)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.String(), "192.168.0.0/20"))
}

func TestNextSubnetExhausted(t *testing.T) {
	_, err := NextSubnet([]Pool{{netip.MustParsePrefix("10.0.0.0/24"), 24}}, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	assert.Error(t, err, "all predefined address pools have been fully subnetted")
}

func TestAllocateSkipsReservedAndWraps(t *testing.T) {
	s := Subnet{Prefix: netip.MustParsePrefix("10.1.0.0/29"), Gateway: netip.MustParseAddr("10.1.0.1")}
	inUse := map[netip.Addr]bool{}
	var got []string
	var last netip.Addr
	for {
		a, err := s.Allocate(inUse, last)
		if err != nil {
			assert.Check(t, is.ErrorContains(err, "no available IPv4 addresses"))
			break
		}
		inUse[a] = true
		last = a
		got = append(got, a.String())
	}
	assert.Check(t, is.DeepEqual(got, []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}))
	delete(inUse, netip.MustParseAddr("10.1.0.3"))
	a, err := s.Allocate(inUse, last)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(a.String(), "10.1.0.3"))
}

func TestValidateMessages(t *testing.T) {
	_, err := Validate([]Config{{Subnet: "10.0.0.1/24", Gateway: "10.1.0.1"}, {Subnet: "bad"}})
	assert.Error(t, err, "invalid network config:\ninvalid subnet 10.0.0.1/24: it should be 10.0.0.0/24\ninvalid subnet bad: invalid CIDR block notation")
	_, err = Validate([]Config{{Subnet: "10.0.0.0/24", Gateway: "10.1.0.1", IPRange: "10.0.1.0/25"}})
	assert.Error(t, err, "invalid network config:\ninvalid ip-range 10.0.1.0/25: parent subnet 10.0.0.0/24 doesn't contain ip-range\ninvalid gateway 10.1.0.1: parent subnet 10.0.0.0/24 doesn't contain this address")
	s, err := Validate([]Config{{Subnet: "10.0.0.0/24", IPRange: "10.0.0.128/25", Gateway: "10.0.0.254"}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(s[0].Range.String(), "10.0.0.128/25"))
}

func FuzzValidate(f *testing.F) {
	f.Add("10.0.0.0/24", "10.0.0.0/25", "10.0.0.1")
	f.Fuzz(func(t *testing.T, subnet, rng, gw string) {
		s, err := Validate([]Config{{Subnet: subnet, IPRange: rng, Gateway: gw}})
		if err != nil {
			return
		}
		// Whatever validates must allocate inside its subnet.
		if s[0].Prefix.IsValid() && s[0].Prefix.Bits() >= 8 {
			a, err := s[0].Allocate(nil, netip.Addr{})
			if err == nil && !s[0].Prefix.Contains(a) {
				t.Fatalf("%s outside %s", a, s[0].Prefix)
			}
		}
	})
}
