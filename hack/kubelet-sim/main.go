// Command kubelet-sim stands in for the kubelet in the demo: the local
// control plane has no nodes, so Pods would stay Pending forever. Every
// second it looks at the Pods that are not running and "pulls" their
// images, as a kubelet would (package kubeletsim's Node): a Pod whose pull
// secrets give a credential for every image (the credentials library's
// lookup, exactly the kubelet's matching) is marked Running; any other Pod
// gets ErrImagePull and then ImagePullBackOff, with the Events a kubelet
// writes, and is tried again after the kubelet's back-off (10 s doubling to
// 5 minutes, --backoff and --max-backoff), reading its pull secrets again.
//
//	kubelet-sim --kubeconfig FILE [--namespace NS ...] [--backoff 10s] [--max-backoff 5m]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

type namespaces []string

func (n *namespaces) String() string     { return strings.Join(*n, ",") }
func (n *namespaces) Set(v string) error { *n = append(*n, v); return nil }

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	backOff := flag.Duration("backoff", kubeletsim.DefaultBackOff, "first wait before a failed pull is tried again")
	maxBackOff := flag.Duration("max-backoff", kubeletsim.DefaultMaxBackOff, "longest wait between tries")
	var only namespaces
	flag.Var(&only, "namespace", "namespace to serve (repeatable); default: all but kube-*")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubelet-sim: %v\n", err)
		os.Exit(1)
	}
	node := &kubeletsim.Node{Client: kubernetes.NewForConfigOrDie(cfg), BackOff: *backOff, MaxBackOff: *maxBackOff}
	if len(only) > 0 {
		node.Serves = func(ns string) bool { return slices.Contains(only, ns) }
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	for ctx.Err() == nil {
		if err := node.Run(ctx, time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "kubelet-sim: %v\n", err)
			time.Sleep(time.Second)
		}
	}
}
