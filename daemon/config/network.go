package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NetworkConfig is the networking part of Config (embedded: its keys are top-level daemon.json keys).
type NetworkConfig struct {
	Bridge              string        `json:"bridge,omitempty"`
	BIP                 string        `json:"bip,omitempty"`
	FixedCIDR           string        `json:"fixed-cidr,omitempty"`
	MTU                 int           `json:"mtu,omitempty"`
	DefaultAddressPools []AddressPool `json:"default-address-pools,omitempty"`
	IP                  string        `json:"ip,omitempty"`
	IPTables            bool          `json:"iptables"`
	IPForward           bool          `json:"ip-forward"`
	IPMasq              bool          `json:"ip-masq"`
	ICC                 bool          `json:"icc"`
	// UserlandProxy is accepted for compatibility: published ports are forwarded by the kernel either way.
	UserlandProxy bool     `json:"userland-proxy"`
	DNS           []string `json:"dns,omitempty"`
	DNSOptions    []string `json:"dns-opts,omitempty"`
	DNSSearch     []string `json:"dns-search,omitempty"`
	// HostGatewayIP is what --add-host name:host-gateway maps to; empty means the default bridge's gateway.
	HostGatewayIP string `json:"host-gateway-ip,omitempty"`
	// IPv6 keys are refused by Validate (not implemented).
	IPv6        bool   `json:"ipv6,omitempty"`
	IP6Tables   *bool  `json:"ip6tables,omitempty"`
	FixedCIDRv6 string `json:"fixed-cidr-v6,omitempty"`
}

// AddressPool is one default-address-pools entry.
type AddressPool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// String is the flag form.
func (p AddressPool) String() string { return fmt.Sprintf("base=%s,size=%d", p.Base, p.Size) }

// ParseAddressPool parses the flag form "base=10.10.0.0/16,size=24".
func ParseAddressPool(v string) (AddressPool, error) {
	var p AddressPool
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "base":
			p.Base = val
		case "size":
			n, err := strconv.Atoi(val)
			if err != nil {
				return p, fmt.Errorf("invalid size value: %q", val)
			}
			p.Size = n
		default:
			return p, fmt.Errorf("unexpected attribute %q in default address pool %q", k, v)
		}
	}
	return p, nil
}

func defaultNetworkConfig() NetworkConfig {
	return NetworkConfig{IPTables: true, IPForward: true, IPMasq: true, ICC: true, UserlandProxy: true}
}

// validateNetwork checks the networking settings.
func (c *NetworkConfig) validateNetwork() error {
	if c.IPv6 {
		return fmt.Errorf("ipv6 is not supported by berthd (IPv4 networking only)")
	}
	if c.FixedCIDRv6 != "" {
		return fmt.Errorf("fixed-cidr-v6 is not supported by berthd (IPv4 networking only)")
	}
	if c.HostGatewayIP != "" {
		if _, err := netip.ParseAddr(c.HostGatewayIP); err != nil {
			return fmt.Errorf("invalid host-gateway-ip: %s", c.HostGatewayIP)
		}
	}
	if c.Bridge != "" && c.BIP != "" {
		return fmt.Errorf("You specified -b & --bip, mutually exclusive options. Please specify only one")
	}
	if c.BIP != "" {
		if p, err := netip.ParsePrefix(c.BIP); err != nil || !p.Addr().Is4() {
			return fmt.Errorf("invalid bip: %s", c.BIP)
		}
	}
	if c.FixedCIDR != "" {
		if _, err := netip.ParsePrefix(c.FixedCIDR); err != nil {
			return fmt.Errorf("invalid fixed-cidr: %s", c.FixedCIDR)
		}
	}
	if c.IP != "" {
		if _, err := netip.ParseAddr(c.IP); err != nil {
			return fmt.Errorf("invalid ip: %s", c.IP)
		}
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 68) {
		return fmt.Errorf("invalid MTU number: %d", c.MTU)
	}
	if !c.IPTables && !c.ICC {
		return fmt.Errorf("conflicting options: --icc=false and --iptables=false")
	}
	if !c.IPTables && !c.IPMasq {
		// dockerd allows it; nothing to refuse.
		return nil
	}
	for _, p := range c.DefaultAddressPools {
		b, err := netip.ParsePrefix(p.Base)
		if err != nil || !b.Addr().Is4() {
			return fmt.Errorf("invalid base pool %q", p.Base)
		}
		if p.Size < b.Bits() || p.Size > 32 {
			return fmt.Errorf("invalid pools size: %d", p.Size)
		}
	}
	return nil
}
