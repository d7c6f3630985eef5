// A Spark RPC client built from Spark's own network classes (the pyspark jars on the class path), for the e2e tier:
//   java -cp '<pyspark>/jars/*' SparkRpcProbe.java HOST PORT [SECRET]
// SECRET: a file holding the job's secret bytes (as spark.authenticate.secret.file), or "literal:<text>"; none: no
// authentication. Sends one RPC whose body is not a Spark message and prints one line:
//   RPC_LAYER: <error>   the request reached Spark's RPC layer (it answered that it cannot read the message):
//                        nothing stood in the way (no authentication, or the handshake passed)
//   AUTH_REQUIRED: <why> the server demanded authentication first, or refused the handshake
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import org.apache.spark.network.TransportContext;
import org.apache.spark.network.client.TransportClient;
import org.apache.spark.network.client.TransportClientBootstrap;
import org.apache.spark.network.client.TransportClientFactory;
import org.apache.spark.network.crypto.AuthClientBootstrap;
import org.apache.spark.network.sasl.SecretKeyHolder;
import org.apache.spark.network.server.NoOpRpcHandler;
import org.apache.spark.network.util.MapConfigProvider;
import org.apache.spark.network.util.TransportConf;

public class SparkRpcProbe {
  public static void main(String[] args) throws Exception {
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    TransportConf conf = new TransportConf("rpc", MapConfigProvider.EMPTY);
    List<TransportClientBootstrap> bootstraps = new ArrayList<>();
    if (args.length > 2) {
      String secret = args[2].startsWith("literal:") ? args[2].substring(8)
          : Base64.getEncoder().encodeToString(Files.readAllBytes(Paths.get(args[2])));
      bootstraps.add(new AuthClientBootstrap(conf, "sparkSaslUser", new SecretKeyHolder() {
        public String getSaslUser(String appId) { return "sparkSaslUser"; }
        public String getSecretKey(String appId) { return secret; }
      }));
    }
    try (TransportContext context = new TransportContext(conf, new NoOpRpcHandler());
         TransportClientFactory factory = context.createClientFactory(bootstraps)) {
      System.out.println(probe(factory, host, port));
    }
  }

  static String probe(TransportClientFactory factory, String host, int port) {
    TransportClient client;
    try {
      client = factory.createClient(host, port);  // runs the authentication handshake, if any
    } catch (Exception e) {
      return "AUTH_REQUIRED: handshake refused: " + reason(e);
    }
    try {
      client.sendRpcSync(ByteBuffer.wrap("not a Spark message".getBytes()), 10000);
      return "RPC_LAYER: accepted";
    } catch (Exception e) {
      String why = reason(e);
      boolean auth = why.contains("SaslMessage") || why.contains("challenge") || why.contains("uthentica");
      return (auth ? "AUTH_REQUIRED: " : "RPC_LAYER: ") + why;
    }
  }

  static String reason(Throwable e) {
    StringBuilder out = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (out.length() > 0) out.append(" <- ");
      out.append(t.getClass().getSimpleName()).append(": ").append(String.valueOf(t.getMessage()).split("\n")[0]);
    }
    return out.toString();
  }
}
