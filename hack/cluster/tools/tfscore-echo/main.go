// Command tfscore-echo is the harness's smoke-test binary, packaged as a one-file image (localhost/tfscore/echo).
//
//	tfscore-echo                  serve HTTP on :$PORT (default 8080), answering "tfscore-echo <hostname>"
//	tfscore-echo -get URL         GET URL once, print the body, exit non-zero on failure (a client pod)
//	tfscore-echo -dial HOST:PORT  open one TCP connection, exit non-zero on failure
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	get := flag.String("get", "", "GET this URL once and print the body")
	dial := flag.String("dial", "", "open one TCP connection to HOST:PORT")
	flag.Parse()
	switch {
	case *get != "":
		c := http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(*get)
		if err != nil {
			fail(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s", body)
		if resp.StatusCode != http.StatusOK {
			fail(fmt.Errorf("GET %s: %s", *get, resp.Status))
		}
	case *dial != "":
		conn, err := net.DialTimeout("tcp", *dial, 10*time.Second)
		if err != nil {
			fail(err)
		}
		conn.Close()
		fmt.Println("connected to", *dial)
	default:
		addr := ":8080"
		if p := os.Getenv("PORT"); p != "" {
			addr = ":" + p
		}
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "tfscore-echo %s\n", host) })
		fmt.Println("listening on", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tfscore-echo:", err)
	os.Exit(1)
}
