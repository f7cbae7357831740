import { expect } from "chai";
import { parseApiKey, secretMatches } from "../../src/service/api-keys";
import { forEachDatabase } from "../support/databases";
import { rejection } from "../support/expect";

describe("admin store and credential lookups", () => {
  forEachDatabase((db) => {
    it("creates an API key stored only as a hash, creating the account", async () => {
      const key = await db.admin.createApiKey("acct-1", ["ACCESS", "ACCOUNT", "ACCOUNT"]);
      expect(key.accountId).to.equal("acct-1");
      expect(key.scopes).to.deep.equal(["ACCOUNT", "ACCESS"]);
      const parsed = parseApiKey(key.token);
      expect(parsed?.id).to.equal(key.id);

      const record = await db.store.findApiKey(key.id);
      expect(record).to.deep.include({
        id: key.id,
        accountId: "acct-1",
        scopes: ["ACCOUNT", "ACCESS"],
        revoked: false,
      });
      expect(secretMatches(parsed?.secret ?? "", record?.secretHash ?? "")).to.equal(true);
      const row = await db.knex("api_keys").where({ id: key.id }).first();
      expect(JSON.stringify(row)).not.to.contain(parsed?.secret ?? "?");
      expect(await db.knex("accounts").where({ id: "acct-1" }).select("id")).to.deep.equal([{ id: "acct-1" }]);
    });

    it("adds keys and connections to an existing account", async () => {
      const second = await db.admin.createApiKey("acct-1", ["ACCOUNT"]);
      const conn = await db.admin.createConnection("acct-1", "conn-a");
      expect(conn).to.deep.equal({ id: "conn-a", accountId: "acct-1" });
      expect((await db.store.findApiKey(second.id))?.scopes).to.deep.equal(["ACCOUNT"]);
      expect(await db.store.findConnection("conn-a")).to.deep.equal({
        id: "conn-a",
        accountId: "acct-1",
        active: true,
      });
      expect(await db.knex("accounts").count({ n: "*" })).to.deep.equal([{ n: 1 }]);
    });

    it("returns null for unknown keys and connections", async () => {
      expect(await db.store.findApiKey("0123456789abcdef")).to.equal(null);
      expect(await db.store.findConnection("nope")).to.equal(null);
      expect(await db.store.findConnection("CONN-A")).to.equal(null);
    });

    it("refuses unknown scopes, no scope and bad account ids, saying what to do", async () => {
      const unknown = await rejection(db.admin.createApiKey("acct-1", ["ACCOUNT", "ADMIN"]));
      expect(unknown.kind).to.equal("invalid_argument");
      expect(unknown.message).to.equal("unknown scope ADMIN: the known scopes are ACCOUNT, ACCESS");
      expect((await rejection(db.admin.createApiKey("acct-1", []))).message).to.match(/at least one scope/);
      const badAccount = await rejection(db.admin.createApiKey("bad account", ["ACCOUNT"]));
      expect(badAccount.kind).to.equal("invalid_argument");
      expect(badAccount.message).to.match(/account id must be 1-64 characters/);
      expect((await rejection(db.admin.createConnection("", "c"))).kind).to.equal("invalid_argument");
      expect(await db.knex("accounts").whereNot({ id: "acct-1" }).select("id")).to.deep.equal([]);
    });

    it("revokes a key, idempotently; unknown ids give false", async () => {
      const key = await db.admin.createApiKey("acct-2", ["ACCOUNT"]);
      expect(await db.admin.revokeApiKey(key.id)).to.equal(true);
      const first = await db.knex("api_keys").where({ id: key.id }).first("revoked_at");
      expect((await db.store.findApiKey(key.id))?.revoked).to.equal(true);
      expect(await db.admin.revokeApiKey(key.id)).to.equal(true);
      expect(await db.knex("api_keys").where({ id: key.id }).first("revoked_at")).to.deep.equal(first);
      expect(await db.admin.revokeApiKey("ffffffffffffffff")).to.equal(false);
    });

    it("generates connection ids, refuses duplicates and malformed ids", async () => {
      const conn = await db.admin.createConnection("acct-3");
      expect(conn.id).to.match(/^conn_[a-z0-9]{24}$/);
      expect(conn.accountId).to.equal("acct-3");
      const dup = await rejection(db.admin.createConnection("acct-3", conn.id));
      expect(dup.kind).to.equal("invalid_argument");
      expect(dup.message).to.equal(
        `connection ${conn.id} already exists: choose another id, or omit it to generate one`,
      );
      expect((await rejection(db.admin.createConnection("acct-3", "has space"))).message).to.match(
        /connection id must be/,
      );
      expect((await rejection(db.admin.createConnection("acct-3", "x".repeat(65)))).kind).to.equal("invalid_argument");
      // Ids are case-sensitive: a different case is a different connection.
      const upper = conn.id.toUpperCase();
      expect(await db.admin.createConnection("acct-3", upper)).to.deep.equal({ id: upper, accountId: "acct-3" });
    });

    it("disables a connection; unknown ids give false", async () => {
      await db.admin.createConnection("acct-4", "conn-d");
      expect(await db.admin.disableConnection("conn-d")).to.equal(true);
      expect(await db.store.findConnection("conn-d")).to.deep.equal({
        id: "conn-d",
        accountId: "acct-4",
        active: false,
      });
      expect(await db.admin.disableConnection("conn-d")).to.equal(true);
      expect(await db.admin.disableConnection("conn-missing")).to.equal(false);
    });
  });
});
