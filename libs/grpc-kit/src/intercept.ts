/** The shape of the kit's server interceptors: a check of each call's metadata before its handler. */
import * as grpc from "@grpc/grpc-js";

/** The status a refused call gets instead of reaching its handler. */
export interface Refusal {
  code: grpc.status;
  details: string;
}

/**
 * A grpc-js server interceptor that runs `check` on each call's metadata (with the method's path
 * and the call, for its peer): a refusal ends the call with that status before any request
 * message is read; otherwise the call goes on.
 */
export function metadataInterceptor(check: (path: string, md: grpc.Metadata, call: grpc.ServerInterceptingCallInterface) => Refusal | undefined): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMetadata((md, mdNext) => {
              const refusal = check(method.path, md, call);
              if (refusal) call.sendStatus(refusal);
              else mdNext(md);
            })
            .build(),
        );
      },
    });
}
