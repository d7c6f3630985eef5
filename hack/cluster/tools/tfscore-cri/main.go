// Command tfscore-cri is the harness's tiny CRI client (crictl is not on the Go module proxy).
//
//	tfscore-cri -address /path/containerd.sock pods    list pod sandboxes
//	tfscore-cri -address /path/containerd.sock clean   stop and remove every pod sandbox (runs CNI DEL)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	address := flag.String("address", "", "containerd socket path")
	timeout := flag.Duration("timeout", 60*time.Second, "overall timeout")
	flag.Parse()
	if *address == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tfscore-cri -address SOCKET pods|clean")
		os.Exit(2)
	}
	conn, err := grpc.NewClient("unix://"+*address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		fail(err)
	}
	switch flag.Arg(0) {
	case "pods":
		for _, s := range resp.Items {
			fmt.Printf("%s\t%s/%s\t%s\n", s.Id[:13], s.Metadata.Namespace, s.Metadata.Name, s.State)
		}
	case "clean":
		failed := false
		for _, s := range resp.Items {
			name := s.Metadata.Namespace + "/" + s.Metadata.Name
			if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
				fmt.Fprintf(os.Stderr, "stop %s: %v\n", name, err)
				failed = true
				continue
			}
			if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
				fmt.Fprintf(os.Stderr, "remove %s: %v\n", name, err)
				failed = true
				continue
			}
			fmt.Fprintf(os.Stderr, "removed pod sandbox %s\n", name)
		}
		if failed {
			os.Exit(1)
		}
	default:
		fail(fmt.Errorf("unknown command %q", flag.Arg(0)))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tfscore-cri:", err)
	os.Exit(1)
}
