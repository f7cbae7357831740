import { toJson } from "@bufbuild/protobuf";
import { type SyncListResponse, SyncListResponseSchema } from "../../gen/vaultplus/v1/lists_pb";

/** A SyncListResponse as the REST gateway writes it: all eight fields, zeros included. */
export function responseJson(res: SyncListResponse): Record<string, unknown> {
  return toJson(SyncListResponseSchema, res, { alwaysEmitImplicit: true }) as Record<string, unknown>;
}
