import { HealthImplementation } from "grpc-health-check";
import { VaultPlusLists } from "../../../gen/vaultplus/v1/lists_pb";

/** "" is the whole server; clients may also ask for the service by name. */
export const HEALTH_SERVICES = ["", VaultPlusLists.typeName] as const;

/** grpc.health.v1.Health for this server, flipped as a whole (readiness, shutdown). */
export class GrpcHealth {
  readonly implementation: HealthImplementation;

  constructor(serving = true) {
    this.implementation = new HealthImplementation();
    this.setServing(serving);
  }

  setServing(serving: boolean): void {
    for (const name of HEALTH_SERVICES) this.implementation.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
  }
}
