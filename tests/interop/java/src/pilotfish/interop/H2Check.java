package pilotfish.interop;

import java.io.FileInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Arrays;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * java.net.http.HttpClient HTTP/2-over-TLS check against the echo server's HTTP handler
 * (server -http-addr), directly or through a proxy:
 *
 * <pre>  java-h2check -url https://localhost:10443/echo -ca ca.crt</pre>
 *
 * GET and POST; each must be answered over HTTP/2 with status 200 and the expected body.
 * (The JDK client negotiates h2 only through TLS ALPN; in cleartext it would try the
 * HTTP/1.1 Upgrade dance, never prior knowledge, so there is no h2c mode here.)
 * Prints "RESULT java_h2_get|java_h2_post PASS|FAIL detail"; exit 0/1.
 */
public final class H2Check {
  public static void main(String[] args) throws Exception {
    String url = "https://localhost:50062/echo", ca = null;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i].replaceFirst("^--?", "")) {
        case "url": url = args[i + 1]; break;
        case "ca": ca = args[i + 1]; break;
        default:
          System.err.println("usage: java-h2check -url https://host:port/path [-ca ca.crt]");
          System.exit(2);
      }
    }
    HttpClient.Builder b = HttpClient.newBuilder().version(HttpClient.Version.HTTP_2)
        .connectTimeout(Duration.ofSeconds(10));
    if (ca != null) {
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      try (InputStream in = new FileInputStream(ca)) {
        int n = 0;
        for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in))
          ks.setCertificateEntry("ca" + n++, c);
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(ks);
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(null, tmf.getTrustManagers(), null);
      b.sslContext(ctx);
    }
    HttpClient client = b.build();
    byte[] body = new byte[100000];
    for (int i = 0; i < body.length; i++) body[i] = (byte) ('a' + i % 26);
    int rc = 0;
    for (String method : new String[] {"GET", "POST"}) {
      String name = "java_h2_" + method.toLowerCase();
      try {
        HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10));
        rb = method.equals("GET") ? rb.GET() : rb.POST(HttpRequest.BodyPublishers.ofByteArray(body));
        HttpResponse<byte[]> r = client.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        if (r.version() != HttpClient.Version.HTTP_2) throw new AssertionError("protocol " + r.version() + ", want HTTP_2");
        if (r.statusCode() != 200) throw new AssertionError("status " + r.statusCode());
        if (method.equals("GET")) {
          if (!new String(r.body(), "UTF-8").startsWith("hello from pilotfish interop"))
            throw new AssertionError("body " + new String(r.body(), "UTF-8"));
        } else if (!Arrays.equals(r.body(), body)) {
          throw new AssertionError("echoed body: " + r.body().length + " bytes, want " + body.length + " identical");
        }
        System.out.println("RESULT " + name + " PASS");
      } catch (Throwable t) {
        System.out.println("RESULT " + name + " FAIL " + String.valueOf(t).replace('\n', ' '));
        rc = 1;
      }
    }
    System.exit(rc);
  }
}
