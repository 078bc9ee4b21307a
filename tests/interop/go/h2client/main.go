// Command h2client is a small HTTP/2 client (golang.org/x/net/http2) for the echo
// server's plain HTTP handler (server -http-addr), directly or through a proxy.
//
//	h2client -url http://127.0.0.1:10000/echo                       # h2c prior knowledge
//	h2client -url https://localhost:10443/echo -ca ca.crt           # TLS, ALPN h2
//
// It runs a GET and a POST (with a body and request trailers) and checks: HTTP/2.0,
// status 200, the body, and the response trailers x-echo-body-len / x-echo-body-sha256 /
// x-echo-req-trailer-*. Prints "RESULT h2_get|h2_post PASS|FAIL detail"; exit 0/1.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
)

var (
	rawURL     = flag.String("url", "http://127.0.0.1:50061/echo", "http:// (h2c prior knowledge) or https:// (TLS, ALPN h2)")
	caFile     = flag.String("ca", "", "CA certificate (PEM) for https")
	serverName = flag.String("server-name", "", "TLS server name (default: host of -url)")
	host       = flag.String("host", "", "Host / :authority to send (default: from -url)")
	bodySize   = flag.Int("body-size", 100000, "POST body size in bytes")
	timeout    = flag.Duration("timeout", 10*time.Second, "per-request timeout")
)

func client() (*http.Client, error) {
	t := &http2.Transport{}
	if strings.HasPrefix(*rawURL, "http://") {
		t.AllowHTTP = true
		t.DialTLS = func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.DialTimeout(network, addr, *timeout)
		}
	} else {
		cfg := &tls.Config{ServerName: *serverName, NextProtos: []string{"h2"}}
		if *caFile != "" {
			pem, err := ioutil.ReadFile(*caFile)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %s", *caFile)
			}
			cfg.RootCAs = pool
		}
		t.TLSClientConfig = cfg
	}
	return &http.Client{Transport: t, Timeout: *timeout}, nil
}

func do(c *http.Client, method string, body []byte) error {
	var rd io.Reader
	if body != nil {
		// A reader of unknown length makes the transport stream it, so that request
		// trailers can follow the data.
		rd = io.MultiReader(bytes.NewReader(body))
	}
	req, err := http.NewRequest(method, *rawURL, rd)
	if err != nil {
		return err
	}
	if *host != "" {
		req.Host = *host
	}
	if body != nil {
		req.Trailer = http.Header{"X-Client-Trailer": {"ct-value"}}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := ioutil.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if resp.ProtoMajor != 2 {
		return fmt.Errorf("protocol %s, want HTTP/2.0", resp.Proto)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %q", resp.StatusCode, got)
	}
	if body == nil {
		if !strings.HasPrefix(string(got), "hello from pilotfish interop") {
			return fmt.Errorf("body %q", got)
		}
	} else if !bytes.Equal(got, body) {
		return fmt.Errorf("echoed body: %d bytes, want %d identical", len(got), len(body))
	}
	sum := sha256.Sum256(body)
	if v := resp.Trailer.Get("X-Echo-Body-Len"); v != strconv.Itoa(len(body)) {
		return fmt.Errorf("trailer x-echo-body-len = %q, want %d (trailers: %v)", v, len(body), resp.Trailer)
	}
	if v := resp.Trailer.Get("X-Echo-Body-Sha256"); v != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("trailer x-echo-body-sha256 = %q", v)
	}
	if body != nil {
		if v := resp.Trailer.Get("X-Echo-Req-Trailer-X-Client-Trailer"); v != "ct-value" {
			return fmt.Errorf("request trailer not seen by the server (trailers: %v)", resp.Trailer)
		}
	}
	return nil
}

func main() {
	flag.Parse()
	c, err := client()
	if err != nil {
		fmt.Fprintln(os.Stderr, "h2client:", err)
		os.Exit(2)
	}
	body := make([]byte, *bodySize)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	rc := 0
	for _, tc := range []struct {
		name, method string
		body         []byte
	}{{"h2_get", "GET", nil}, {"h2_post", "POST", body}} {
		if err := do(c, tc.method, tc.body); err != nil {
			fmt.Printf("RESULT %s FAIL %v\n", tc.name, err)
			rc = 1
		} else {
			fmt.Printf("RESULT %s PASS\n", tc.name)
		}
	}
	os.Exit(rc)
}
