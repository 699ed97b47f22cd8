import { join, dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { clientCredentials, clientTlsFromEnv } from "./tls";

/** Plaintext, or TLS when GRPC_TLS_CA_FILE is set (as KitClient). */
function probeChannel(): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  return clientCredentials(clientTlsFromEnv(process.env));
}

const HealthClient = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");

/** grpc.health.v1 Check of `service` ("" = the whole server): "SERVING", "NOT_SERVING", ... */
export function checkHealth(address: string, service = "", deadlineMs = 2000): Promise<string> {
  const ch = probeChannel();
  const client = new HealthClient(address, ch.credentials, ch.options);
  return new Promise<string>((resolve, reject) => {
    client.check({ service }, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res.status);
    });
  });
}

/** Polls health until SERVING or `timeoutMs` passes (then rejects naming the last answer). */
export async function waitForServing(address: string, timeoutMs = 30_000, service = ""): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < end) {
    try {
      last = await checkHealth(address, service, 1000);
      if (last === "SERVING") return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${address} not SERVING after ${timeoutMs} ms (last: ${last})`);
}

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** Service names a server lists through grpc.reflection.v1 (reflection needs a token where the server checks them). */
export function listServicesByReflection(address: string, deadlineMs = 5000, token?: string): Promise<string[]> {
  const protoFile = join(dirname(require.resolve("@grpc/reflection/package.json")), "build/proto/grpc/reflection/v1/reflection.proto");
  const def = loadSync(protoFile, { keepCase: false });
  const Ctor = grpc.makeClientConstructor(def["grpc.reflection.v1.ServerReflection"] as grpc.ServiceDefinition, "ServerReflection");
  const ch = probeChannel();
  const client = new Ctor(address, ch.credentials, ch.options);
  return new Promise<string[]>((resolve, reject) => {
    const md = new grpc.Metadata();
    if (token) md.set("authorization", `Bearer ${token}`);
    const call = (client as unknown as { serverReflectionInfo(md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientDuplexStream<object, ReflectionResponse> }).serverReflectionInfo(md, {
      deadline: Date.now() + deadlineMs,
    });
    call.on("data", (res: ReflectionResponse) => {
      client.close();
      call.end();
      if (res.errorResponse) reject(new Error(res.errorResponse.errorMessage));
      else resolve((res.listServicesResponse?.service ?? []).map((s) => s.name).sort());
    });
    call.on("error", (e) => {
      client.close();
      reject(e);
    });
    call.write({ listServices: "*" });
  });
}
