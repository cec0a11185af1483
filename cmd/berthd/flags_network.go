package main

import (
	"strings"

	"github.com/berthd/berthd/daemon/config"
	"github.com/spf13/pflag"
)

func init() {
	flagKeys["dns-opt"] = "dns-opts"
	flagKeys["default-address-pool"] = "default-address-pools"
}

// poolsValue is the repeatable --default-address-pool flag.
type poolsValue struct{ pools *[]config.AddressPool }

func (v poolsValue) String() string {
	var s []string
	for _, p := range *v.pools {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

func (v poolsValue) Set(s string) error {
	p, err := config.ParseAddressPool(s)
	if err != nil {
		return err
	}
	*v.pools = append(*v.pools, p)
	return nil
}

func (v poolsValue) Type() string { return "pool-options" }

// addNetworkFlags registers dockerd's networking flags.
func addNetworkFlags(fs *pflag.FlagSet, c *config.NetworkConfig) {
	fs.StringVarP(&c.Bridge, "bridge", "b", "", `Attach containers to a network bridge ("none" disables the default bridge)`)
	fs.StringVar(&c.BIP, "bip", "", "Network bridge IP")
	fs.StringVar(&c.FixedCIDR, "fixed-cidr", "", "IPv4 subnet for fixed IPs")
	fs.IntVar(&c.MTU, "mtu", 0, "Set the containers network MTU (default 1500)")
	fs.Var(poolsValue{&c.DefaultAddressPools}, "default-address-pool", "Default address pools for node specific local networks")
	fs.StringVar(&c.IP, "ip", "", "Host IP for port publishing from the default bridge network (default 0.0.0.0)")
	fs.BoolVar(&c.IPTables, "iptables", c.IPTables, "Enable addition of iptables rules")
	fs.BoolVar(&c.IPForward, "ip-forward", c.IPForward, "Enable IP forwarding in system configuration")
	fs.BoolVar(&c.IPMasq, "ip-masq", c.IPMasq, "Enable IP masquerading for the default bridge network")
	fs.BoolVar(&c.ICC, "icc", c.ICC, "Enable inter-container communication for the default bridge network")
	fs.BoolVar(&c.UserlandProxy, "userland-proxy", c.UserlandProxy, "Accepted for compatibility: berthd forwards published ports in the kernel")
	fs.StringArrayVar(&c.DNS, "dns", nil, "DNS server to use")
	fs.StringVar(&c.HostGatewayIP, "host-gateway-ip", "", "IP address that the special 'host-gateway' string in --add-host resolves to (default: the default bridge's gateway)")
	fs.StringArrayVar(&c.DNSOptions, "dns-opt", nil, "DNS options to use")
	fs.StringArrayVar(&c.DNSSearch, "dns-search", nil, "DNS search domains to use")
	fs.BoolVar(&c.IPv6, "ipv6", false, "Enable IPv6 networking (refused: not supported by berthd)")
	fs.StringVar(&c.FixedCIDRv6, "fixed-cidr-v6", "", "IPv6 subnet for fixed IPs (refused: not supported by berthd)")
}
