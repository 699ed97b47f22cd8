import * as grpc from "@grpc/grpc-js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./server";
import { clientTokenFromEnv, withToken, type TokenSource } from "./auth";
import { clientCredentials, clientTlsFromEnv } from "./tls";

/** Status codes worth retrying, and only for idempotent calls. */
export const RETRYABLE_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
]);

/** What a thread that traces its own outgoing calls adds to one of them, and hears of its end. */
export interface OutgoingCall {
  /** Headers the call carries (unless the call sets them itself), e.g. `traceparent`, `baggage`. */
  headers: Record<string, string>;
  /** The call's final status (once: OK, an error, CANCELLED or DEADLINE_EXCEEDED). */
  ended(status: { code: number; details: string }): void;
}

let outgoingCalls: ((path: string, address: string) => OutgoingCall | undefined) | undefined;

/**
 * A hook every KitClient of this thread calls as each call (each attempt of a retried one) starts,
 * with the method's path (`/rlhf.policy.v1.PolicyService/StreamWeights`) and the client's address.
 * A model service's compute worker, which has no OpenTelemetry of its own, uses it to pass on the
 * trace context of the call it is serving with a client span id of its own, and to time the call,
 * so that the main thread records the client span (`@rlhf/model-service`'s worker).
 */
export function setOutgoingCalls(fn: ((path: string, address: string) => OutgoingCall | undefined) | undefined): void {
  outgoingCalls = fn;
}

/** Options of {@link createClient}. */
export interface ClientOptions<M extends string = string> {
  /** Deadline of every call unless the call sets its own. Default 30 s. */
  deadlineMs?: number;
  /** Methods that are safe to repeat; only these are retried. Default none. */
  idempotent?: readonly M[];
  /** Most attempts of an idempotent call (first try included). Default 4. */
  maxAttempts?: number;
  /** First retry delay; doubles each time, with jitter, up to `maxBackoffMs`. Default 100 ms. */
  initialBackoffMs?: number;
  /** Default 2 s. */
  maxBackoffMs?: number;
  /** Largest message accepted from the server. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Largest message sent. Default 4 MiB. */
  maxSendMessageBytes?: number;
  /**
   * "round_robin" spreads calls over every address a `dns:///host:port` name resolves to (a
   * headless Kubernetes Service); "pick_first" uses one. Default "round_robin".
   */
  loadBalancing?: "round_robin" | "pick_first";
  /**
   * Channel credentials. Default: TLS from the environment (GRPC_TLS_CA_FILE, the client's
   * certificate, GRPC_TLS_SERVER_NAME; see tls.ts), plaintext when unset.
   */
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options that go with `credentials` (e.g. `grpc.ssl_target_name_override`). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * The bearer token sent with every call (read on every call: a token file may change).
   * Default: from the environment (RLHF_TOKEN, RLHF_CLIENT_TOKEN_FILE, RLHF_AUTH_TOKEN_FILE);
   * none when unset. `null`: none.
   */
  token?: TokenSource | null;
  /**
   * The service's name (e.g. "policy"). When set, a failed call's `message` starts with
   * `<name>.<method>: `, so an error reported far away says which call failed; its code and
   * details stay as the server sent them.
   */
  name?: string;
}

/** Per-call options. */
export interface CallOpts {
  /** Overrides the client's default deadline. */
  deadlineMs?: number;
  metadata?: grpc.Metadata;
  /** Cancels the call (and any retry) when aborted. */
  signal?: AbortSignal;
}

type UnaryCb<R> = (err: grpc.ServiceError | null, res: R) => void;

/** Names of the unary methods of a generated client, with their request/response types. */
export type UnaryMethod<C> = {
  [K in keyof C]: C[K] extends (req: infer _Q, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: UnaryCb<infer _R>) => grpc.ClientUnaryCall
    ? K
    : never;
}[keyof C] &
  string;
export type UnaryReq<C, K extends keyof C> = C[K] extends (req: infer Q, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: UnaryCb<infer _R>) => grpc.ClientUnaryCall ? Q : never;
export type UnaryRes<C, K extends keyof C> = C[K] extends (req: infer _Q, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: UnaryCb<infer R>) => grpc.ClientUnaryCall ? R : never;

export type ServerStreamMethod<C> = {
  [K in keyof C]: C[K] extends (req: infer _Q, md?: grpc.Metadata, o?: Partial<grpc.CallOptions>) => grpc.ClientReadableStream<infer _R> ? K : never;
}[keyof C] &
  string;
export type ServerStreamReq<C, K extends keyof C> = C[K] extends (req: infer Q, md?: grpc.Metadata, o?: Partial<grpc.CallOptions>) => grpc.ClientReadableStream<infer _R> ? Q : never;
export type ServerStreamRes<C, K extends keyof C> = C[K] extends (req: infer _Q, md?: grpc.Metadata, o?: Partial<grpc.CallOptions>) => grpc.ClientReadableStream<infer R> ? R : never;

export type ClientStreamMethod<C> = {
  [K in keyof C]: C[K] extends (md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: UnaryCb<infer _R>) => grpc.ClientWritableStream<infer _Q> ? K : never;
}[keyof C] &
  string;
export type ClientStreamReq<C, K extends keyof C> = C[K] extends (md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: UnaryCb<infer _R>) => grpc.ClientWritableStream<infer Q> ? Q : never;
export type ClientStreamRes<C, K extends keyof C> = C[K] extends (md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: UnaryCb<infer R>) => grpc.ClientWritableStream<infer _Q> ? R : never;

export type BidiMethod<C> = {
  [K in keyof C]: C[K] extends (md: grpc.Metadata, o?: Partial<grpc.CallOptions>) => grpc.ClientDuplexStream<infer _Q, infer _R> ? K : never;
}[keyof C] &
  string;
export type BidiReq<C, K extends keyof C> = C[K] extends (md: grpc.Metadata, o?: Partial<grpc.CallOptions>) => grpc.ClientDuplexStream<infer Q, infer _R> ? Q : never;
export type BidiRes<C, K extends keyof C> = C[K] extends (md: grpc.Metadata, o?: Partial<grpc.CallOptions>) => grpc.ClientDuplexStream<infer _Q, infer R> ? R : never;

/** A client-streaming call in progress. */
export interface ClientStreamCall<Req, Res> {
  /** Writes one message; resolves when the stream can take more (back-pressure). */
  write(msg: Req): Promise<void>;
  /** Half-closes and waits for the response. */
  end(): Promise<Res>;
  /** Cancels the call. */
  cancel(): void;
}

/**
 * Cancels `call` when `signal` aborts, and forgets the listener once the call has ended: a
 * long-lived signal (a whole training run's) must not collect one listener per call.
 */
function cancelOnAbort(signal: AbortSignal | undefined, call: { cancel(): void; once(event: "status", l: () => void): unknown }): void {
  if (!signal) return;
  const onAbort = () => call.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  call.once("status", () => signal.removeEventListener("abort", onAbort));
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * A generated grpc-js client wrapped so that every call has a deadline, unary idempotent calls
 * are retried on UNAVAILABLE / RESOURCE_EXHAUSTED / ABORTED with exponential backoff (within the
 * same overall deadline), and non-idempotent calls are never retried.
 */
export class KitClient<C extends grpc.Client> {
  readonly raw: C;
  private readonly idempotent: ReadonlySet<string>;
  private readonly deadlineMs: number;
  private readonly token: TokenSource | undefined;

  constructor(
    Ctor: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C,
    readonly address: string,
    private readonly opts: ClientOptions = {},
  ) {
    const lb = opts.loadBalancing ?? "round_robin";
    const fromEnv = opts.credentials ? undefined : clientCredentials(clientTlsFromEnv(process.env));
    this.raw = new Ctor(address, opts.credentials ?? (fromEnv as { credentials: grpc.ChannelCredentials }).credentials, {
      ...(fromEnv ? fromEnv.options : opts.channelOptions),
      "grpc.max_receive_message_length": opts.maxReceiveMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": opts.maxSendMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ [lb]: {} }] }),
      "grpc.enable_retries": 0, // retries are ours, and only for idempotent calls
    });
    this.idempotent = new Set(opts.idempotent ?? []);
    this.deadlineMs = opts.deadlineMs ?? 30_000;
    this.token = opts.token === undefined ? clientTokenFromEnv(process.env) : (opts.token ?? undefined);
  }

  /**
   * The call's metadata with the bearer token and, where this thread traces its outgoing calls
   * (setOutgoingCalls), that call's headers; `watch` then tells the hook how the call ended.
   */
  private md(method: string, call: CallOpts): { md: grpc.Metadata; watch: (c: { once(event: "status", l: (s: grpc.StatusObject) => void): unknown }) => void } {
    const md = withToken(call.metadata, this.token);
    const out = outgoingCalls?.(this.path(method), this.address);
    for (const [k, v] of Object.entries(out?.headers ?? {})) if (md.get(k).length === 0) md.set(k, v);
    const watch = (c: { once(event: "status", l: (s: grpc.StatusObject) => void): unknown }) => {
      if (out) c.once("status", (st) => out.ended({ code: st.code, details: st.details }));
    };
    return { md, watch };
  }

  /** A method's full path, as the server sees it (`/package.Service/Method`). */
  private path(method: string): string {
    const service = (this.raw.constructor as { service?: Record<string, { path?: string } | undefined> }).service;
    return service?.[method]?.path ?? method;
  }

  /** Prefixes a failed call's message with `<name>.<method>` (see ClientOptions.name). */
  private label(err: unknown, method: string): unknown {
    const e = err as { message?: unknown };
    const prefix = this.opts.name ? `${this.opts.name}.${method}: ` : "";
    if (prefix && e && typeof e.message === "string" && !e.message.startsWith(prefix)) e.message = prefix + e.message;
    return err;
  }

  private fn(method: string): (...args: unknown[]) => unknown {
    const f = Reflect.get(this.raw, method) as unknown;
    if (typeof f !== "function") throw new Error(`no method ${method} on client`);
    return (f as (...args: unknown[]) => unknown).bind(this.raw);
  }

  /** A unary call with a deadline; retried only if `method` is idempotent. */
  async unary<K extends UnaryMethod<C>>(method: K, req: UnaryReq<C, K>, call: CallOpts = {}): Promise<UnaryRes<C, K>> {
    const deadline = Date.now() + (call.deadlineMs ?? this.deadlineMs);
    const maxAttempts = this.idempotent.has(method) ? (this.opts.maxAttempts ?? 4) : 1;
    let backoff = this.opts.initialBackoffMs ?? 100;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once<UnaryRes<C, K>>(method, req, deadline, call);
      } catch (err) {
        const code = (err as Partial<grpc.ServiceError>).code;
        const left = deadline - Date.now();
        if (attempt >= maxAttempts || code === undefined || !RETRYABLE_CODES.has(code) || call.signal?.aborted) throw err;
        const wait = Math.min(backoff * (0.5 + Math.random() / 2), this.opts.maxBackoffMs ?? 2000);
        if (wait >= left) throw err;
        await sleep(wait, call.signal);
        backoff *= 2;
      }
    }
  }

  private once<R>(method: string, req: unknown, deadline: number, call: CallOpts): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const { md, watch } = this.md(method, call);
      const c = this.fn(method)(req, md, { deadline }, (err: grpc.ServiceError | null, res: R) =>
        err ? reject(this.label(err, method)) : resolve(res),
      ) as grpc.ClientUnaryCall;
      watch(c);
      cancelOnAbort(call.signal, c);
    });
  }

  /** A server-streaming call with a deadline over the whole stream; iterate it with `for await`. */
  serverStream<K extends ServerStreamMethod<C>>(
    method: K,
    req: ServerStreamReq<C, K>,
    call: CallOpts = {},
  ): grpc.ClientReadableStream<ServerStreamRes<C, K>> {
    const deadline = Date.now() + (call.deadlineMs ?? this.deadlineMs);
    const { md, watch } = this.md(method, call);
    const s = this.fn(method)(req, md, { deadline }) as grpc.ClientReadableStream<ServerStreamRes<C, K>>;
    watch(s);
    cancelOnAbort(call.signal, s);
    if (this.opts.name) s.on("error", (e) => this.label(e, method));
    return s;
  }

  /** A client-streaming call with a deadline; `write` honours back-pressure. */
  clientStream<K extends ClientStreamMethod<C>>(method: K, call: CallOpts = {}): ClientStreamCall<ClientStreamReq<C, K>, ClientStreamRes<C, K>> {
    const deadline = Date.now() + (call.deadlineMs ?? this.deadlineMs);
    let settle!: { resolve: (r: ClientStreamRes<C, K>) => void; reject: (e: unknown) => void };
    const response = new Promise<ClientStreamRes<C, K>>((resolve, reject) => (settle = { resolve, reject }));
    response.catch(() => undefined); // observed through end()
    let failed: unknown;
    const { md, watch } = this.md(method, call);
    const s = this.fn(method)(md, { deadline }, (err: grpc.ServiceError | null, res: ClientStreamRes<C, K>) => {
      if (err) {
        failed = this.label(err, method);
        settle.reject(err);
      } else settle.resolve(res);
    }) as grpc.ClientWritableStream<ClientStreamReq<C, K>>;
    watch(s);
    cancelOnAbort(call.signal, s);
    return {
      write: (msg) =>
        new Promise<void>((resolve, reject) => {
          if (failed) return reject(failed);
          if (s.write(msg)) return resolve();
          const onDrain = () => resolve();
          s.once("drain", onDrain);
          // If the server answers (with an error) before draining, stop waiting.
          response.then(
            () => resolve(),
            (e: unknown) => {
              s.removeListener("drain", onDrain);
              reject(e);
            },
          );
        }),
      end: () => {
        s.end();
        return response;
      },
      cancel: () => s.cancel(),
    };
  }

  /** A bidirectional call with a deadline. */
  bidi<K extends BidiMethod<C>>(method: K, call: CallOpts = {}): grpc.ClientDuplexStream<BidiReq<C, K>, BidiRes<C, K>> {
    const deadline = Date.now() + (call.deadlineMs ?? this.deadlineMs);
    const { md, watch } = this.md(method, call);
    const s = this.fn(method)(md, { deadline }) as grpc.ClientDuplexStream<BidiReq<C, K>, BidiRes<C, K>>;
    watch(s);
    cancelOnAbort(call.signal, s);
    if (this.opts.name) s.on("error", (e) => this.label(e, method));
    return s;
  }

  /** Resolves once the channel is connected, or rejects after `timeoutMs`. */
  waitForReady(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.raw.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.raw.close();
  }
}

/** Shorthand for `new KitClient(Ctor, address, opts)`. */
export function createClient<C extends grpc.Client>(
  Ctor: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C,
  address: string,
  opts: ClientOptions<UnaryMethod<C>> = {},
): KitClient<C> {
  return new KitClient(Ctor, address, opts);
}
