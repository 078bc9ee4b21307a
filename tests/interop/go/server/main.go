// Command server is the gRPC echo server (pilotfish.interop.Echo + grpc.health.v1.Health)
// used as the upstream in pilotfish's HTTP/2 / gRPC interop tests and benchmarks.
//
//	server -addr 127.0.0.1:50051                               # h2c (plaintext, prior knowledge)
//	server -addr :50052 -tls-cert srv.crt -tls-key srv.key     # TLS, ALPN h2
//	       [-client-ca ca.crt]   require and verify client certificates (mTLS)
//	       [-http-addr :50061]   also a plain net/http HTTP/2 echo handler (h2c or TLS,
//	                             same credentials as -addr) for non-gRPC HTTP/2 checks
//
// Metadata: request metadata keys starting with "x-echo-header-" come back as response
// headers, "x-echo-trailer-" as trailers (same key, all values; "-bin" keys too).
// Every response carries the header "x-echo-server: <-name>".
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "pilotfish/interop/echopb"
)

var serverName = "go"

type echoServer struct {
	pb.UnimplementedEchoServer
}

func payload(n int32) []byte {
	if n <= 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// sleep waits d ms or until ctx is done.
func sleep(ctx context.Context, ms int32) error {
	if ms <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// echoMetadata splits the request's x-echo-header-* / x-echo-trailer-* metadata.
func echoMetadata(ctx context.Context) (hdr, trl metadata.MD) {
	hdr = metadata.Pairs("x-echo-server", serverName)
	trl = metadata.MD{}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, v := range md {
		switch {
		case strings.HasPrefix(k, "x-echo-header-"):
			hdr[k] = append(hdr[k], v...)
		case strings.HasPrefix(k, "x-echo-trailer-"):
			trl[k] = append(trl[k], v...)
		}
	}
	return hdr, trl
}

func fail(req *pb.EchoRequest) error {
	if req.StatusCode != 0 {
		return status.Error(codes.Code(req.StatusCode), req.Message)
	}
	return nil
}

func (echoServer) Unary(ctx context.Context, req *pb.EchoRequest) (*pb.EchoReply, error) {
	hdr, trl := echoMetadata(ctx)
	grpc.SetHeader(ctx, hdr)
	grpc.SetTrailer(ctx, trl)
	if err := sleep(ctx, req.DelayMs); err != nil {
		return nil, err
	}
	if err := fail(req); err != nil {
		return nil, err
	}
	return &pb.EchoReply{Message: req.Message, Payload: payload(req.PayloadSize)}, nil
}

func (echoServer) ServerStream(req *pb.EchoRequest, st pb.Echo_ServerStreamServer) error {
	ctx := st.Context()
	hdr, trl := echoMetadata(ctx)
	st.SetTrailer(trl)
	if err := st.SendHeader(hdr); err != nil {
		return err
	}
	n := req.ResponseCount
	if n <= 0 {
		n = 1
	}
	p := payload(req.PayloadSize)
	for i := int32(0); i < n; i++ {
		if err := sleep(ctx, req.DelayMs); err != nil {
			return err
		}
		if err := st.Send(&pb.EchoReply{Message: req.Message, Index: i, Payload: p}); err != nil {
			return err
		}
	}
	return fail(req)
}

func (echoServer) ClientStream(st pb.Echo_ClientStreamServer) error {
	ctx := st.Context()
	hdr, trl := echoMetadata(ctx)
	grpc.SetHeader(ctx, hdr)
	st.SetTrailer(trl)
	var msgs []string
	var last *pb.EchoRequest
	for {
		req, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		msgs = append(msgs, req.Message)
		last = req
		if err := sleep(ctx, req.DelayMs); err != nil {
			return err
		}
		if err := fail(req); err != nil {
			return err
		}
	}
	r := &pb.EchoReply{Message: strings.Join(msgs, ","), Index: int32(len(msgs))}
	if last != nil {
		r.Payload = payload(last.PayloadSize)
	}
	return st.SendAndClose(r)
}

func (echoServer) BidiStream(st pb.Echo_BidiStreamServer) error {
	ctx := st.Context()
	hdr, trl := echoMetadata(ctx)
	st.SetTrailer(trl)
	if err := st.SendHeader(hdr); err != nil {
		return err
	}
	for i := int32(0); ; i++ {
		req, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := sleep(ctx, req.DelayMs); err != nil {
			return err
		}
		if err := fail(req); err != nil {
			return err
		}
		if err := st.Send(&pb.EchoReply{Message: req.Message, Index: i, Payload: payload(req.PayloadSize)}); err != nil {
			return err
		}
	}
}

// httpEcho is a plain HTTP handler: GET answers a fixed body, any other method echoes
// the request body. Headers x-echo-method, x-echo-proto; trailers x-echo-body-len and
// x-echo-body-sha256 (of the request body) plus every request trailer as
// x-echo-req-trailer-<name>.
func httpEcho(w http.ResponseWriter, r *http.Request) {
	body, err := ioutil.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Echo-Server", serverName)
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Proto", r.Proto)
	h.Set("Trailer", "X-Echo-Body-Len, X-Echo-Body-Sha256")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		io.WriteString(w, "hello from pilotfish interop "+serverName+"\n")
	} else {
		w.Write(body)
	}
	h.Set("X-Echo-Body-Len", strconv.Itoa(len(body)))
	h.Set("X-Echo-Body-Sha256", hex.EncodeToString(sum[:]))
	for k, v := range r.Trailer {
		for _, s := range v {
			h.Add(http.TrailerPrefix+"X-Echo-Req-Trailer-"+k, s)
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "gRPC listen address")
	cert := flag.String("tls-cert", "", "server certificate (PEM); with -tls-key serves TLS (ALPN h2) instead of h2c")
	key := flag.String("tls-key", "", "server private key (PEM)")
	clientCA := flag.String("client-ca", "", "with TLS: require client certificates signed by this CA")
	httpAddr := flag.String("http-addr", "", "also serve the plain HTTP/2 echo handler here (h2c prior knowledge/upgrade, or TLS h2 when -tls-cert)")
	flag.StringVar(&serverName, "name", serverName, "value of the x-echo-server response header")
	flag.Parse()

	var tlsCfg *tls.Config
	if *cert != "" || *key != "" {
		kp, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatalf("server: load key pair: %v", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{kp}, NextProtos: []string{"h2", "http/1.1"}}
		if *clientCA != "" {
			pem, err := ioutil.ReadFile(*clientCA)
			if err != nil {
				log.Fatalf("server: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				log.Fatalf("server: no certificate in %s", *clientCA)
			}
			tlsCfg.ClientCAs = pool
			tlsCfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}

	var opts []grpc.ServerOption
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	opts = append(opts, grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	s := grpc.NewServer(opts...)
	pb.RegisterEchoServer(s, echoServer{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("pilotfish.interop.Echo", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("server: listen %s: %v", *addr, err)
	}
	mode := "h2c"
	if tlsCfg != nil {
		mode = "tls"
	}
	log.Printf("server %s: gRPC %s listening on %s", serverName, mode, lis.Addr())

	var hsrv *http.Server
	if *httpAddr != "" {
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			log.Fatalf("server: listen %s: %v", *httpAddr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/", httpEcho)
		if tlsCfg != nil {
			hsrv = &http.Server{Handler: mux, TLSConfig: tlsCfg.Clone()}
			http2.ConfigureServer(hsrv, &http2.Server{})
			go hsrv.Serve(tls.NewListener(hl, hsrv.TLSConfig))
		} else {
			hsrv = &http.Server{Handler: h2c.NewHandler(mux, &http2.Server{})}
			go hsrv.Serve(hl)
		}
		log.Printf("server %s: HTTP echo (%s) listening on %s", serverName, mode, hl.Addr())
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		hs.Shutdown()
		if hsrv != nil {
			hsrv.Close()
		}
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			s.Stop()
		}
	}()
	if err := s.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(1)
	}
}
