// Command svc is the tiny HTTP service the deploy end-to-end tests deploy
// on fleet hosts (which have no busybox or python), and its client.
//
//	svc -addr 127.0.0.1:18080 -dir REVDIR   serve GET /health: the status in
//	                                        REVDIR/health_status (default
//	                                        200), the body REVDIR/VERSION
//	svc -get URL                            print the status and body of URL
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "", "listen address")
	dir := flag.String("dir", ".", "the revision directory")
	get := flag.String("get", "", "fetch this URL and print status and body")
	hold := flag.String("hold", "", "hold each /health answer while this file exists")
	flag.Parse()
	if *get != "" {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(*get)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, b)
		return
	}
	var l net.Listener
	var err error
	for i := 0; i < 250; i++ { // the previous instance may still hold the port
		if l, err = net.Listen("tcp", *addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	version, _ := os.ReadFile(filepath.Join(*dir, "VERSION"))
	status := 200
	if b, err := os.ReadFile(filepath.Join(*dir, "health_status")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			status = n
		}
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		holdWhile(*hold)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(string(version)))
	})
	_ = http.Serve(l, nil)
}

// holdWhile waits while file exists (at most a minute), having created
// file.waiting to say so; "" does not wait.
func holdWhile(file string) {
	if file == "" {
		return
	}
	if _, err := os.Stat(file); err != nil {
		return
	}
	os.WriteFile(file+".waiting", nil, 0o644)
	defer os.Remove(file + ".waiting")
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(file); err != nil {
			return
		}
	}
}
