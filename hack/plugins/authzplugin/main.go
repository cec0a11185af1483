// Command authzplugin is a test and benchmark authorization plugin written with go-plugins-helpers: it
// allows every request except those whose URI contains the -deny substring (none by default: allow-all),
// which it refuses with the message "denied by authzplugin policy".
//
// It listens on -socket (a stale socket file there is removed first). Test-only: not shipped.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"strings"

	"github.com/docker/go-plugins-helpers/authorization"
)

type policy struct{ deny string }

func (p policy) AuthZReq(r authorization.Request) authorization.Response {
	if p.deny != "" && strings.Contains(r.RequestURI, p.deny) {
		return authorization.Response{Msg: "denied by authzplugin policy"}
	}
	return authorization.Response{Allow: true}
}

func (p policy) AuthZRes(authorization.Request) authorization.Response {
	return authorization.Response{Allow: true}
}

func main() {
	socket := flag.String("socket", "/run/docker/plugins/authz.sock", "unix socket to listen on")
	deny := flag.String("deny", "", "refuse requests whose URI contains this")
	flag.Parse()
	_ = os.Remove(*socket)
	l, err := net.Listen("unix", *socket)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(authorization.NewHandler(policy{deny: *deny}).Serve(l))
}
