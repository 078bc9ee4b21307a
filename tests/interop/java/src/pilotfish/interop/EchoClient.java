package pilotfish.interop;

import com.google.protobuf.ByteString;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import pilotfish.interop.echo.EchoGrpc;
import pilotfish.interop.echo.EchoReply;
import pilotfish.interop.echo.EchoRequest;

/**
 * grpc-java (Netty) interop / load client for pilotfish.interop.Echo; same flags, scenarios
 * and output as the Go client (tests/interop/go/client).
 *
 * <pre>
 *   java-client -addr 127.0.0.1:10000 -scenario all
 *   java-client -addr 127.0.0.1:10443 -tls -ca ca.crt -server-name localhost
 *   java-client -addr ... -load -duration 5s -concurrency 50 [-rpcs N] [-conns 4]
 * </pre>
 *
 * TLS uses OpenSSL through netty-tcnative (Debian's Netty has no JDK ALPN): the wrapper
 * script sets -Djava.library.path to a folder holding libnetty_tcnative.so.
 */
public final class EchoClient {
  static final String[] ALL = {"unary", "server_stream", "client_stream", "bidi", "error_status",
      "stream_error", "deadline", "large_payload", "metadata", "health"};
  static final String ERR_MESSAGE = "pilotfish interop: 100% failed, ünïcode ✓";

  final Map<String, String> opt = new HashMap<>();
  final List<ManagedChannel> channels = new ArrayList<>();

  EchoClient(String[] args) {
    String[][] defaults = {{"addr", "127.0.0.1:50051"}, {"ca", ""}, {"server-name", ""},
        {"tls-cert", ""}, {"tls-key", ""}, {"authority", ""}, {"scenario", "all"}, {"n", "10"},
        {"status-code", "9"}, {"timeout", "10s"}, {"duration", "5s"}, {"concurrency", "50"},
        {"conns", "1"}, {"rpcs", "0"}, {"warmup", "1s"}, {"payload-size", "0"}, {"rpc", "unary"}};
    for (String[] d : defaults) opt.put(d[0], d[1]);
    for (int i = 0; i < args.length; i++) {
      String a = args[i].replaceFirst("^--?", "");
      String v = null;
      int eq = a.indexOf('=');
      if (eq >= 0) { v = a.substring(eq + 1); a = a.substring(0, eq); }
      if (a.equals("tls") || a.equals("load")) { opt.put(a, v == null ? "true" : v); continue; }
      if (a.equals("h") || a.equals("help")) usage(0);
      if (!opt.containsKey(a)) { System.err.println("unknown flag -" + a); usage(2); }
      if (v == null) {
        if (++i >= args.length) { System.err.println("flag -" + a + " needs a value"); usage(2); }
        v = args[i];
      }
      opt.put(a, v);
    }
  }

  static void usage(int rc) {
    System.err.println("usage: java-client [-addr host:port] [-tls [-ca f] [-server-name n] [-tls-cert f -tls-key f]]"
        + " [-authority a] [-scenario all|" + String.join(",", ALL) + "] [-n 10] [-status-code 9] [-timeout 10s]"
        + " | -load [-duration 5s] [-concurrency 50] [-conns 1] [-rpcs 0] [-warmup 1s] [-payload-size 0] [-rpc unary|bidi]");
    System.exit(rc);
  }

  boolean flag(String k) { return "true".equals(opt.get(k)); }
  int intOpt(String k) { return Integer.parseInt(opt.get(k)); }

  static long millis(String d) {
    if (d.endsWith("ms")) return Long.parseLong(d.substring(0, d.length() - 2));
    if (d.endsWith("s")) return (long) (Double.parseDouble(d.substring(0, d.length() - 1)) * 1000);
    if (d.endsWith("m")) return Long.parseLong(d.substring(0, d.length() - 1)) * 60000;
    return Long.parseLong(d);
  }

  ManagedChannel channel() throws Exception {
    String addr = opt.get("addr");
    NettyChannelBuilder b = NettyChannelBuilder.forTarget(addr)
        .maxInboundMessageSize(16 << 20);
    String authority = opt.get("authority");
    if (flag("tls")) {
      SslContextBuilder ssl = GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.OPENSSL);
      if (!opt.get("ca").isEmpty()) ssl.trustManager(new File(opt.get("ca")));
      if (!opt.get("tls-cert").isEmpty()) ssl.keyManager(new File(opt.get("tls-cert")), new File(opt.get("tls-key")));
      b.sslContext(ssl.build());
      // Netty takes SNI and the name to verify from the authority.
      if (authority.isEmpty() && !opt.get("server-name").isEmpty())
        authority = opt.get("server-name") + addr.substring(addr.lastIndexOf(':'));
    } else {
      b.usePlaintext();
    }
    if (!authority.isEmpty()) b.overrideAuthority(authority);
    ManagedChannel ch = b.build();
    channels.add(ch);
    return ch;
  }

  static ByteString expected(int n) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) b[i] = (byte) (i % 251);
    return ByteString.copyFrom(b);
  }

  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  static void checkPayload(ByteString p, int n) {
    check(p.size() == n, "payload: got " + p.size() + " bytes, want " + n);
    check(p.equals(expected(n)), "payload: wrong content");
  }

  static void wantStatus(Throwable t, Status.Code code, String msg) {
    if (t == null) throw new AssertionError("want status " + code + ", got OK");
    Status s = Status.fromThrowable(t);
    check(s.getCode() == code, "want status " + code + ", got " + s.getCode() + " (" + s.getDescription() + ")");
    if (msg != null) check(msg.equals(s.getDescription()),
        "status message: got \"" + s.getDescription() + "\", want \"" + msg + "\"");
  }

  /** Collects a streaming response into a queue: replies, then null or a Throwable. */
  static final class Collector<T> implements StreamObserver<T> {
    final BlockingQueue<Object> q = new ArrayBlockingQueue<>(10000);
    public void onNext(T v) { q.add(v); }
    public void onError(Throwable t) { q.add(t); }
    public void onCompleted() { q.add(Boolean.TRUE); }
    Object take(long ms) throws InterruptedException {
      Object o = q.poll(ms, TimeUnit.MILLISECONDS);
      if (o == null) throw new AssertionError("timed out waiting for a reply");
      return o;
    }
  }

  void run(Channel ch, String name, long timeoutMs) throws Exception {
    EchoGrpc.EchoBlockingStub blocking = EchoGrpc.newBlockingStub(ch).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS);
    EchoGrpc.EchoStub async = EchoGrpc.newStub(ch).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS);
    int n = intOpt("n");
    switch (name) {
      case "unary": {
        EchoReply r = blocking.unary(EchoRequest.newBuilder().setMessage("hello").setPayloadSize(100).build());
        check(r.getMessage().equals("hello"), "message: " + r.getMessage());
        checkPayload(r.getPayload(), 100);
        return;
      }
      case "server_stream": {
        Iterator<EchoReply> it = blocking.serverStream(
            EchoRequest.newBuilder().setMessage("ss").setResponseCount(n).setPayloadSize(10).build());
        int i = 0;
        while (it.hasNext()) {
          EchoReply r = it.next();
          check(r.getIndex() == i && r.getMessage().equals("ss"), "reply " + i + ": index " + r.getIndex());
          checkPayload(r.getPayload(), 10);
          i++;
        }
        check(i == n, "got " + i + " replies, want " + n);
        return;
      }
      case "client_stream": {
        Collector<EchoReply> c = new Collector<>();
        StreamObserver<EchoRequest> req = async.clientStream(c);
        List<String> want = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          want.add("m" + i);
          req.onNext(EchoRequest.newBuilder().setMessage("m" + i).setPayloadSize(7).build());
        }
        req.onCompleted();
        Object o = c.take(timeoutMs);
        if (o instanceof Throwable) throw new AssertionError("client_stream: " + o, (Throwable) o);
        EchoReply r = (EchoReply) o;
        check(r.getMessage().equals(String.join(",", want)) && r.getIndex() == n,
            "reply: index " + r.getIndex() + " message " + r.getMessage());
        checkPayload(r.getPayload(), 7);
        check(c.take(timeoutMs) == Boolean.TRUE, "no completion after the reply");
        return;
      }
      case "bidi": {
        Collector<EchoReply> c = new Collector<>();
        StreamObserver<EchoRequest> req = async.bidiStream(c);
        for (int i = 0; i < n; i++) { // ping-pong: reply i before request i+1
          req.onNext(EchoRequest.newBuilder().setMessage("b" + i).setPayloadSize(i).build());
          Object o = c.take(timeoutMs);
          if (o instanceof Throwable) throw new AssertionError("recv " + i + ": " + o, (Throwable) o);
          check(o instanceof EchoReply, "recv " + i + ": stream ended early");
          EchoReply r = (EchoReply) o;
          check(r.getMessage().equals("b" + i) && r.getIndex() == i, "reply " + i + ": index " + r.getIndex());
          checkPayload(r.getPayload(), i);
        }
        req.onCompleted();
        Object o = c.take(timeoutMs);
        check(o == Boolean.TRUE, "after half-close: want completion, got " + o);
        return;
      }
      case "error_status": {
        int code = intOpt("status-code");
        try {
          blocking.unary(EchoRequest.newBuilder().setMessage(ERR_MESSAGE).setStatusCode(code).build());
          wantStatus(null, Status.Code.values()[code], ERR_MESSAGE);
        } catch (StatusRuntimeException e) {
          wantStatus(e, Status.fromCodeValue(code).getCode(), ERR_MESSAGE);
        }
        return;
      }
      case "stream_error": {
        Iterator<EchoReply> it = blocking.serverStream(EchoRequest.newBuilder().setMessage(ERR_MESSAGE)
            .setResponseCount(3).setStatusCode(Status.Code.RESOURCE_EXHAUSTED.value()).build());
        int got = 0;
        try {
          while (it.hasNext()) { it.next(); got++; }
          wantStatus(null, Status.Code.RESOURCE_EXHAUSTED, ERR_MESSAGE);
        } catch (StatusRuntimeException e) {
          check(got == 3, "got " + got + " replies before the error, want 3 (" + e + ")");
          wantStatus(e, Status.Code.RESOURCE_EXHAUSTED, ERR_MESSAGE);
        }
        return;
      }
      case "deadline": {
        long t0 = System.nanoTime();
        try {
          EchoGrpc.newBlockingStub(ch).withDeadlineAfter(300, TimeUnit.MILLISECONDS)
              .unary(EchoRequest.newBuilder().setMessage("slow").setDelayMs(5000).build());
          wantStatus(null, Status.Code.DEADLINE_EXCEEDED, null);
        } catch (StatusRuntimeException e) {
          wantStatus(e, Status.Code.DEADLINE_EXCEEDED, null);
        }
        long ms = (System.nanoTime() - t0) / 1000000;
        check(ms < 3000, "DEADLINE_EXCEEDED only after " + ms + "ms");
        return;
      }
      case "large_payload": {
        char[] big = new char[1 << 20];
        Arrays.fill(big, 'x');
        String s = new String(big);
        EchoReply r = blocking.unary(EchoRequest.newBuilder().setMessage(s).setPayloadSize(1 << 20).build());
        check(r.getMessage().equals(s), "1 MiB message came back as " + r.getMessage().length() + " chars");
        checkPayload(r.getPayload(), 1 << 20);
        return;
      }
      case "metadata": {
        Metadata.Key<String> ka = Metadata.Key.of("x-echo-header-a", Metadata.ASCII_STRING_MARSHALLER);
        Metadata.Key<String> kb = Metadata.Key.of("x-echo-trailer-b", Metadata.ASCII_STRING_MARSHALLER);
        Metadata.Key<byte[]> kc = Metadata.Key.of("x-echo-trailer-c-bin", Metadata.BINARY_BYTE_MARSHALLER);
        Metadata.Key<String> ks = Metadata.Key.of("x-echo-server", Metadata.ASCII_STRING_MARSHALLER);
        byte[] bin = {0, 1, 2, (byte) 0xfe, (byte) 0xff};
        Metadata out = new Metadata();
        out.put(ka, "va");
        out.put(ka, "va2");
        out.put(kb, "vb");
        out.put(kc, bin);
        for (String rpc : new String[] {"unary", "server_stream"}) {
          AtomicReference<Metadata> hdr = new AtomicReference<>(), trl = new AtomicReference<>();
          ClientInterceptor capture = MetadataUtils.newCaptureMetadataInterceptor(hdr, trl);
          Channel c2 = ClientInterceptors.intercept(ch, capture, MetadataUtils.newAttachHeadersInterceptor(out));
          EchoGrpc.EchoBlockingStub st = EchoGrpc.newBlockingStub(c2).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS);
          if (rpc.equals("unary")) {
            st.unary(EchoRequest.newBuilder().setMessage("md").build());
          } else {
            Iterator<EchoReply> it = st.serverStream(EchoRequest.newBuilder().setMessage("md").setResponseCount(2).build());
            while (it.hasNext()) it.next();
          }
          Metadata h = hdr.get(), t = trl.get();
          check(h != null && t != null, rpc + ": headers/trailers not captured");
          List<String> as = new ArrayList<>();
          Iterable<String> av = h.getAll(ka);
          if (av != null) av.forEach(as::add);
          check(as.equals(Arrays.asList("va", "va2")), rpc + ": header x-echo-header-a = " + as);
          check(h.get(ks) != null, rpc + ": no x-echo-server header");
          check("vb".equals(t.get(kb)), rpc + ": trailer x-echo-trailer-b = " + t.get(kb));
          check(Arrays.equals(bin, t.get(kc)), rpc + ": trailer x-echo-trailer-c-bin = " + Arrays.toString(t.get(kc)));
          check(t.get(ka) == null && h.get(kb) == null, rpc + ": header/trailer mixed up: hdr=" + h + " trl=" + t);
        }
        return;
      }
      case "health": {
        HealthGrpc.HealthBlockingStub h = HealthGrpc.newBlockingStub(ch).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS);
        for (String svc : new String[] {"", "pilotfish.interop.Echo"}) {
          HealthCheckResponse r = h.check(HealthCheckRequest.newBuilder().setService(svc).build());
          check(r.getStatus() == HealthCheckResponse.ServingStatus.SERVING, "Check(\"" + svc + "\"): " + r.getStatus());
        }
        try {
          h.check(HealthCheckRequest.newBuilder().setService("no.such.Service").build());
          wantStatus(null, Status.Code.NOT_FOUND, null);
        } catch (StatusRuntimeException e) {
          wantStatus(e, Status.Code.NOT_FOUND, null);
        }
        return;
      }
      default:
        throw new AssertionError("unknown scenario " + name);
    }
  }

  static String oneLine(Throwable t) {
    String s = t instanceof AssertionError && t.getMessage() != null ? t.getMessage() : t.toString();
    if (t.getCause() != null && t.getCause() != t && !(t instanceof AssertionError)) s += " (cause: " + t.getCause() + ")";
    return s.replace('\n', ' ');
  }

  int scenarios() throws Exception {
    String[] names = opt.get("scenario").equals("all") ? ALL : opt.get("scenario").split(",");
    long timeoutMs = millis(opt.get("timeout"));
    ManagedChannel ch = channel();
    int rc = 0;
    for (String name : names) {
      long t0 = System.nanoTime();
      try {
        run(ch, name, timeoutMs);
        System.out.printf("RESULT %s PASS %.1fms%n", name, (System.nanoTime() - t0) / 1e6);
      } catch (Throwable t) {
        System.out.println("RESULT " + name + " FAIL " + oneLine(t));
        rc = 1;
      }
    }
    return rc;
  }

  static double pct(long[] sorted, double p) {
    if (sorted.length == 0) return 0;
    int i = (int) Math.round(p * sorted.length) - 1;
    i = Math.max(0, Math.min(sorted.length - 1, i));
    return Math.round(sorted[i] / 1000.0) / 1000.0;
  }

  static String jsonStr(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
  }

  static final class Phase {
    long[][] lats; int[] counts; AtomicLong errors = new AtomicLong();
    AtomicReference<String> firstErr = new AtomicReference<>(); double elapsed;
  }

  /** Closed loop: conc workers, each with one outstanding RPC, until durMs or maxRpcs. */
  Phase phase(List<ManagedChannel> chs, EchoRequest req, int conc, boolean bidi, long durMs, long maxRpcs)
      throws InterruptedException {
    Phase ph = new Phase();
    AtomicLong issued = new AtomicLong();
    AtomicLong errors = ph.errors;
    AtomicReference<String> firstErr = ph.firstErr;
    int nconns = chs.size();
    long[][] lats = new long[conc][];
    int[] counts = new int[conc];
    long t0 = System.nanoTime();
    long end = durMs > 0 ? t0 + durMs * 1000000L : Long.MAX_VALUE;
    Thread[] ts = new Thread[conc];
    for (int w = 0; w < conc; w++) {
      final int wi = w;
      final Channel ch = chs.get(w % nconns);
      ts[w] = new Thread(() -> {
        long[] lat = new long[4096];
        int k = 0;
        EchoGrpc.EchoBlockingStub stub = EchoGrpc.newBlockingStub(ch);
        Collector<EchoReply> col = null;
        StreamObserver<EchoRequest> bs = null;
        if (bidi) {
          col = new Collector<>();
          bs = EchoGrpc.newStub(ch).bidiStream(col);
        }
        while (System.nanoTime() < end) {
          if (maxRpcs > 0 && issued.incrementAndGet() > maxRpcs) break;
          long s = System.nanoTime();
          try {
            if (bidi) {
              bs.onNext(req);
              Object o = col.take(Math.max(1, (end - s) / 1000000 + 10000));
              if (!(o instanceof EchoReply)) throw o instanceof Throwable ? (Throwable) o : new AssertionError("stream ended");
            } else {
              long left = end == Long.MAX_VALUE ? 60000 : Math.max(1, (end - s) / 1000000);
              stub.withDeadlineAfter(left, TimeUnit.MILLISECONDS).unary(req);
            }
          } catch (Throwable t) {
            if (System.nanoTime() >= end) break; // cut off by the end of the run
            if (errors.incrementAndGet() == 1) firstErr.set(oneLine(t));
            if (bidi) break;
            continue;
          }
          if (k == lat.length) lat = Arrays.copyOf(lat, k * 2);
          lat[k++] = System.nanoTime() - s;
        }
        if (bs != null) try { bs.onCompleted(); } catch (Throwable ignored) { }
        lats[wi] = lat;
        counts[wi] = k;
      });
      ts[w].start();
    }
    for (Thread t : ts) t.join();
    ph.lats = lats;
    ph.counts = counts;
    ph.elapsed = (System.nanoTime() - t0) / 1e9;
    return ph;
  }

  int load() throws Exception {
    int conc = intOpt("concurrency"), nconns = intOpt("conns"), size = intOpt("payload-size");
    long durMs = millis(opt.get("duration")), maxRpcs = Long.parseLong(opt.get("rpcs"));
    boolean bidi = opt.get("rpc").equals("bidi");
    if (conc < 1 || nconns < 1 || (durMs <= 0 && maxRpcs <= 0)) {
      System.err.println("java-client: load needs -concurrency >= 1, -conns >= 1 and -duration or -rpcs");
      return 2;
    }
    List<ManagedChannel> chs = new ArrayList<>();
    for (int i = 0; i < nconns; i++) {
      ManagedChannel ch = channel();
      // Connect (and warm up the JIT a little) before the clock starts.
      EchoGrpc.newBlockingStub(ch).withDeadlineAfter(millis(opt.get("timeout")), TimeUnit.MILLISECONDS)
          .withWaitForReady().unary(EchoRequest.newBuilder().setMessage("warmup").build());
      chs.add(ch);
    }
    char[] m = new char[size];
    Arrays.fill(m, 'x');
    EchoRequest req = EchoRequest.newBuilder().setMessage(new String(m)).setPayloadSize(size).build();
    long warmMs = millis(opt.get("warmup"));
    if (warmMs > 0) phase(chs, req, conc, bidi, warmMs, 0);
    Phase ph = phase(chs, req, conc, bidi, durMs, maxRpcs);
    double elapsed = ph.elapsed;
    long[][] lats = ph.lats;
    int[] counts = ph.counts;
    AtomicLong errors = ph.errors;
    AtomicReference<String> firstErr = ph.firstErr;
    int total = 0;
    for (int c : counts) total += c;
    long[] all = new long[total];
    int off = 0;
    for (int w = 0; w < conc; w++) { System.arraycopy(lats[w], 0, all, off, counts[w]); off += counts[w]; }
    Arrays.sort(all);
    StringBuilder sb = new StringBuilder("{");
    sb.append("\"client\":\"java\",\"target\":").append(jsonStr(opt.get("addr")))
        .append(",\"tls\":").append(flag("tls"))
        .append(",\"rpc\":").append(jsonStr(opt.get("rpc")))
        .append(",\"concurrency\":").append(conc).append(",\"conns\":").append(nconns)
        .append(",\"payload_size\":").append(size)
        .append(",\"duration_s\":").append(String.format("%.3f", elapsed))
        .append(",\"rpcs\":").append(total).append(",\"errors\":").append(errors.get())
        .append(",\"rps\":").append(String.format("%.1f", total / elapsed))
        .append(",\"p50_ms\":").append(pct(all, 0.50)).append(",\"p90_ms\":").append(pct(all, 0.90))
        .append(",\"p99_ms\":").append(pct(all, 0.99)).append(",\"max_ms\":").append(pct(all, 1.0));
    if (firstErr.get() != null) sb.append(",\"first_error\":").append(jsonStr(firstErr.get()));
    System.out.println(sb.append("}"));
    return errors.get() > 0 || total == 0 ? 1 : 0;
  }

  public static void main(String[] args) throws Exception {
    EchoClient c = new EchoClient(args);
    int rc;
    try {
      rc = c.flag("load") ? c.load() : c.scenarios();
    } catch (Throwable t) {
      System.out.println("RESULT setup FAIL " + oneLine(t));
      rc = 1;
    }
    for (ManagedChannel ch : c.channels) ch.shutdownNow();
    System.out.flush();
    System.exit(rc);
  }
}
