// The etcd server for the test control plane: the same entry point as the
// etcd binary (go.etcd.io/etcd/v3's main.go), built from go.etcd.io/etcd/server/v3.
// Its own module because k8s.io/kubernetes v1.37 would raise etcd to 3.7.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
