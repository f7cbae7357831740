import { type DescMethod, type DescService, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { malformedRequestMessage } from "../handler";

/** A grpc-js service definition for every method of a protobuf-es service descriptor. */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.name] = methodDefinition(service, method);
  }
  return definition;
}

function methodDefinition(service: DescService, method: DescMethod): MethodDefinition<Message, Message> {
  const { input, output, methodKind } = method;
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: methodKind === "client_streaming" || methodKind === "bidi_streaming",
    responseStream: methodKind === "server_streaming" || methodKind === "bidi_streaming",
    requestSerialize: (value: Message) => asBuffer(toBinary(input, value)),
    // grpc-js would answer a request that does not decode INTERNAL; it is the caller's bad input.
    requestDeserialize: (bytes: Buffer) => {
      try {
        return fromBinary(input, bytes);
      } catch {
        return new MalformedRequest(input.typeName) as unknown as Message;
      }
    },
    responseSerialize: (value: Message) => asBuffer(toBinary(output, value)),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    // grpc-js falls back to this key, so implementations can use protobuf-es' localName (syncList).
    originalName: method.localName,
  };
}

/** A view, not a copy. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Stands in for request bytes that are not a valid message; the server answers it INVALID_ARGUMENT. */
export class MalformedRequest {
  constructor(readonly typeName: string) {}

  get message(): string {
    return malformedRequestMessage(this.typeName);
  }
}
