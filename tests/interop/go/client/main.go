// Command client runs interop scenarios (or a load test) against a
// pilotfish.interop.Echo server, directly or through a proxy.
//
//	client -addr 127.0.0.1:10000 -scenario all                      # h2c prior knowledge
//	client -addr 127.0.0.1:10443 -tls -ca ca.crt -server-name localhost -scenario unary,bidi
//	client -addr ... -load -duration 5s -concurrency 50 [-rpcs N] [-conns 4] [-payload-size 0] [-warmup 1s] [-rpc unary|bidi]
//
// Scenario mode prints one line per scenario, "RESULT <scenario> PASS|FAIL <detail>",
// and exits 0 only if all passed. Load mode prints one JSON line.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "pilotfish/interop/echopb"
)

var (
	addr        = flag.String("addr", "127.0.0.1:50051", "server or proxy address host:port")
	useTLS      = flag.Bool("tls", false, "use TLS (ALPN h2) instead of h2c prior knowledge")
	caFile      = flag.String("ca", "", "with -tls: CA certificate (PEM) to verify the server")
	serverName  = flag.String("server-name", "", "with -tls: name to verify / send as SNI (default: host of -addr)")
	certFile    = flag.String("tls-cert", "", "with -tls: client certificate (PEM) for mTLS")
	keyFile     = flag.String("tls-key", "", "with -tls: client key (PEM)")
	authority   = flag.String("authority", "", ":authority to send (default: -addr); e.g. a proxy virtual host")
	scenarios   = flag.String("scenario", "all", "comma-separated scenarios, or all: "+strings.Join(allScenarios, ","))
	count       = flag.Int("n", 10, "messages per stream in server_stream/client_stream/bidi")
	statusCode  = flag.Int("status-code", int(codes.FailedPrecondition), "error_status: gRPC code the server must return")
	timeout     = flag.Duration("timeout", 10*time.Second, "deadline for each scenario")
	load        = flag.Bool("load", false, "load mode: unary RPCs from -concurrency workers, JSON summary")
	duration    = flag.Duration("duration", 5*time.Second, "load: how long to run (0: until -rpcs)")
	concurrency = flag.Int("concurrency", 50, "load: concurrent workers (outstanding RPCs)")
	conns       = flag.Int("conns", 1, "load: HTTP/2 connections (workers spread round-robin)")
	rpcs        = flag.Int64("rpcs", 0, "load: stop after this many RPCs in total (0: no bound)")
	payloadSize = flag.Int("payload-size", 0, "load: reply payload bytes; the request message carries as many bytes too")
	loadRPC     = flag.String("rpc", "unary", "load: unary or bidi (ping-pong on one stream per worker)")
	warmup      = flag.Duration("warmup", 0, "load: run this long first, unmeasured")
)

var allScenarios = []string{"unary", "server_stream", "client_stream", "bidi", "error_status",
	"stream_error", "deadline", "large_payload", "metadata", "health"}

const errMessage = "pilotfish interop: 100% failed, ünïcode ✓"

func dial(ctx context.Context) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithBlock(), grpc.WithReturnConnectionError(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20))}
	if *useTLS {
		cfg := &tls.Config{ServerName: *serverName}
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
		if *certFile != "" {
			kp, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				return nil, err
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if *authority != "" {
		opts = append(opts, grpc.WithAuthority(*authority))
	}
	return grpc.DialContext(ctx, *addr, opts...)
}

func checkPayload(p []byte, n int) error {
	if len(p) != n {
		return fmt.Errorf("payload: got %d bytes, want %d", len(p), n)
	}
	for i, b := range p {
		if b != byte(i%251) {
			return fmt.Errorf("payload: byte %d is %d, want %d", i, b, byte(i%251))
		}
	}
	return nil
}

func wantCode(err error, c codes.Code, msg string) error {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return fmt.Errorf("want status %v, got %v", c, err)
	}
	if st.Code() != c {
		return fmt.Errorf("want status %v, got %v (%q)", c, st.Code(), st.Message())
	}
	if msg != "" && st.Message() != msg {
		return fmt.Errorf("status message: got %q, want %q", st.Message(), msg)
	}
	return nil
}

func run(ctx context.Context, cc *grpc.ClientConn, name string) error {
	c := pb.NewEchoClient(cc)
	n := *count
	switch name {
	case "unary":
		r, err := c.Unary(ctx, &pb.EchoRequest{Message: "hello", PayloadSize: 100})
		if err != nil {
			return err
		}
		if r.Message != "hello" {
			return fmt.Errorf("message: got %q", r.Message)
		}
		return checkPayload(r.Payload, 100)

	case "server_stream":
		st, err := c.ServerStream(ctx, &pb.EchoRequest{Message: "ss", ResponseCount: int32(n), PayloadSize: 10})
		if err != nil {
			return err
		}
		for i := 0; ; i++ {
			r, err := st.Recv()
			if err == io.EOF {
				if i != n {
					return fmt.Errorf("got %d replies, want %d", i, n)
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("after %d replies: %w", i, err)
			}
			if int(r.Index) != i || r.Message != "ss" {
				return fmt.Errorf("reply %d: index %d message %q", i, r.Index, r.Message)
			}
			if err := checkPayload(r.Payload, 10); err != nil {
				return err
			}
		}

	case "client_stream":
		st, err := c.ClientStream(ctx)
		if err != nil {
			return err
		}
		var want []string
		for i := 0; i < n; i++ {
			m := fmt.Sprintf("m%d", i)
			want = append(want, m)
			if err := st.Send(&pb.EchoRequest{Message: m, PayloadSize: 7}); err != nil {
				return fmt.Errorf("send %d: %w", i, err)
			}
		}
		r, err := st.CloseAndRecv()
		if err != nil {
			return err
		}
		if r.Message != strings.Join(want, ",") || int(r.Index) != n {
			return fmt.Errorf("reply: index %d message %q", r.Index, r.Message)
		}
		return checkPayload(r.Payload, 7)

	case "bidi":
		st, err := c.BidiStream(ctx)
		if err != nil {
			return err
		}
		// Ping-pong: each reply must arrive before the next request is sent, which
		// proves the proxy forwards stream data without waiting for end of stream.
		for i := 0; i < n; i++ {
			m := fmt.Sprintf("b%d", i)
			if err := st.Send(&pb.EchoRequest{Message: m, PayloadSize: int32(i)}); err != nil {
				return fmt.Errorf("send %d: %w", i, err)
			}
			r, err := st.Recv()
			if err != nil {
				return fmt.Errorf("recv %d: %w", i, err)
			}
			if r.Message != m || int(r.Index) != i {
				return fmt.Errorf("reply %d: index %d message %q", i, r.Index, r.Message)
			}
			if err := checkPayload(r.Payload, i); err != nil {
				return err
			}
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		if _, err := st.Recv(); err != io.EOF {
			return fmt.Errorf("after CloseSend: want EOF, got %v", err)
		}
		return nil

	case "error_status":
		_, err := c.Unary(ctx, &pb.EchoRequest{Message: errMessage, StatusCode: int32(*statusCode)})
		return wantCode(err, codes.Code(*statusCode), errMessage)

	case "stream_error":
		// Status in trailers after data (not Trailers-Only).
		st, err := c.ServerStream(ctx, &pb.EchoRequest{Message: errMessage, ResponseCount: 3, StatusCode: int32(codes.ResourceExhausted)})
		if err != nil {
			return err
		}
		got := 0
		for {
			_, err := st.Recv()
			if err != nil {
				if got != 3 {
					return fmt.Errorf("got %d replies before the error, want 3 (%v)", got, err)
				}
				return wantCode(err, codes.ResourceExhausted, errMessage)
			}
			got++
		}

	case "deadline":
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		_, err := c.Unary(dctx, &pb.EchoRequest{Message: "slow", DelayMs: 5000})
		if e := wantCode(err, codes.DeadlineExceeded, ""); e != nil {
			return e
		}
		if d := time.Since(t0); d > 3*time.Second {
			return fmt.Errorf("DEADLINE_EXCEEDED only after %v", d)
		}
		return nil

	case "large_payload":
		big := strings.Repeat("x", 1<<20)
		r, err := c.Unary(ctx, &pb.EchoRequest{Message: big, PayloadSize: 1 << 20})
		if err != nil {
			return err
		}
		if r.Message != big {
			return fmt.Errorf("1 MiB message came back as %d bytes", len(r.Message))
		}
		return checkPayload(r.Payload, 1<<20)

	case "metadata":
		bin := []byte{0, 1, 2, 0xfe, 0xff}
		md := metadata.Pairs("x-echo-header-a", "va", "x-echo-header-a", "va2",
			"x-echo-trailer-b", "vb", "x-echo-trailer-c-bin", string(bin))
		mctx := metadata.NewOutgoingContext(ctx, md)
		for _, rpc := range []string{"unary", "server_stream"} {
			var hdr, trl metadata.MD
			if rpc == "unary" {
				if _, err := c.Unary(mctx, &pb.EchoRequest{Message: "md"}, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
					return err
				}
			} else {
				st, err := c.ServerStream(mctx, &pb.EchoRequest{Message: "md", ResponseCount: 2})
				if err != nil {
					return err
				}
				for {
					if _, err := st.Recv(); err == io.EOF {
						break
					} else if err != nil {
						return err
					}
				}
				hdr, _ = st.Header()
				trl = st.Trailer()
			}
			if got := hdr.Get("x-echo-header-a"); strings.Join(got, "|") != "va|va2" {
				return fmt.Errorf("%s: header x-echo-header-a = %q, want [va va2]", rpc, got)
			}
			if got := hdr.Get("x-echo-server"); len(got) != 1 {
				return fmt.Errorf("%s: header x-echo-server = %q", rpc, got)
			}
			if got := trl.Get("x-echo-trailer-b"); len(got) != 1 || got[0] != "vb" {
				return fmt.Errorf("%s: trailer x-echo-trailer-b = %q", rpc, got)
			}
			if got := trl.Get("x-echo-trailer-c-bin"); len(got) != 1 || !bytes.Equal([]byte(got[0]), bin) {
				return fmt.Errorf("%s: trailer x-echo-trailer-c-bin = %q", rpc, got)
			}
			if len(trl.Get("x-echo-header-a")) != 0 || len(hdr.Get("x-echo-trailer-b")) != 0 {
				return fmt.Errorf("%s: header/trailer mixed up: hdr=%v trl=%v", rpc, hdr, trl)
			}
		}
		return nil

	case "health":
		h := healthpb.NewHealthClient(cc)
		for _, svc := range []string{"", "pilotfish.interop.Echo"} {
			r, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				return fmt.Errorf("Check(%q): %w", svc, err)
			}
			if r.Status != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("Check(%q): %v", svc, r.Status)
			}
		}
		_, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
		return wantCode(err, codes.NotFound, "")
	}
	return fmt.Errorf("unknown scenario %q", name)
}

func runScenarios() int {
	names := allScenarios
	if *scenarios != "all" {
		names = strings.Split(*scenarios, ",")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	cc, err := dial(ctx)
	cancel()
	if err != nil {
		for _, n := range names {
			fmt.Printf("RESULT %s FAIL connect %s: %v\n", n, *addr, err)
		}
		return 1
	}
	defer cc.Close()
	rc := 0
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		t0 := time.Now()
		err := run(ctx, cc, n)
		cancel()
		if err != nil {
			fmt.Printf("RESULT %s FAIL %v\n", n, err)
			rc = 1
		} else {
			fmt.Printf("RESULT %s PASS %.1fms\n", n, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	return rc
}

type loadResult struct {
	Client      string  `json:"client"`
	Target      string  `json:"target"`
	TLS         bool    `json:"tls"`
	RPC         string  `json:"rpc"`
	Concurrency int     `json:"concurrency"`
	Conns       int     `json:"conns"`
	PayloadSize int     `json:"payload_size"`
	DurationS   float64 `json:"duration_s"`
	RPCs        int64   `json:"rpcs"`
	Errors      int64   `json:"errors"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	Maxms       float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

func pct(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	i := int(p*float64(len(lat))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(lat) {
		i = len(lat) - 1
	}
	return float64(lat[i].Microseconds()) / 1000
}

func runLoad() int {
	if *concurrency < 1 || *conns < 1 || (*duration <= 0 && *rpcs <= 0) {
		fmt.Fprintln(os.Stderr, "client: load needs -concurrency >= 1, -conns >= 1 and -duration or -rpcs")
		return 2
	}
	ccs := make([]*grpc.ClientConn, *conns)
	for i := range ccs {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		cc, err := dial(ctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "client: connect %s: %v\n", *addr, err)
			return 1
		}
		defer cc.Close()
		ccs[i] = cc
	}
	req := &pb.EchoRequest{Message: strings.Repeat("x", *payloadSize), PayloadSize: int32(*payloadSize)}
	if *warmup > 0 {
		loadPhase(ccs, req, *warmup, 0)
	}
	all, errs, firstErr, elapsed := loadPhase(ccs, req, *duration, *rpcs)
	r := loadResult{Client: "go", Target: *addr, TLS: *useTLS, RPC: *loadRPC, Concurrency: *concurrency,
		Conns: *conns, PayloadSize: *payloadSize, DurationS: elapsed.Seconds(), RPCs: int64(len(all)),
		Errors: errs, RPS: float64(len(all)) / elapsed.Seconds(),
		P50ms: pct(all, 0.50), P90ms: pct(all, 0.90), P99ms: pct(all, 0.99), Maxms: pct(all, 1)}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	if errs > 0 || len(all) == 0 {
		return 1
	}
	return 0
}

// loadPhase runs -concurrency closed-loop workers until dur passes or maxRPCs were issued;
// it returns the sorted latencies of the successful RPCs.
func loadPhase(ccs []*grpc.ClientConn, req *pb.EchoRequest, dur time.Duration, maxRPCs int64) ([]time.Duration, int64, *atomic.Value, time.Duration) {
	rpcs := &maxRPCs
	ctx := context.Background()
	var stop context.CancelFunc = func() {}
	if dur > 0 {
		ctx, stop = context.WithTimeout(ctx, dur)
	}
	defer stop()
	var issued, errs int64
	firstErr := &atomic.Value{}
	lats := make([][]time.Duration, *concurrency)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := pb.NewEchoClient(ccs[w%len(ccs)])
			lat := make([]time.Duration, 0, 4096)
			record := func(err error, d time.Duration) {
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the run
					}
					if atomic.AddInt64(&errs, 1) == 1 {
						firstErr.Store(err.Error())
					}
					return
				}
				lat = append(lat, d)
			}
			var bidi pb.Echo_BidiStreamClient
			if *loadRPC == "bidi" {
				var err error
				if bidi, err = c.BidiStream(ctx); err != nil {
					record(err, 0)
					return
				}
				defer bidi.CloseSend()
			}
			for ctx.Err() == nil {
				if *rpcs > 0 && atomic.AddInt64(&issued, 1) > *rpcs {
					break
				}
				s := time.Now()
				var err error
				if bidi != nil {
					if err = bidi.Send(req); err == nil {
						_, err = bidi.Recv()
					}
				} else {
					_, err = c.Unary(ctx, req)
				}
				record(err, time.Since(s))
				if err != nil && bidi != nil {
					break
				}
			}
			lats[w] = lat
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all, errs, firstErr, elapsed
}

func main() {
	flag.Parse()
	if *serverName == "" {
		h := *addr
		if i := strings.LastIndex(h, ":"); i >= 0 {
			h = h[:i]
		}
		*serverName = strings.Trim(h, "[]")
	}
	if *load {
		os.Exit(runLoad())
	}
	os.Exit(runScenarios())
}

