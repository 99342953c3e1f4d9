// Command fake-ecr serves an Amazon ECR API endpoint that mints
// short-lived tokens (internal/testing/fakeecr), for the cloud demo: the
// real ecr-credential-provider, pointed at it through AWS_ENDPOINT_URL_ECR,
// gets a new token at every call. POST /fail?n=N makes the next N calls
// fail; POST /recover ends that.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/testing/fakeecr"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to serve on")
	lifetime := flag.Duration("token-lifetime", 4*time.Minute, "life of a minted token")
	awsDir := flag.String("aws-dir", os.TempDir(), "folder for the (absent) AWS config files the env points at")
	flag.Parse()

	ecr := fakeecr.New(fakeecr.Options{Lifetime: *lifetime})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ecr.URL = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/", ecr)
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		ecr.FailNext(n, http.StatusInternalServerError, "ServerException", "the demo broke ECR")
	})
	mux.HandleFunc("POST /recover", func(w http.ResponseWriter, r *http.Request) { ecr.Recover() })
	// The demo reads these lines: the plugin's environment and the registry host.
	fmt.Println("HOST=" + ecr.Host("us-west-2"))
	fmt.Println("ADMIN=" + ecr.URL)
	fmt.Println("ENV=" + strings.Join(ecr.EnvIn(*awsDir), " "))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
