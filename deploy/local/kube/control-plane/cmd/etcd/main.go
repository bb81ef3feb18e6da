// Command etcd is the etcd server of the local control plane.
//
// go.etcd.io/etcd/server/v3 carries local replace directives, so `go install`
// of etcd's own main refuses it; this main calls the same entry point from a
// module that resolves etcd through the Go module proxy instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
