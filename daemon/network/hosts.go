// Hosts (this file): the container's /etc/hosts as dockerd writes it (network-facts.md §5.3, §5.4):
// localhost lines, --add-host entries, the container's own addresses, and legacy links.

package network

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containerd/errdefs"
)

// HostsLink is a legacy link as the linking container's hosts file shows it.
type HostsLink struct {
	IP                    netip.Addr
	Alias, Hostname, Name string
}

// HostsInput is what the file is made from.
type HostsInput struct {
	Hostname, Domainname string
	// Host: host networking; HostFile is then the host's /etc/hosts, copied when no --add-host is given.
	Host     bool
	HostFile []byte
	// NoIPv6 drops the IPv6 localhost lines (IPv6 disabled in the container).
	NoIPv6      bool
	ExtraHosts  []string
	HostGateway []netip.Addr
	// Addrs are the container's endpoint addresses, each with a line for the hostname.
	Addrs []netip.Addr
	Links []HostsLink
}

const hostsV4 = "127.0.0.1\tlocalhost\n"
const hostsV6 = "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// ParseExtraHost splits an --add-host value (name:ip or name=ip; ip may be IPv6 or host-gateway)
// and checks the address as dockerd does.
func ParseExtraHost(h string, gateway []netip.Addr) (name string, ips []netip.Addr, err error) {
	sep := strings.IndexAny(h, ":=")
	if sep <= 0 || sep == len(h)-1 {
		return "", nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("bad format for add-host: %q", h))
	}
	name, v := h[:sep], strings.Trim(h[sep+1:], "[]")
	if v == "host-gateway" {
		if len(gateway) == 0 {
			return "", nil, errdefs.ErrInvalidArgument.WithMessage("unable to derive the IP value for host-gateway")
		}
		return name, gateway, nil
	}
	a, perr := netip.ParseAddr(v)
	if perr != nil {
		return "", nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid IP address in add-host: %q", v))
	}
	return name, []netip.Addr{a}, nil
}

// BuildHosts is the content of the container's hosts file.
func BuildHosts(in HostsInput) ([]byte, error) {
	if in.Host && len(in.ExtraHosts) == 0 {
		return in.HostFile, nil
	}
	var b bytes.Buffer
	b.WriteString(hostsV4)
	if !in.NoIPv6 {
		b.WriteString(hostsV6)
	}
	for _, h := range in.ExtraHosts {
		name, ips, err := ParseExtraHost(h, in.HostGateway)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			fmt.Fprintf(&b, "%s\t%s\n", ip, name)
		}
	}
	for _, l := range in.Links {
		names := []string{l.Alias}
		if l.Hostname != "" && l.Hostname != l.Alias {
			names = append(names, l.Hostname)
		}
		if l.Name != "" && l.Name != l.Alias {
			names = append(names, l.Name)
		}
		fmt.Fprintf(&b, "%s\t%s\n", l.IP, strings.Join(names, " "))
	}
	if in.Hostname != "" {
		for _, a := range in.Addrs {
			if a.Is6() && in.NoIPv6 {
				continue
			}
			b.WriteString(hostsEntry(a, in.Hostname, in.Domainname))
		}
	}
	return b.Bytes(), nil
}

// hostsEntry is the line of one of the container's own addresses.
func hostsEntry(a netip.Addr, hostname, domainname string) string {
	names := hostname
	if domainname != "" {
		names = hostname + "." + domainname + " " + hostname
	}
	return fmt.Sprintf("%s\t%s\n", a, names)
}

// EditHosts is the hosts file content after an endpoint joined (add) or left (del) a running
// container, as dockerd edits it in place: the lines of del are removed, those of add appended, and
// every other line (the user's edits included) is kept.
func EditHosts(content []byte, hostname, domainname string, add, del []netip.Addr) []byte {
	if hostname == "" {
		return content
	}
	drop := map[string]bool{}
	for _, a := range del {
		drop[strings.TrimSuffix(hostsEntry(a, hostname, domainname), "\n")] = true
	}
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(content), "\n") {
		if line == "" || drop[strings.TrimSuffix(line, "\n")] {
			continue
		}
		b.WriteString(line)
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	for _, a := range add {
		b.WriteString(hostsEntry(a, hostname, domainname))
	}
	return b.Bytes()
}
