// Package clustertest holds the Go client's test against a real etcd + kube-apiserver
// (test/cluster/cluster.sh) and the real informerd binary; run by test/clients/go_cluster_test.sh.
package clustertest
