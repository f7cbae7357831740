import { dirname, join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { expect } from "chai";
import { service as healthService } from "grpc-health-check";
import {
  SyncListRequestSchema,
  type SyncListResponse,
  SyncListResponseSchema,
  VaultPlusLists,
} from "../../gen/vaultplus/v1/lists_pb";
import { INTERNAL_MESSAGE } from "../../src/domain/errors";
import { type RunningGrpcServer, startGrpcServer } from "../../src/transport/grpc/server";
import { grpcServiceDefinition } from "../../src/transport/grpc/service-definition";
import { responseJson } from "../support/responses";
import { API_KEY, CONNECTION_ID, COUNTERS, ERROR_CASES, FakeSyncHandler, LEAKY_ERROR, ZERO_COUNTERS } from "./helpers";

const SYNC_PATH = "/vaultplus.v1.VaultPlusLists/SyncList";

/** A client that knows nothing of the server's code: it only speaks the wire path and the proto. */
function syncList(
  client: grpc.Client,
  listId: string,
  metadata: grpc.Metadata = credentials(),
): Promise<SyncListResponse> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      SYNC_PATH,
      (req: { listId: string }) => Buffer.from(toBinary(SyncListRequestSchema, create(SyncListRequestSchema, req))),
      (bytes: Buffer) => fromBinary(SyncListResponseSchema, bytes),
      { listId },
      metadata,
      (err, res) => (err ? reject(err) : resolve(res as SyncListResponse)),
    );
  });
}

function credentials(apiKey = API_KEY, connectionId = CONNECTION_ID): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("apikey", apiKey);
  metadata.set("x-connection-id", connectionId);
  return metadata;
}

async function expectStatus(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

describe("gRPC service definition from the descriptor", () => {
  it("has one entry per method, on the wire path, unary", () => {
    const definition = grpcServiceDefinition(VaultPlusLists);
    expect(Object.keys(definition)).to.deep.equal(["SyncList"]);
    expect(definition.SyncList).to.deep.include({
      path: "/vaultplus.v1.VaultPlusLists/SyncList",
      requestStream: false,
      responseStream: false,
      originalName: "syncList",
    });
    const bytes = definition.SyncList?.requestSerialize(create(SyncListRequestSchema, { listId: "42" }));
    expect(definition.SyncList?.requestDeserialize(bytes as Buffer)).to.deep.include({ listId: "42" });
  });
});

describe("gRPC transport", () => {
  let handler: FakeSyncHandler;
  let running: RunningGrpcServer;
  let client: grpc.Client;
  let target: string;

  beforeEach(async () => {
    handler = new FakeSyncHandler();
    running = await startGrpcServer({ handler }, { host: "127.0.0.1", port: 0 });
    target = `127.0.0.1:${running.port}`;
    client = new grpc.Client(target, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    await running.close(1000);
  });

  describe("SyncList", () => {
    it("returns every field and counter of the sync", async () => {
      const res = await syncList(client, "28489180");
      expect(responseJson(res)).to.deep.equal({ synced: true, listId: "28489180", ...COUNTERS });
    });

    it("returns zero counters as zeros", async () => {
      handler.succeedWith(ZERO_COUNTERS);
      const res = await syncList(client, "7");
      expect([res.synced, res.listId, res.seen, res.addedItems, res.removedItems, res.adoptedItems]).to.deep.equal([
        true,
        "7",
        0,
        0,
        0,
        0,
      ]);
    });

    it("passes the list id and the apikey / x-connection-id metadata to the service", async () => {
      await syncList(client, "123", credentials(API_KEY, "conn-from-metadata"));
      expect(handler.calls).to.have.length(1);
      expect(handler.calls[0]?.listId).to.equal("123");
      expect(handler.calls[0]?.credentials).to.deep.equal({
        apiKey: API_KEY,
        connectionId: "conn-from-metadata",
      });
      expect(handler.calls[0]?.options.signal).to.be.instanceOf(AbortSignal);
    });

    it("answers a call with no metadata at all UNAUTHENTICATED", async () => {
      const err = await expectStatus(syncList(client, "123", new grpc.Metadata()));
      expect(err.code).to.equal(grpc.status.UNAUTHENTICATED);
      expect(err.details).to.equal("Unauthorized");
      expect(handler.calls[0]?.credentials).to.deep.equal({ apiKey: undefined, connectionId: undefined });
    });

    for (const c of ERROR_CASES) {
      it(`maps ${c.kind} to ${grpc.status[c.grpc]} with the service's message`, async () => {
        handler.failWith(c.error);
        const err = await expectStatus(syncList(client, "123"));
        expect(err.code).to.equal(c.grpc);
        expect(err.details).to.equal(c.message);
      });
    }

    it("answers a non-SyncError INTERNAL without leaking it", async () => {
      handler.failWith(LEAKY_ERROR);
      const err = await expectStatus(syncList(client, "123"));
      expect(err.code).to.equal(grpc.status.INTERNAL);
      expect(err.details).to.equal(INTERNAL_MESSAGE);
      expect(err.message).not.to.include("hunter2");
    });
  });

  describe("grpc.health.v1.Health", () => {
    type HealthClient = grpc.Client & {
      check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
    };
    const Health = grpc.makeGenericClientConstructor(
      healthService as unknown as grpc.ServiceDefinition,
      "Health",
    ) as unknown as new (
      target: string,
      creds: grpc.ChannelCredentials,
    ) => HealthClient;

    const check = (health: HealthClient, service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        health.check({ service }, (err, res) => (err ? reject(err) : resolve(res as { status: string }))),
      );

    it("reports the server and the service SERVING, and NOT_SERVING once flipped", async () => {
      const health = new Health(target, grpc.credentials.createInsecure());
      try {
        expect(await check(health, "")).to.deep.equal({ status: "SERVING" });
        expect(await check(health, "vaultplus.v1.VaultPlusLists")).to.deep.equal({ status: "SERVING" });
        running.health.setServing(false);
        expect(await check(health, "")).to.deep.equal({ status: "NOT_SERVING" });
        expect(await check(health, "vaultplus.v1.VaultPlusLists")).to.deep.equal({ status: "NOT_SERVING" });
        const err = await expectStatus(check(health, "no.such.Service"));
        expect(err.code).to.equal(grpc.status.NOT_FOUND);
      } finally {
        health.close();
      }
    });
  });

  for (const version of ["v1", "v1alpha"] as const) {
    describe(`server reflection ${version}`, () => {
      type ReflectionResponse = {
        listServicesResponse?: { service: Array<{ name: string }> };
        fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
        errorResponse?: { errorCode: number; errorMessage: string };
      };

      function reflect(request: Record<string, unknown>): Promise<ReflectionResponse> {
        const protoPath = join(
          dirname(require.resolve("@grpc/reflection")),
          `../proto/grpc/reflection/${version}/reflection.proto`,
        );
        const definition = protoLoader.loadSync(protoPath, {
          longs: String,
          enums: String,
          defaults: true,
          oneofs: true,
        });
        const ServerReflection = grpc.loadPackageDefinition(definition).grpc as unknown as Record<
          string,
          Record<string, Record<string, new (target: string, creds: grpc.ChannelCredentials) => grpc.Client>>
        >;
        const Ctor = ServerReflection.reflection?.[version]?.ServerReflection as new (
          target: string,
          creds: grpc.ChannelCredentials,
        ) => grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse> };
        const reflectionClient = new Ctor(target, grpc.credentials.createInsecure());
        return new Promise((resolve, reject) => {
          const call = reflectionClient.ServerReflectionInfo();
          call.on("data", (res: ReflectionResponse) => {
            resolve(res);
            call.end();
            reflectionClient.close();
          });
          call.on("error", reject);
          call.write(request);
        });
      }

      it("lists VaultPlusLists", async () => {
        const res = await reflect({ listServices: "*" });
        expect(res.listServicesResponse?.service.map((s) => s.name)).to.include("vaultplus.v1.VaultPlusLists");
      });

      it("returns the file descriptor declaring SyncList", async () => {
        const res = await reflect({ fileContainingSymbol: "vaultplus.v1.VaultPlusLists" });
        const files = (res.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bytes) =>
          fromBinary(FileDescriptorProtoSchema, bytes),
        );
        const lists = files.find((f) => f.name === "vaultplus/v1/lists.proto");
        expect(lists, "vaultplus/v1/lists.proto in the response").to.not.equal(undefined);
        expect(lists?.package).to.equal("vaultplus.v1");
        expect(lists?.dependency).to.deep.equal(["google/api/annotations.proto"]);
        const service = lists?.service.find((s) => s.name === "VaultPlusLists");
        expect(service?.method.map((m) => [m.name, m.inputType, m.outputType])).to.deep.equal([
          ["SyncList", ".vaultplus.v1.SyncListRequest", ".vaultplus.v1.SyncListResponse"],
        ]);
      });

      it("serves the imported files by name, so clients can resolve the imports", async () => {
        for (const name of [
          "google/api/annotations.proto",
          "google/api/http.proto",
          "google/protobuf/descriptor.proto",
        ]) {
          const res = await reflect({ fileByFilename: name });
          const first = res.fileDescriptorResponse?.fileDescriptorProto[0];
          expect(first, name).to.not.equal(undefined);
          expect(fromBinary(FileDescriptorProtoSchema, first as Buffer).name).to.equal(name);
        }
      });
    });
  }

  describe("close()", () => {
    it("cuts calls still running after the grace period", async () => {
      handler.behaviour = () => new Promise(() => {});
      const pending = expectStatus(syncList(client, "1"));
      await new Promise((r) => setTimeout(r, 50));
      const started = Date.now();
      await running.close(200);
      expect(Date.now() - started).to.be.below(2000);
      const err = await pending;
      expect([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.INTERNAL]).to.include(err.code);
    });

    it("lets a call in flight finish", async () => {
      let release: () => void = () => {};
      handler.behaviour = (listId) =>
        new Promise((resolve) => {
          release = () => resolve({ listId, counters: { ...ZERO_COUNTERS } });
        });
      const pending = syncList(client, "5");
      await new Promise((r) => setTimeout(r, 50));
      const closed = running.close(5000);
      setTimeout(() => release(), 50);
      expect((await pending).listId).to.equal("5");
      await closed;
    });
  });
});
