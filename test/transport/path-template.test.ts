import { expect } from "chai";
import { compilePathTemplate, PathDecodeError, PathTemplateError } from "../../src/transport/http/path-template";

describe("path templates", () => {
  const sync = compilePathTemplate("/v2/vault-plus/lists/{list_id}/sync");

  it("binds single-segment variables", () => {
    expect(sync.variables).to.deep.equal(["list_id"]);
    expect(sync.match("/v2/vault-plus/lists/28489180/sync")).to.deep.equal({ list_id: "28489180" });
    expect(compilePathTemplate("/a/{x=*}/b/{y}").match("/a/1/b/2")).to.deep.equal({ x: "1", y: "2" });
  });

  it("percent-decodes variable segments", () => {
    expect(sync.match("/v2/vault-plus/lists/%31%32/sync")).to.deep.equal({ list_id: "12" });
    expect(sync.match("/v2/vault-plus/lists/a%2Fb/sync")).to.deep.equal({ list_id: "a/b" });
    expect(() => sync.match("/v2/vault-plus/lists/%E0%A4%A/sync")).to.throw(PathDecodeError);
  });

  it("does not match other paths", () => {
    for (const path of [
      "/v2/vault-plus/lists/1",
      "/v2/vault-plus/lists/1/sync/",
      "/v2/vault-plus/lists/1/2/sync",
      "/v2/vault-plus/list/1/sync",
      "v2/vault-plus/lists/1/sync",
      "/",
    ]) {
      expect(sync.match(path), path).to.equal(null);
    }
  });

  it("binds an empty segment as an empty value, left for the service to refuse", () => {
    expect(sync.match("/v2/vault-plus/lists//sync")).to.deep.equal({ list_id: "" });
  });

  it("refuses templates it does not support at compile time", () => {
    for (const template of ["v1/x", "/v1/**", "/v1/{name=shelves/*}", "/v1/{a}/{a}", "/v1/x:verb", "/v1/*"]) {
      expect(() => compilePathTemplate(template), template).to.throw(PathTemplateError);
    }
  });
});
